"""sublora-projectors: the built-in projectors P (theta = theta0 + P w), one module per family.

Cheap to import: the configs (``sublora.projectors.configs.*``, the entry points) import no
torch, and the stable names below are loaded on first access. Build a projector by spec
through the registry (``SubspaceModel(net, "rdkron:qr", d)`` does it), or from its config:
``RdkronConfig(variant="qr").build(layout, d, seed)``. Anything not in ``__all__`` is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sublora.core.lazy import lazy_exports

#: name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "DenseConfig": "sublora.projectors.configs.dense",
    "DenseProjector": "sublora.projectors.dense",
    "RdkronConfig": "sublora.projectors.configs.rdkron",
    "RdkronProjector": "sublora.projectors.rdkron",
    "SparseConfig": "sublora.projectors.configs.sparse",
    "SparseProjector": "sublora.projectors.sparse",
    "FastfoodConfig": "sublora.projectors.configs.fastfood",
    "FastfoodProjector": "sublora.projectors.fastfood",
    "FilmConfig": "sublora.projectors.configs.film",
    "FilmProjector": "sublora.projectors.film",
    "NolaConfig": "sublora.projectors.configs.nola",
    "NolaProjector": "sublora.projectors.nola",
    "StructuredConfig": "sublora.projectors.configs.structured",
    "StructuredProjector": "sublora.projectors.structured",
}

__all__ = [
    "DenseConfig",
    "DenseProjector",
    "FastfoodConfig",
    "FastfoodProjector",
    "FilmConfig",
    "FilmProjector",
    "NolaConfig",
    "NolaProjector",
    "RdkronConfig",
    "RdkronProjector",
    "SparseConfig",
    "SparseProjector",
    "StructuredConfig",
    "StructuredProjector",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from sublora.projectors.configs.dense import DenseConfig
    from sublora.projectors.configs.fastfood import FastfoodConfig
    from sublora.projectors.configs.film import FilmConfig
    from sublora.projectors.configs.nola import NolaConfig
    from sublora.projectors.configs.rdkron import RdkronConfig
    from sublora.projectors.configs.sparse import SparseConfig
    from sublora.projectors.configs.structured import StructuredConfig
    from sublora.projectors.dense import DenseProjector
    from sublora.projectors.fastfood import FastfoodProjector
    from sublora.projectors.film import FilmProjector
    from sublora.projectors.nola import NolaProjector
    from sublora.projectors.rdkron import RdkronProjector
    from sublora.projectors.sparse import SparseProjector
    from sublora.projectors.structured import StructuredProjector
