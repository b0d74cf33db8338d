"""Every registered projector (built-in or third-party) against the contract of sublora.core.testing.

The specs are read from the entry-point registry at collection time, so a newly installed
projector plugin is tested here without editing this file. The second half shows that the
suite catches each kind of broken projector.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import ClassVar

import pytest
import torch

from sublora.core.projector import Projector
from sublora.core.projector_config import ProjectorConfig
from sublora.core.registry import refresh, registry
from sublora.core.testing import (
    CONTRACT_SIZES,
    check_adjoint,
    check_coverage,
    check_determinism,
    check_linearity,
    check_memory,
    check_projector,
    check_scale,
    check_state,
)

torch.set_num_threads(1)


def _specs() -> list[str]:
    """Every registered projector and each of its variants (a broken plugin is listed, and fails)."""
    refresh()
    specs = []
    for status in registry("projector").statuses():
        name = status.entry.name
        specs.append(name)
        default = registry("projector").load(name).default_variant if status.ok else None
        specs += [f"{name}:{v}" for v in status.variants if v != default]
    return specs


SPECS = _specs()


def test_builtins_are_registered():
    assert {"dense", "rdkron"} <= set(registry("projector").names())
    assert "rdkron:qr" in SPECS


@pytest.mark.parametrize("D,d", CONTRACT_SIZES, ids=[f"D{D}-d{d}" for D, d in CONTRACT_SIZES])
@pytest.mark.parametrize("spec", SPECS)
def test_contract(spec, D, d):
    check_projector(spec, D, d)


@pytest.mark.parametrize("spec", SPECS)
def test_memory(spec):
    check_memory(spec)


def test_configs_import_without_torch():
    """Entry points must be cheap: loading every projector config imports no torch."""
    values = [e.value for e in registry("projector").entries()]
    code = (
        "import importlib, json, sys\n"
        f"for value in json.loads({json.dumps(json.dumps(values))}):\n"
        "    importlib.import_module(value.partition(':')[0])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- the suite catches broken projectors ------------------------------------------------------


class _TestConfig(ProjectorConfig):
    """A config whose implementation is a class defined in this file."""

    impl: ClassVar[type | None] = None

    def implementation_class(self) -> type:
        return self.impl


def _config(cls: type) -> ProjectorConfig:
    return type(f"{cls.__name__}Config", (_TestConfig,), {"impl": cls, "__module__": __name__})()


class GoodDense(Projector):
    """A correct small dense projector; the broken ones below each change one thing."""

    gain = 1.0

    def __init__(self, config, layout, d, seed):
        super().__init__(config, layout, d, seed)
        P = torch.randn(self.D, self.d, generator=self.generator()) * self.gain / self.D**0.5
        self.register_buffer("P", self.damage(P), persistent=False)

    def damage(self, P):
        return P

    def forward(self, w):
        return self.P @ w


class Unscaled(GoodDense):
    gain = 3.0


class Persistent(GoodDense):
    def __init__(self, config, layout, d, seed):
        super().__init__(config, layout, d, seed)
        self.register_buffer("P", self.P.clone())  # persistent: would land in checkpoints


class SeedIgnored(GoodDense):
    def generator(self, offset=0):
        return torch.Generator().manual_seed(offset)


class DeadColumn(GoodDense):
    def damage(self, P):
        P[:, -1] = 0
        return P


class DeadRow(GoodDense):
    def damage(self, P):
        P[3] = 0
        return P


class _DoubledGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, P):
        ctx.save_for_backward(P)
        return P @ w

    @staticmethod
    def backward(ctx, g):
        (P,) = ctx.saved_tensors
        return 2 * P.T @ g, None


class WrongAdjoint(GoodDense):
    def forward(self, w):
        return _DoubledGrad.apply(w, self.P)


class NotLinear(GoodDense):
    def forward(self, w):
        return self.P @ (w * w.abs())


@pytest.mark.parametrize(
    "cls,check,message",
    [
        (Unscaled, check_scale, "E||P w||^2"),
        (Persistent, check_state, "state_dict holds"),
        (SeedIgnored, check_determinism, "give the same output"),
        (DeadColumn, check_coverage, "never reach theta"),
        (DeadRow, check_coverage, "never move"),
        (WrongAdjoint, check_adjoint, "not the adjoint"),
        (NotLinear, check_linearity, "not linear"),
        (GoodDense, lambda spec, D, d: check_memory(spec, D, d), "stores"),
    ],
    ids=lambda x: x.__name__ if isinstance(x, type) else None,
)
def test_suite_catches(cls, check, message):
    with pytest.raises(AssertionError, match=message):
        check(_config(cls), 60, 12)


def test_suite_passes_a_correct_projector():
    check_projector(_config(GoodDense), 60, 12)


class SlightlyUnscaled(GoodDense):
    gain = 1.3**0.5  # E||P w||^2 / ||w||^2 = 1.3, just outside 1 +- 0.2


@pytest.mark.parametrize("d", [12, 40], ids=["d<=samples: exact in w", "d>samples: sampled w"])
def test_scale_check_catches_a_small_miscaling_on_both_paths(d):
    """check_scale averages exactly over w for a small linear P and samples w otherwise: both see a 1.3."""
    check_scale(_config(GoodDense), 60, d)
    with pytest.raises(AssertionError, match=r"= 1\.[23]\d\d over 32 seeds"):
        check_scale(_config(SlightlyUnscaled), 60, d)


class Tanh(GoodDense):
    linear = False

    def forward(self, w):
        return self.P @ torch.tanh(w)


class TanhWrongGrad(Tanh):
    def forward(self, w):
        return _DoubledGrad.apply(torch.tanh(w), self.P)


def test_nonlinear_projectors_get_finite_difference_and_jacobian_checks():
    for check in (check_adjoint, check_coverage, check_determinism, check_state):
        check(_config(Tanh), 60, 12)
    with pytest.raises(AssertionError, match="finite differences"):
        check_adjoint(_config(TanhWrongGrad), 60, 12)
