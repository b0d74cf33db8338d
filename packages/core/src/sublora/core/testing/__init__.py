"""Test helpers for plugin authors: contract checks any component can run on itself (imports torch).

Example, in a plugin's own tests::

    from sublora.core.testing import check_contract
    check_contract("myprojector")           # a registered spec
    check_contract(MyProjectorConfig())     # or a config, before registering it
"""

from sublora.core.testing.projector_contract import (
    CONTRACT_SIZES,
    MEMORY_SIZE,
    build_projector,
    check_adjoint,
    check_contract,
    check_coverage,
    check_determinism,
    check_linearity,
    check_memory,
    check_output,
    check_projector,
    check_scale,
    check_state,
    make_layout,
    materialize,
    resolve_config,
    stored_numbers,
)

__all__ = [
    "CONTRACT_SIZES",
    "MEMORY_SIZE",
    "build_projector",
    "check_adjoint",
    "check_contract",
    "check_coverage",
    "check_determinism",
    "check_linearity",
    "check_memory",
    "check_output",
    "check_projector",
    "check_scale",
    "check_state",
    "make_layout",
    "materialize",
    "resolve_config",
    "stored_numbers",
]
