"""Test helpers for plugin authors: contract checks any component can run on itself.

Example, in a plugin's own tests::

    from sublora.core.testing import check_contract
    check_contract("myprojector")           # a registered spec
    check_contract(MyProjectorConfig())     # or a config, before registering it
    check_bound_contract("mybound")         # a bound estimator: structure, monotonicity, coverage
    check_quantizer_contract("myquantizer")
    check_coder_contract("mycoder")
    check_source_contract("mysource", {"path": "corpus/"})
    check_tokenizer_contract("mytokenizer")

Only the projector checks import torch, and only when one of them is first used.
"""

import importlib

from sublora.core.testing import bound_contract, coder_contract, quantizer_contract, source_contract, tokenizer_contract
from sublora.core.testing.bound_contract import *  # noqa: F403 - the public names, listed in its __all__
from sublora.core.testing.coder_contract import *  # noqa: F403
from sublora.core.testing.quantizer_contract import *  # noqa: F403
from sublora.core.testing.source_contract import *  # noqa: F403
from sublora.core.testing.tokenizer_contract import *  # noqa: F403

#: projector_contract.__all__, imported on first use (it imports torch)
_PROJECTOR_NAMES = (
    "CONTRACT_SIZES", "MEMORY_SIZE", "build_projector", "check_adjoint", "check_contract", "check_coverage",
    "check_determinism", "check_linearity", "check_memory", "check_output", "check_projector", "check_scale",
    "check_state", "make_layout", "materialize", "resolve_config", "stored_numbers",
)


def __getattr__(name: str):
    if name in _PROJECTOR_NAMES or name == "projector_contract":
        module = importlib.import_module("sublora.core.testing.projector_contract")
        return module if name == "projector_contract" else getattr(module, name)
    raise AttributeError(f"module 'sublora.core.testing' has no attribute {name!r}")


__all__ = [*_PROJECTOR_NAMES, *bound_contract.__all__, *quantizer_contract.__all__, *coder_contract.__all__,
           *source_contract.__all__, *tokenizer_contract.__all__]
