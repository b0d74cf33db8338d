"""Structured A/B projector: separate subspaces for the LoRA A and B matrices (seed 004)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sublora.core.layout import ParamLayout, ParamSlot
from sublora.core.projector import Projector
from sublora.core.registry import registry
from sublora.projectors.configs.structured import StructuredConfig

OTHER = "other"  # the layer key of tensors outside the transformer blocks (e.g. the LM head)


@dataclass(frozen=True)
class Unit:
    """One part of theta with its own base projector: a layer's (or every layer's) A or B side."""

    layer: str  # "h.<l>", "other", or "all" (fixed)
    side: str  # "A" (lora_A and misc tensors) or "B" (lora_B tensors)
    slots: tuple[ParamSlot, ...]

    @property
    def numel(self) -> int:
        return sum(s.numel for s in self.slots)


def layer_key(slot: ParamSlot) -> str:
    return OTHER if slot.layer is None else f"h.{slot.layer}"


def _layer_order(slot: ParamSlot) -> tuple[bool, int]:
    return slot.layer is None, slot.layer or 0


def side_of(slot: ParamSlot) -> str:
    return "B" if slot.group == "lora_B" else "A"  # misc tensors join the A side


def child_seed(seed: int, layer: str, side: str) -> int:
    """A seed of its own for every (layer, side): no two parts share a matrix (the extension's weight tying)."""
    digest = hashlib.sha256(f"structured/{seed}/{layer}/{side}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFF_FFFF


def hartley(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal discrete Hartley transform along the last dim: H x = Re(F x) - Im(F x), H = H^T = H^-1."""
    X = torch.fft.fft(x, norm="ortho")
    return X.real - X.imag


class StructuredProjector(Projector):
    """Separate subspaces for the LoRA A and B tensors; misc tensors (often none) join the A side.

    P_X is the ``base`` projector on part X with a seed of its own (the extension gave every layer
    the same matrix: weight tying), E[P_X^T P_X] = I. w starts at 0 in every mode (SubspaceModel
    sets it; nothing here adds an offset).

    - uniform: the plain ``base`` projector on all of theta, same seed, bit for bit (the seed
      calls uniform "d/2 + d/2", which is not what the reference does, nor sublora).
    - fixed: d_B = floor(d * ratio), d_A = d - d_B; A = P_A w[:d_A], B = P_B w[d_A:]. A side
      without tensors hands its coordinates to the other; a side with tensors but no
      coordinate (ratio 0 or 1) stays at its init (``covers_all_coordinates`` is then False).
    - learned: per layer l ("h.<i>", and "other" for tensors outside the blocks) a gate logit
      theta_l, gamma_l = sigmoid(theta_l), k_l = gamma_l d, m_{l,i} = sigmoid(C (k_l - i - 1/2)),
      i = 0..d-1 (the 1/2 centres coordinate i on [i, i+1), so sum_i m_{l,i} ~ k_l);
      B_l = s_l P_lB H (w * m_l), A_l = s_l P_lA H (w * (1 - m_l)), s_l = sqrt(D_l / D).
      H, the orthonormal Hartley transform, spreads every live coordinate over all inputs of
      the base (rdkron's leftover block would otherwise see only masked coordinates: frozen
      rows); E[P^T P] = I for hard masks. Linear in w for given gates. A layer with one side
      only gets all of w and no gate. The gates (nn.Parameter ``gates``) are trained at
      lr * gate_lr_scale and saved, quantized and coded in model.slc like w.

    Steepness: the mask's edge is ~4/C coordinates wide, so for C >= 1 (default 10; the
    extension used 5) each gate's gradient comes from one or two coordinates at k_l: a noisy
    signal (and zero while w = 0). Annealing C upward from ~4/d is future work.

    Time: fixed <= base; learned = 2 (L + 1) base calls d -> D_l,side plus O(L d log d) for
    masks and H. Memory: the parts' base buffers (rdkron: O(D + sqrt(L D d))), D indices, gates.
    """

    linear = True

    def __init__(self, config: StructuredConfig, layout: ParamLayout, d: int, seed: int):
        super().__init__(config, layout, d, seed)
        self.mode = config.variant
        self.steepness = float(config.steepness)
        self.base_config = registry("projector").config(config.base, config.base_options)
        if self.mode == "uniform":
            self.inner = self.base_config.build(layout, d, seed)
            self._inherit(self.inner)
            return
        self.units: list[Unit] = []
        self._seeds: set[int] = set()
        self.parts = nn.ModuleList()  # base projector of each unit (None: the unit has no coordinate)
        parts: list[Projector | None] = []
        if self.mode == "fixed":
            sides = {side: tuple(s for s in layout.slots if side_of(s) == side) for side in "AB"}
            d_B = math.floor(d * config.allocation_ratio)
            if not sides["B"]:
                d_B = 0
            elif not sides["A"]:
                d_B = d
            self.split = {"A": d - d_B, "B": d_B}
            for side in "AB":
                if sides[side]:
                    self.units.append(Unit("all", side, sides[side]))
                    parts.append(self._build(self.units[-1], self.split[side]))
        else:
            layers: dict[str, dict[str, list[ParamSlot]]] = {}
            for slot in sorted(layout.slots, key=_layer_order):
                layers.setdefault(layer_key(slot), {"A": [], "B": []})[side_of(slot)].append(slot)
            self.gated: list[str] = []  # layers with both sides, one gate each
            self.unit_gate: list[int | None] = []  # index of the unit's gate (None: all of w)
            for key, sides in layers.items():
                gate = len(self.gated) if sides["A"] and sides["B"] else None
                if gate is not None:
                    self.gated.append(key)
                for side in "AB":
                    if sides[side]:
                        self.units.append(Unit(key, side, tuple(sides[side])))
                        self.unit_gate.append(gate)
                        parts.append(self._build(self.units[-1], d))
            self.ungated = [key for key in layers if key not in self.gated]
            gates = nn.Parameter(torch.full((len(self.gated),), float(config.gate_init))) if self.gated else None
            self.register_parameter("gates", gates)  # (gated layers,): the logits theta_l, part of the hypothesis
            self.layer_numel = {key: sum(s.numel for part in sides.values() for s in part)
                                for key, sides in layers.items()}  # D_l
            self.lr_scale = float(config.gate_lr_scale)  # every projector-owned parameter: the gates (and any of base)
        self.parts.extend(p if p is not None else nn.Identity() for p in parts)
        self.has_part = [p is not None for p in parts]
        built = [p for p in parts if p is not None]
        self._inherit(*built)
        self.covers_all_coordinates = self.covers_all_coordinates and all(self.has_part)
        order = torch.cat([torch.arange(s.offset, s.offset + s.numel) for u in self.units for s in u.slots])
        gather = torch.empty_like(order)
        gather[order] = torch.arange(self.D)
        self.register_buffer("gather", gather, persistent=False)  # theta[j] = cat(unit outputs)[gather[j]]

    def _build(self, unit: Unit, d_in: int) -> Projector | None:
        if d_in == 0:
            return None
        sub = ParamLayout.from_named_shapes([(s.name, s.shape) for s in unit.slots])
        seed, salt = child_seed(self.seed, unit.layer, unit.side), 0
        while seed in self._seeds:  # a 31-bit hash collision: astronomically rare, still never shared
            salt += 1
            seed = child_seed(self.seed, unit.layer, f"{unit.side}/{salt}")
        self._seeds.add(seed)
        return self.base_config.build(sub, d_in, seed)

    def _inherit(self, *inner: Projector) -> None:
        self.linear = all(p.linear for p in inner)
        self.covers_all_coordinates = all(getattr(p, "covers_all_coordinates", True) for p in inner)
        if self.mode != "learned" and inner:
            self.lr_scale = inner[0].lr_scale

    def masks(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """m (gated layers, d): m_{l,i} = sigmoid(C (gamma_l d - i - 1/2)), the share of w_i that drives B_l."""
        gammas = torch.sigmoid(self.gates.to(dtype))  # (L,)
        centres = torch.arange(self.d, dtype=dtype, device=self.gates.device) + 0.5  # (d,)
        return torch.sigmoid(self.steepness * (gammas[:, None] * self.d - centres[None, :]))  # (L, d)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert w.shape == (self.d,), f"expected w of shape ({self.d},), got {tuple(w.shape)}"
        if self.mode == "uniform":
            return self.inner(w)
        outputs = []
        if self.mode == "fixed":
            d_A = self.split["A"]
            for unit, part, built in zip(self.units, self.parts, self.has_part):
                piece = w[:d_A] if unit.side == "A" else w[d_A:]
                outputs.append(part(piece) if built else w.new_zeros(unit.numel))
        else:
            m = self.masks(w.dtype) if self.gated else None  # (L, d)
            shares = torch.stack([w if gate is None else w * (m[gate] if unit.side == "B" else 1 - m[gate])
                                  for unit, gate in zip(self.units, self.unit_gate)])  # (units, d)
            mixed = hartley(shares)  # (units, d): every live coordinate of w reaches every input of the base
            for u, (unit, part) in enumerate(zip(self.units, self.parts)):
                outputs.append(part(mixed[u]) * math.sqrt(self.layer_numel[unit.layer] / self.D))
        return torch.cat(outputs)[self.gather]  # (D,)

    def groups(self) -> dict[str, slice]:
        """fixed: w[:d_A] drives the A side, w[d_A:] the B side (seed 004's ||grad_A L|| vs ||grad_B L||).
        uniform and learned share every coordinate of w between the sides: no groups."""
        if self.mode != "fixed":
            return {}
        return {"A": slice(0, self.split["A"]), "B": slice(self.split["A"], self.d)}

    def report(self) -> dict[str, Any]:
        """uniform: the base's report; fixed: the split; learned: gamma_l and k_l = gamma_l d per layer."""
        if self.mode == "uniform":
            return self.inner.report()
        if self.mode == "fixed":
            gamma = self.split["B"] / self.d  # the same B share in every layer
            keys = dict.fromkeys(layer_key(s) for s in sorted(self.layout.slots, key=_layer_order))
            return {"mode": "fixed", "d_A": self.split["A"], "d_B": self.split["B"],
                    "gammas": {key: gamma for key in keys}}
        gammas = torch.sigmoid(self.gates.detach().double()).cpu().tolist() if self.gated else []
        out: dict[str, Any] = {
            "mode": "learned",
            "steepness": self.steepness,
            "gammas": {key: round(g, 6) for key, g in zip(self.gated, gammas)},
            "d_B": {key: round(g * self.d, 3) for key, g in zip(self.gated, gammas)},
            "d_A": {key: round((1 - g) * self.d, 3) for key, g in zip(self.gated, gammas)},
        }
        if self.ungated:
            out["ungated"] = list(self.ungated)
        return out
