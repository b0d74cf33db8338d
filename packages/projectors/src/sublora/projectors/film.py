"""FiLM projector: a dense projection onto the normalization/classifier coordinates only.

``film``: let S be the coordinates of theta that belong to a trainable tensor
whose name matches one of ``config.patterns`` (``re.search``, case-insensitive;
default norm, bn, fc as a whole name component, classifier, ln_), in layout
order. Then

    (P w)[S] = G w / sqrt(|S|),   (P w)[not S] = 0,

with G (|S| x d) iid N(0, 1): exactly the dense projector on the sub-layout of
matching tensors (generated in seeded row blocks, cached or regenerated as
``chunk_size`` / ``cache_mb`` say), its blocks drawn from random streams
``FILM_STREAM``, ``FILM_STREAM + 1``, ... of the seed. With ``matrix='fastfood'``,
G / sqrt(|S|) is replaced by the Fastfood projector on that sub-layout (same
streams): Gaussian-like rows of norm chi / sqrt(|S|), same scale. E[P^T P] = I, so
E||P w||^2 = ||w||^2. The rows outside S are zero by design, hence
``covers_all_coordinates = False``; every column is nonzero. If nothing
matches (the default sublora layout holds LoRA tensors only) building raises a
ConfigError (a ValueError) naming the patterns: add a pattern (e.g.
``lm_head`` for the LM head's LoRA tensors) or use ``film:rdkron``.
Time O(|S| d) per call, memory O(|S| d) cached, else one chunk; with
``matrix='fastfood'``, O(|S|) memory and O(|S| log d) time.

``film:rdkron``: over all of theta,

    P w = (K w + F w) / sqrt(2),

K the ``rdkron:qr`` projector with this seed (bit for bit what ``rdkron:qr``
builds) and F the ``film`` P above (same seed). K and F are independent with
mean zero, so E||P w||^2 = (||w||^2 + ||w||^2) / 2 = ||w||^2 (K alone is an
isometry when D >= d; the sum is one only in expectation). Every row is
nonzero through K. When no tensor matches, F = 0 and P = K (no 1/sqrt(2), so
the scale stays E||P w||^2 = ||w||^2); ``report()`` then shows 0 FiLM
coordinates. Time and memory: those of K plus those of F.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from sublora.core.errors import ConfigError
from sublora.core.layout import ParamLayout
from sublora.core.projector import Projector
from sublora.projectors.configs.dense import DenseConfig
from sublora.projectors.configs.film import FilmConfig
from sublora.projectors.configs.rdkron import RdkronConfig
from sublora.projectors.blocks import random_block
from sublora.projectors.rdkron import RdkronProjector

#: first random stream of the FiLM block: past the streams rdkron draws from the same seed (1 to 4)
FILM_STREAM = 16


def film_slots(layout: ParamLayout, patterns: tuple[str, ...]) -> list[bool]:
    """For each slot of ``layout``: does its name match one of ``patterns`` (re.search, case-insensitive)?"""
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    return [any(p.search(slot.name) for p in compiled) for slot in layout.slots]


class FilmProjector(Projector):
    linear = True
    covers_all_coordinates = False  # film: rows outside S are zero by design (film:rdkron sets True)

    def __init__(self, config: FilmConfig, layout: ParamLayout, d: int, seed: int):
        super().__init__(config, layout, d, seed)
        mask = film_slots(layout, config.patterns)
        matched = [slot for slot, m in zip(layout.slots, mask) if m]
        if not matched and config.variant is None:
            names = ", ".join(s.name for s in layout.slots[:3]) + (", ..." if len(layout.slots) > 3 else "")
            raise ConfigError(
                f"Projector 'film' found no FiLM coordinate: no trainable tensor name matches patterns "
                f"{list(config.patterns)} (trainable tensors: {names}).",
                hint="Add a pattern for the tensors to train (e.g. patterns=['lm_head'] for the LM head's LoRA "
                "tensors), or use 'film:rdkron', which falls back to rdkron:qr alone.",
            )
        self.film_tensors = len(matched)
        # runs of consecutive slots, all matching or all not: (matching, number of coordinates)
        self.runs: list[tuple[bool, int]] = []
        for slot, m in zip(layout.slots, mask):
            if self.runs and self.runs[-1][0] == m:
                self.runs[-1] = (m, self.runs[-1][1] + slot.numel)
            else:
                self.runs.append((m, slot.numel))
        self.film = None
        if matched:
            sub = ParamLayout.from_named_shapes([(s.name, s.shape) for s in matched])
            dense = DenseConfig(chunk_size=config.chunk_size, cache_mb=config.cache_mb)
            self.film = random_block(config.matrix, dense, sub, self.d, self.seed, FILM_STREAM)
        self.kron = None
        if config.variant == "rdkron":
            self.kron = RdkronProjector(RdkronConfig(variant="qr"), layout, self.d, self.seed)
            self.covers_all_coordinates = True

    def film_part(self, w: torch.Tensor) -> torch.Tensor:
        """F w: the FiLM block's output on S, zero elsewhere, shape (D,)."""
        y = self.film(w)  # (|S|,)
        parts, start = [], 0
        for matching, n in self.runs:
            if matching:
                parts.append(y[start : start + n])
                start += n
            else:
                parts.append(y.new_zeros(n))
        return torch.cat(parts)  # (D,)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert w.shape == (self.d,), f"expected w of shape ({self.d},), got {tuple(w.shape)}"
        if self.kron is None:
            return self.film_part(w)
        if self.film is None:
            return self.kron(w)  # no FiLM coordinate: K alone keeps E||P w||^2 = ||w||^2
        return (self.kron(w) + self.film_part(w)) / math.sqrt(2)

    def report(self) -> dict[str, Any]:
        coordinates = sum(n for matching, n in self.runs if matching)
        return {"film_tensors": self.film_tensors, "film_coordinates": coordinates}
