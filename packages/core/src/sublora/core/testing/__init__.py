"""Test helpers for plugin authors: contract checks any component can run on itself (imports torch).

Example, in a plugin's own tests::

    from sublora.core.testing import check_contract
    check_contract("myprojector")           # a registered spec
    check_contract(MyProjectorConfig())     # or a config, before registering it
    check_bound_contract("mybound")         # a bound estimator: structure, monotonicity, coverage
"""

from sublora.core.testing import bound_contract, projector_contract
from sublora.core.testing.bound_contract import *  # noqa: F403 - the public names, listed in its __all__
from sublora.core.testing.projector_contract import *  # noqa: F403

__all__ = list(projector_contract.__all__) + list(bound_contract.__all__)
