"""sublora-core: interfaces, registry, configs, data, model and training.

Importing this package is cheap: nothing here pulls in torch, transformers or
peft until a name that needs them is used. The stable names below are loaded on
first access (``from sublora.core import SubspaceModel``); docs/library.md shows
them at work. Anything not listed in ``__all__`` is internal and may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sublora.core.lazy import lazy_exports

__version__ = "0.1.0"

#: name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # the subspace model: theta = theta0 + P w over any torch module
    "SubspaceModel": "sublora.core.subspace",
    "ModuleAdapter": "sublora.core.subspace",
    "CausalLMAdapter": "sublora.core.subspace",
    "ParamLayout": "sublora.core.layout",
    "ParamSlot": "sublora.core.layout",
    "build_model": "sublora.core.build",
    "load_trained": "sublora.core.train",
    # components: specs, registry, interfaces and their configs
    "ComponentSpec": "sublora.core.spec",
    "parse_spec": "sublora.core.spec",
    "Registry": "sublora.core.registry",
    "ComponentConfig": "sublora.core.component",
    "Projector": "sublora.core.projector",
    "ProjectorConfig": "sublora.core.projector_config",
    "Quantizer": "sublora.core.quantizer",
    "QuantizerConfig": "sublora.core.quantizer",
    "QuantizedVector": "sublora.core.quantizer",
    "Coder": "sublora.core.coder",
    "CoderConfig": "sublora.core.coder",
    "BoundEstimator": "sublora.core.bound",
    "BoundConfig": "sublora.core.bound",
    "Source": "sublora.core.source",
    "SourceConfig": "sublora.core.source",
    "Tokenizer": "sublora.core.tokenizer",
    "TokenizerConfig": "sublora.core.tokenizer",
    # what a bound consumes and returns
    "Evidence": "sublora.core.bound",
    "TokenEvidence": "sublora.core.bound",
    "DocumentEvidence": "sublora.core.bound",
    "Complexity": "sublora.core.bound",
    "BoundResult": "sublora.core.bound",
    # the run's settings
    "RunConfig": "sublora.core.config",
    "BoundSettings": "sublora.core.config",
    # errors
    "SubloraError": "sublora.core.errors",
    "ConfigError": "sublora.core.errors",
    "UnknownComponentError": "sublora.core.errors",
    "PluginLoadError": "sublora.core.errors",
    "DataError": "sublora.core.errors",
    "CheckpointError": "sublora.core.errors",
    "RunDirError": "sublora.core.errors",
    "TrainingError": "sublora.core.errors",
    "VerificationError": "sublora.core.errors",
    "BoundError": "sublora.core.errors",
}

__all__ = [
    "BoundConfig",
    "BoundError",
    "BoundEstimator",
    "BoundResult",
    "BoundSettings",
    "CausalLMAdapter",
    "CheckpointError",
    "Coder",
    "CoderConfig",
    "Complexity",
    "ComponentConfig",
    "ComponentSpec",
    "ConfigError",
    "DataError",
    "DocumentEvidence",
    "Evidence",
    "ModuleAdapter",
    "ParamLayout",
    "ParamSlot",
    "PluginLoadError",
    "Projector",
    "ProjectorConfig",
    "QuantizedVector",
    "Quantizer",
    "QuantizerConfig",
    "Registry",
    "RunConfig",
    "RunDirError",
    "Source",
    "SourceConfig",
    "SubloraError",
    "SubspaceModel",
    "TokenEvidence",
    "Tokenizer",
    "TokenizerConfig",
    "TrainingError",
    "UnknownComponentError",
    "VerificationError",
    "build_model",
    "load_trained",
    "parse_spec",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from sublora.core.bound import (
        BoundConfig,
        BoundEstimator,
        BoundResult,
        Complexity,
        DocumentEvidence,
        Evidence,
        TokenEvidence,
    )
    from sublora.core.build import build_model
    from sublora.core.coder import Coder, CoderConfig
    from sublora.core.component import ComponentConfig
    from sublora.core.config import BoundSettings, RunConfig
    from sublora.core.errors import (
        BoundError,
        CheckpointError,
        ConfigError,
        DataError,
        PluginLoadError,
        RunDirError,
        SubloraError,
        TrainingError,
        UnknownComponentError,
        VerificationError,
    )
    from sublora.core.layout import ParamLayout, ParamSlot
    from sublora.core.projector import Projector
    from sublora.core.projector_config import ProjectorConfig
    from sublora.core.quantizer import QuantizedVector, Quantizer, QuantizerConfig
    from sublora.core.registry import Registry
    from sublora.core.source import Source, SourceConfig
    from sublora.core.spec import ComponentSpec, parse_spec
    from sublora.core.subspace import CausalLMAdapter, ModuleAdapter, SubspaceModel
    from sublora.core.tokenizer import Tokenizer, TokenizerConfig
    from sublora.core.train import load_trained
