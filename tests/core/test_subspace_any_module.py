"""SubspaceModel over any torch module: arguments pass through, an adapter turns HF outputs into logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sublora.core import CausalLMAdapter, ModuleAdapter, SubspaceModel
from sublora.core.build import build_model
from sublora.core.errors import ConfigError
from sublora.core.registry import registry


def _digits(n: int = 512, seed: int = 0):
    """Digits-like data: 8x8 'images' (64 features), 10 classes from a fixed random teacher."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 64, generator=g)
    return x, (x @ torch.randn(64, 10, generator=g)).argmax(-1)


def test_a_subspace_over_an_mlp_trains():
    x, y = _digits()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    model = SubspaceModel(net, "dense", d=64, seed=0)
    assert type(model.adapter) is ModuleAdapter
    assert model.D == 64 * 32 + 32 + 32 * 10 + 10 and model.d == 64
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["w"]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = model.loss(x, y)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.8 * first
    assert torch.equal(model(x), functional_call(net, model.param_dict(model.flat_params()), (x,)))


def test_arguments_and_keywords_pass_through_and_theta_is_keyword():
    class Affine(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(3))

        def forward(self, a, b, *, shift=0.0):
            return {"out": self.weight * a + b + shift}

    class Pick(ModuleAdapter):
        def output(self, out):
            return out["out"]

    model = SubspaceModel(Affine(), "dense", d=2, seed=1, adapter=Pick())
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0])
    assert torch.equal(model(a, b, shift=0.5), a + b + 0.5)  # w = 0: theta = theta0 = ones
    theta = torch.full((3,), 2.0)
    assert torch.equal(model(a, b, theta=theta), 2 * a + b)
    with torch.no_grad():
        model.w.fill_(1.0)
    assert torch.allclose(model(a, b), model.flat_params() * a + b)


def test_the_causal_lm_path_gives_the_logits_it_gave_before(tiny_config):
    """GPT-2 + LoRA (peft): the adapter is chosen by itself and the logits are those of the old forward,
    net(idx, use_cache=False).logits with theta set, whether theta comes by keyword or second positionally."""
    model = build_model(tiny_config, vocab_size=257, eot_id=256)
    assert type(model.adapter) is CausalLMAdapter
    with torch.no_grad():
        model.w.normal_(generator=torch.Generator().manual_seed(0))
    model.eval()
    x = torch.randint(0, 257, (2, 16), generator=torch.Generator().manual_seed(1))
    theta = model.flat_params()
    with torch.no_grad():
        before = functional_call(model.net, model.param_dict(theta), (x,), {"use_cache": False}).logits
        assert torch.equal(model(x), before)
        assert torch.equal(model(x, theta), before)  # as sublora's scorer and sampler call it
        assert torch.equal(model(x, theta=theta), before)
        assert torch.equal(model.loss(x[:, :-1], x[:, 1:], theta),
                           F.cross_entropy(model(x[:, :-1]).reshape(-1, 257), x[:, 1:].reshape(-1)))


def test_a_spec_and_a_factory_build_the_same_projector():
    net = nn.Linear(6, 5)
    by_spec = SubspaceModel(net, "sparse", d=4, seed=3)
    by_factory = SubspaceModel(nn.Linear(6, 5), registry("projector").config("sparse").build, d=4, seed=3)
    w = torch.randn(4)
    assert torch.equal(by_spec.projector(w), by_factory.projector(w))
    assert by_spec.projector.config.spec == "sparse"


def test_construction_errors_name_the_problem():
    frozen = nn.Linear(3, 3).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        SubspaceModel(frozen, "dense", d=2)
    with pytest.raises(ConfigError, match="projector_options go with a projector spec"):
        SubspaceModel(nn.Linear(3, 3), registry("projector").config("dense").build, d=2, projector_options={})
    with pytest.raises(ConfigError, match="Invalid options for projector 'dense'"):
        SubspaceModel(nn.Linear(3, 3), "dense", d=2, projector_options={"nonsense": 1})
