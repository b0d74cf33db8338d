"""The SubLoRA model: theta = theta0 + P w over the LoRA parameters.

Only w (and any parameters the projector owns, e.g. learned gates) is
trained. theta0 (the LoRA init) and P are rebuilt from seeds, never stored.
The wrapped network is a registered submodule, so ``.eval()`` reaches its
dropout: certified numbers never carry dropout noise (a trap of the
reference code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sublora.core.layout import ParamLayout
from sublora.core.projector import Projector


class SubspaceModel(nn.Module):
    def __init__(self, net: nn.Module, projector_factory, d: int, seed: int):
        super().__init__()
        self.net = net
        named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("the network has no trainable (LoRA) parameters to put in the subspace")
        self.layout = ParamLayout.from_named_shapes([(n, tuple(p.shape)) for n, p in named])
        theta0 = torch.cat([p.detach().reshape(-1) for _, p in named]).clone()
        for p in net.parameters():
            p.requires_grad_(False)
        self.register_buffer("theta0", theta0, persistent=False)
        self.projector: Projector = projector_factory(self.layout, d, seed)
        self.w = nn.Parameter(torch.zeros(d))

    @property
    def D(self) -> int:
        return self.layout.D

    @property
    def d(self) -> int:
        return self.w.numel()

    def flat_params(self) -> torch.Tensor:
        """theta = theta0 + P w, shape (D,)."""
        return self.theta0 + self.projector(self.w)

    def param_dict(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {s.name: theta[s.offset : s.offset + s.numel].view(s.shape) for s in self.layout.slots}

    def forward(self, idx: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V) of the network with its LoRA tensors set to theta."""
        theta = self.flat_params() if theta is None else theta
        out = functional_call(self.net, self.param_dict(theta), (idx,), {"use_cache": False})
        return out.logits

    def loss(self, idx: torch.Tensor, targets: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy in nats."""
        logits = self(idx, theta)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))

    def hypothesis(self) -> dict[str, torch.Tensor]:
        """Everything that defines the trained model beyond the config: w and projector-owned parameters."""
        out = {"w": self.w.detach()}
        out.update({f"projector.{n}": p.detach() for n, p in self.projector.named_parameters()})
        return out

    def load_hypothesis(self, tensors: dict[str, torch.Tensor]) -> None:
        expected = set(self.hypothesis())
        if set(tensors) != expected:
            raise KeyError(f"expected tensors {sorted(expected)}, got {sorted(tensors)}")
        with torch.no_grad():
            self.w.copy_(tensors["w"].reshape(self.w.shape))
            for n, p in self.projector.named_parameters():
                p.copy_(tensors[f"projector.{n}"].reshape(p.shape))
