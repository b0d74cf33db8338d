"""The SubLoRA model: theta = theta0 + P w over the trainable parameters of any torch module.

Only w (and any parameters the projector owns, e.g. learned gates) is
trained. theta0 (the module's initial trainable tensors, for sublora's GPT-2 the
LoRA init) and P are rebuilt from seeds, never stored. The wrapped network is a
registered submodule, so ``.eval()`` reaches its dropout: certified numbers never
carry dropout noise (a trap of the reference code).

How the wrapped module is called and what is returned is the job of an adapter,
chosen once at construction: a plain module gets its arguments as given and
returns its own output; a Hugging Face causal LM gets ``use_cache=False`` and
returns ``.logits``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sublora.core.errors import ConfigError
from sublora.core.layout import ParamLayout
from sublora.core.projector import Projector

ProjectorFactory = Callable[[ParamLayout, int, int], Projector]


class ModuleAdapter:
    """Calls the wrapped module with the arguments given and returns its output unchanged."""

    def arguments(self, args: tuple, kwargs: dict[str, Any],
                  theta: torch.Tensor | None) -> tuple[tuple, dict[str, Any], torch.Tensor | None]:
        """(positional args, keyword args, theta) of one call."""
        return args, kwargs, theta

    def output(self, out: Any) -> Any:
        return out


class CausalLMAdapter(ModuleAdapter):
    """A Hugging Face causal LM: ``model(input_ids, theta=None, **kwargs)`` -> logits (B, T, V).

    Passes ``use_cache=False`` (a cache of another theta would be wrong) and returns ``.logits``.
    theta may also come second positionally, as sublora's own call sites pass it: with the cache off,
    a causal LM has no use for its second parameter (``past_key_values``).
    """

    def arguments(self, args, kwargs, theta):
        if len(args) == 2 and theta is None:
            args, theta = args[:1], args[1]
        return args, {"use_cache": False, **kwargs}, theta

    def output(self, out):
        return out.logits


def default_adapter(net: nn.Module) -> ModuleAdapter:
    """CausalLMAdapter for a transformers model (also inside a peft wrapper), else ModuleAdapter."""
    transformers = sys.modules.get("transformers")  # not imported: net cannot be one of its models
    if transformers is None:
        return ModuleAdapter()
    base = net.get_base_model() if callable(getattr(net, "get_base_model", None)) else net
    return CausalLMAdapter() if isinstance(base, transformers.PreTrainedModel) else ModuleAdapter()


class SubspaceModel(nn.Module):
    """theta = theta0 + P w over ``net``'s trainable parameters; ``net`` itself is frozen.

    ``projector``: a projector spec (``"dense"``, ``"rdkron:qr"``, ...; options in ``projector_options``)
    or a factory ``(layout, d, seed) -> Projector`` such as ``registry("projector").config(spec).build``.
    ``adapter``: how ``net`` is called (default: ``default_adapter(net)``).
    """

    def __init__(self, net: nn.Module, projector: str | ProjectorFactory, d: int, seed: int = 0, *,
                 projector_options: dict[str, Any] | None = None, adapter: ModuleAdapter | None = None):
        super().__init__()
        self.net = net
        named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
        if not named:
            raise ConfigError("The network has no trainable parameters to put in the subspace.",
                              hint="Leave requires_grad on for the tensors theta should cover (for GPT-2: the LoRA ones).")
        if isinstance(projector, str):
            from sublora.core.registry import registry

            projector = registry("projector").config(projector, projector_options).build
        elif projector_options is not None:
            raise ConfigError("projector_options go with a projector spec, not with a factory.",
                              hint="Pass the options to the config the factory comes from.")
        self.adapter = default_adapter(net) if adapter is None else adapter
        self.layout = ParamLayout.from_named_shapes([(n, tuple(p.shape)) for n, p in named])
        theta0 = torch.cat([p.detach().reshape(-1) for _, p in named]).clone()
        for p in net.parameters():
            p.requires_grad_(False)
        self.register_buffer("theta0", theta0, persistent=False)
        self.projector: Projector = projector(self.layout, d, seed)
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

    def forward(self, *args: Any, theta: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """``net(*args, **kwargs)`` with its trainable tensors set to theta (default theta0 + P w),
        through the adapter (for a causal LM: the logits (B, T, V))."""
        args, kwargs, theta = self.adapter.arguments(args, kwargs, theta)
        theta = self.flat_params() if theta is None else theta
        return self.adapter.output(functional_call(self.net, self.param_dict(theta), args, kwargs))

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy in nats of the logits (..., V) against targets (...)."""
        logits = self(inputs, theta=theta)  # (B, T, V) or (B, V)
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
