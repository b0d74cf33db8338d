"""The projector contract: checks any projector plugin can run on itself.

Every ``check_*`` function builds the projector (from a spec such as
``"rdkron:qr"``, or from a config instance for a projector not registered
yet), runs one property of the contract and raises ``AssertionError`` with a
message naming the projector, the sizes and what is wrong. They need no
pytest. ``check_projector`` runs all small-size checks at one (D, d);
``check_contract`` runs them at the standard sizes (perfect-square D, d,
both, neither, D < d) plus ``check_memory`` at a large D * d.

The contract (see projector.py):

- determinism: same seed -> identical output (and identical on a second
  call); a different seed -> a different P;
- output: shape (D,), dtype of w, finite; w is not modified;
- linearity (``linear = True``): P(a w1 + b w2) = a P w1 + b P w2;
- exact adjoint: autograd's gradient of <g, P w> is P^T g for the matrix
  materialized column by column from forward (nonlinear projectors: the
  gradient matches central finite differences);
- scale: the mean of ||P w||^2 / ||w||^2 over random w and seeds is 1 +- 0.2;
- coverage: every column of P is nonzero (no coordinate of w is paid for
  and useless) and every row is nonzero (no coordinate of theta is frozen).
  A projector that leaves coordinates of theta fixed by design sets the
  class attribute ``covers_all_coordinates = False`` to skip the row part;
- memory: parameters + buffers hold fewer than D * d / 4 numbers at a large
  D * d, where forward and backward still run;
- state: ``state_dict()`` holds only the projector's trainable parameters
  (random tensors are non-persistent buffers, rebuilt from the seed).
"""

from __future__ import annotations

import torch

from sublora.core.layout import ParamLayout
from sublora.core.projector import Projector
from sublora.core.projector_config import ProjectorConfig

#: (D, d) pairs of ``check_contract``: both perfect squares, D square, d square, neither, D < d
CONTRACT_SIZES: tuple[tuple[int, int], ...] = ((400, 36), (400, 40), (420, 36), (437, 23), (30, 50))
#: (D, d) of ``check_memory``: D * d * 4 bytes = 400 MB, more than anything may store
MEMORY_SIZE: tuple[int, int] = (100_000, 1_000)

_SLOTS = (  # (name, relative size): 2 transformer blocks and a LoRA'd head (lora_B the largest), one misc tensor
    ("transformer.h.0.attn.c_attn.lora_A.default.weight", 1),
    ("transformer.h.0.attn.c_attn.lora_B.default.weight", 1),
    ("transformer.h.1.attn.c_attn.lora_A.default.weight", 1),
    ("transformer.h.1.attn.c_attn.lora_B.default.weight", 1),
    ("lm_head.lora_A.default.weight", 1),
    ("lm_head.lora_B.default.weight", 8),
    ("transformer.ln_f.weight", 1),
)

Spec = str | ProjectorConfig


def make_layout(D: int) -> ParamLayout:
    """A fake layout of exactly D parameters: lora_A/lora_B slots of blocks 0 and 1, a head, a misc tensor.

    From D = 64 on, LoRA slots have rank 4, lora_A (4, n) and lora_B (n, 4), the head's lora_B is
    the largest slot and ln_f takes the rest; below, slots are flat and only the first D exist.
    """
    if D < 1:
        raise ValueError(f"D must be >= 1, got {D}")
    total = sum(weight for _, weight in _SLOTS)
    named = []
    if D >= 64:
        for name, weight in _SLOTS[:-1]:
            n = D * weight // (4 * total)  # >= 1
            named.append((name, (4, n) if "lora_A" in name else (n, 4)))
        named.append((_SLOTS[-1][0], (D - sum(a * b for _, (a, b) in named),)))
    else:
        slots = _SLOTS[: min(D, len(_SLOTS))]
        sizes = [1] * len(slots)
        sizes[max(range(len(slots)), key=lambda i: slots[i][1])] += D - len(slots)
        named = [(name, (1, n) if "lora_A" in name else (n, 1) if "lora_B" in name else (n,))
                 for (name, _), n in zip(slots, sizes)]
    layout = ParamLayout.from_named_shapes(named)
    assert layout.D == D, (layout.D, D)
    return layout


def resolve_config(spec: Spec, options: dict | None = None) -> ProjectorConfig:
    """A config from a registered spec ("rdkron:qr") or a config instance (returned as is)."""
    if isinstance(spec, ProjectorConfig):
        if options:
            raise ValueError("pass options only with a spec string; a config already holds its options")
        return spec
    from sublora.core.registry import registry

    return registry("projector").config(spec, options)


def build_projector(spec: Spec, D: int, d: int, seed: int = 0, layout: ParamLayout | None = None,
                    options: dict | None = None) -> Projector:
    """Build the projector on a fake layout of D parameters (or on ``layout``)."""
    config = resolve_config(spec, options)
    layout = layout if layout is not None else make_layout(D)
    assert layout.D == D, f"layout has D = {layout.D}, expected {D}"
    projector = config.build(layout, d, seed)
    assert isinstance(projector, Projector), f"{_name(config)} built a {type(projector).__name__}, not a Projector"
    return projector


def materialize(projector: Projector) -> torch.Tensor:
    """P as a (D, d) matrix, column j = P e_j (linear projectors, small sizes only)."""
    eye = torch.eye(projector.d)
    with torch.no_grad():
        return torch.stack([projector(eye[j]) for j in range(projector.d)], dim=1)  # (D, d)


def _name(config: ProjectorConfig, D: int | None = None, d: int | None = None) -> str:
    where = f" (D={D}, d={d})" if D is not None else ""
    return f"projector '{config.spec}'{where}"


def _w(d: int, seed: int) -> torch.Tensor:
    return torch.randn(d, generator=torch.Generator().manual_seed(seed))


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4) -> bool:
    """Equal up to float32 error relative to the size of the vectors."""
    return (a - b).norm().item() <= rtol * max(a.norm().item(), b.norm().item(), 1e-12)


def check_determinism(spec: Spec, D: int, d: int, layout: ParamLayout | None = None, seed: int = 0) -> None:
    """Same seed: identical outputs (across builds and calls); different seed: a different output."""
    config = resolve_config(spec)
    name = _name(config, D, d)
    w = _w(d, 1)
    first = build_projector(config, D, d, seed, layout)
    second = build_projector(config, D, d, seed, layout)
    with torch.no_grad():
        y1, y2, y1_again = first(w), second(w), first(w)
        y_other = build_projector(config, D, d, seed + 1, layout)(w)
    assert torch.equal(y1, y2), f"{name}: two builds with seed {seed} give different outputs"
    assert torch.equal(y1, y1_again), f"{name}: two calls on the same w give different outputs"
    assert not torch.allclose(y1, y_other), f"{name}: seeds {seed} and {seed + 1} give the same output"


def check_output(spec: Spec, D: int, d: int, layout: ParamLayout | None = None, seed: int = 0) -> None:
    """Shape (D,), dtype of w, finite values, w unchanged, P 0 = 0 for linear projectors."""
    config = resolve_config(spec)
    name = _name(config, D, d)
    projector = build_projector(config, D, d, seed, layout)
    w = _w(d, 2)
    w_copy = w.clone()
    with torch.no_grad():
        y = projector(w)
    assert isinstance(y, torch.Tensor), f"{name}: forward returned {type(y).__name__}, not a tensor"
    assert tuple(y.shape) == (D,), f"{name}: output shape {tuple(y.shape)}, expected ({D},)"
    assert y.dtype == w.dtype, f"{name}: output dtype {y.dtype} differs from w's {w.dtype}"
    assert torch.isfinite(y).all(), f"{name}: output has {int((~torch.isfinite(y)).sum())} non-finite entries"
    assert torch.equal(w, w_copy), f"{name}: forward modified w in place"
    assert y.abs().sum() > 0, f"{name}: P w = 0 for a random w"
    if projector.linear:
        with torch.no_grad():
            zero = projector(torch.zeros(d))
        assert not zero.any(), f"{name}: linear projector maps w = 0 to a nonzero vector"


def check_linearity(spec: Spec, D: int, d: int, layout: ParamLayout | None = None, seed: int = 0) -> None:
    """P(a w1 + b w2) = a P w1 + b P w2 (skipped for projectors with ``linear = False``)."""
    config = resolve_config(spec)
    projector = build_projector(config, D, d, seed, layout)
    if not projector.linear:
        return
    w1, w2, a, b = _w(d, 3), _w(d, 4), 1.7, -0.4
    with torch.no_grad():
        lhs, rhs = projector(a * w1 + b * w2), a * projector(w1) + b * projector(w2)
    assert _close(lhs, rhs), (
        f"{_name(config, D, d)}: not linear, |P(a w1 + b w2) - (a P w1 + b P w2)| = {(lhs - rhs).norm():.3g} "
        f"for |P(a w1 + b w2)| = {lhs.norm():.3g}"
    )


def check_adjoint(spec: Spec, D: int, d: int, layout: ParamLayout | None = None, seed: int = 0) -> None:
    """The gradient of <g, P w> w.r.t. w is P^T g, P materialized from forward (finite differences if nonlinear)."""
    config = resolve_config(spec)
    name = _name(config, D, d)
    projector = build_projector(config, D, d, seed, layout)
    g = _w(D, 5)
    w = _w(d, 6).requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.dot(g, projector(w)), w)
    assert tuple(grad.shape) == (d,) and torch.isfinite(grad).all(), f"{name}: gradient is not a finite ({d},) vector"
    if projector.linear:
        expected = materialize(projector).T @ g  # (d,)
        assert _close(grad, expected), (
            f"{name}: backward is not the adjoint of forward: |grad - P^T g| = {(grad - expected).norm():.3g} "
            f"for |P^T g| = {expected.norm():.3g}"
        )
        return
    eps = 1e-3 * max(1.0, w.detach().norm().item())
    with torch.no_grad():
        for k in range(3):
            v = _w(d, 100 + k)
            v /= v.norm()
            fd = (torch.dot(g, projector(w + eps * v)) - torch.dot(g, projector(w - eps * v))) / (2 * eps)
            ad = torch.dot(grad, v)
            assert abs(fd - ad) <= 1e-2 * max(abs(fd), abs(ad), grad.norm() * 1e-2), (
                f"{name}: directional derivative {ad:.5g} from autograd, {fd:.5g} from finite differences"
            )


def check_scale(spec: Spec, D: int, d: int, layout: ParamLayout | None = None, seeds: int = 32,
                samples: int = 16, tolerance: float = 0.2) -> None:
    """The mean over ``seeds`` seeds of E_w ||P w||^2 / ||w||^2 (w Gaussian) is within 1 +- tolerance.

    E_w is the mean over ``samples`` random w; for a linear P with d <= ``samples`` it is computed exactly,
    as ||P||_F^2 / d (w / ||w|| is uniform on the sphere, so E[w w^T / ||w||^2] = I / d), in d calls
    instead of ``samples``: the same expectation without its sampling noise.
    """
    config = resolve_config(spec)
    per_seed = []
    with torch.no_grad():
        for seed in range(seeds):
            projector = build_projector(config, D, d, seed, layout)
            if projector.linear and d <= samples:
                per_seed.append(materialize(projector).square().sum().item() / d)
                continue
            ratios = []
            for k in range(samples):
                w = _w(d, 1000 * seed + k)
                ratios.append((projector(w).square().sum() / w.square().sum()).item())
            per_seed.append(sum(ratios) / samples)
    mean = sum(per_seed) / seeds
    over = "exact in w" if projector.linear and d <= samples else f"{samples} w each"
    assert abs(mean - 1) <= tolerance, (
        f"{_name(config, D, d)}: E||P w||^2 / ||w||^2 = {mean:.3f} over {seeds} seeds ({over}), "
        f"expected 1 +- {tolerance} (entries of P should have variance 1/D, i.e. E[P^T P] = I)"
    )


def check_coverage(spec: Spec, D: int, d: int, layout: ParamLayout | None = None, seed: int = 0) -> None:
    """Every column of P is nonzero, and every row unless the projector sets ``covers_all_coordinates = False``.

    P is materialized (linear) or the Jacobian at a random w (nonlinear).
    """
    config = resolve_config(spec)
    name = _name(config, D, d)
    projector = build_projector(config, D, d, seed, layout)
    if projector.linear:
        P = materialize(projector)
    else:
        P = torch.autograd.functional.jacobian(projector, _w(d, 7))  # (D, d)
    dead_columns = (P == 0).all(dim=0).nonzero().flatten().tolist()
    assert not dead_columns, (
        f"{name}: {len(dead_columns)} coordinates of w never reach theta (first: {dead_columns[:5]}); "
        "they would be paid for in the bound and do nothing"
    )
    if getattr(projector, "covers_all_coordinates", True):
        dead_rows = (P == 0).all(dim=1).nonzero().flatten().tolist()
        assert not dead_rows, (
            f"{name}: {len(dead_rows)} coordinates of theta never move (first: {dead_rows[:5]}); "
            "set covers_all_coordinates = False on the projector class if this is by design"
        )


def check_state(spec: Spec, D: int, d: int, layout: ParamLayout | None = None, seed: int = 0) -> None:
    """``state_dict()`` holds exactly the trainable parameters: random tensors are non-persistent buffers."""
    config = resolve_config(spec)
    projector = build_projector(config, D, d, seed, layout)
    extra = set(projector.state_dict()) - {n for n, p in projector.named_parameters() if p.requires_grad}
    assert not extra, (
        f"{_name(config, D, d)}: state_dict holds {sorted(extra)}, which are not trainable parameters; "
        "register random tensors with register_buffer(..., persistent=False) so checkpoints stay small"
    )


def stored_numbers(projector: Projector) -> int:
    """How many numbers the projector keeps: parameters plus buffers."""
    return sum(t.numel() for t in projector.parameters()) + sum(t.numel() for t in projector.buffers())


def check_memory(spec: Spec, D: int = MEMORY_SIZE[0], d: int = MEMORY_SIZE[1], layout: ParamLayout | None = None,
                 seed: int = 0, max_fraction: float = 0.25) -> None:
    """At a large D * d the projector stores < max_fraction * D * d numbers; forward and backward run there."""
    config = resolve_config(spec)
    name = _name(config, D, d)
    projector = build_projector(config, D, d, seed, layout)
    stored = stored_numbers(projector)
    assert stored < max_fraction * D * d, (
        f"{name}: stores {stored:,} numbers (parameters + buffers), more than {max_fraction} * D * d = "
        f"{int(max_fraction * D * d):,}; generate P lazily or use a structured P"
    )
    w = _w(d, 8).requires_grad_(True)
    y = projector(w)
    assert tuple(y.shape) == (D,) and torch.isfinite(y).all(), f"{name}: output is not a finite ({D},) vector"
    y.square().sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all(), f"{name}: backward gives no finite gradient for w"


def check_projector(spec: Spec, D: int, d: int, layout: ParamLayout | None = None, seed: int = 0,
                    scale_seeds: int = 32) -> None:
    """Every small-size check at one (D, d); keep D * d small (P is materialized).

    At tiny D * d the scale of one random P varies a lot: raise ``scale_seeds`` there.
    """
    for check in (check_output, check_determinism, check_state, check_linearity, check_adjoint, check_coverage):
        check(spec, D, d, layout=layout, seed=seed)
    check_scale(spec, D, d, layout=layout, seeds=scale_seeds)


def check_contract(spec: Spec, sizes: tuple[tuple[int, int], ...] = CONTRACT_SIZES, memory: bool = True) -> None:
    """The whole contract: ``check_projector`` at each of ``sizes``, then ``check_memory``."""
    for D, d in sizes:
        check_projector(spec, D, d)
    if memory:
        check_memory(spec)


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
