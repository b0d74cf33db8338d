"""The projector interface: theta = theta0 + P w.

A projector maps the trainable vector w (length d) to a flat update of length
D over the trainable (LoRA) parameters. It is fully determined by its config,
the layout and its seed, so only w (and parameters the projector itself owns,
such as learned gates) need to be stored. Imports torch: implementation side.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from sublora.core.layout import ParamLayout
from sublora.core.projector_config import ProjectorConfig


class Projector(nn.Module, ABC):
    """Base class of every projector implementation.

    Subclasses implement ``forward(w) -> (D,)``. ``linear`` says whether
    P(w) is linear in w (the contract tests check the adjoint then). Random
    tensors must be drawn on the CPU from ``seed`` (never on the compute
    device) and registered as non-persistent buffers, so they never end up in
    a checkpoint.
    """

    linear: ClassVar[bool] = True
    #: Learning-rate multiplier for parameters the projector owns (e.g. learned gates).
    lr_scale: float = 1.0

    def __init__(self, config: ProjectorConfig, layout: ParamLayout, d: int, seed: int):
        super().__init__()
        if d < 1:
            raise ValueError(f"intrinsic dimension d must be >= 1, got {d}")
        self.config = config
        self.layout = layout
        self.D = layout.D
        self.d = int(d)
        self.seed = int(seed)

    @abstractmethod
    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """Map w of shape (d,) to a flat update of shape (D,)."""

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from this projector's seed (plus a stream offset)."""
        return torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + offset)

    def groups(self) -> dict[str, slice]:
        """Named blocks of w that feed distinct parts of the model (e.g. the A and B sides of a fixed
        allocation), for logging the gradient norm of each; default none."""
        return {}

    def report(self) -> dict[str, Any]:
        """State worth showing and logging (e.g. learned gates per layer); JSON-serializable.

        The trainer logs it at every evaluation and stores the final one in the
        run's manifest; `sublora show` prints it.
        """
        return {}
