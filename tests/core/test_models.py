"""The model contract: every registered GPT-2 implementation (``model.impl``) computes the hf model's function.

Same tensors under the same names (so the layout, projectors and checkpoints are shared), the same
logits for the same weights, the same gradient in theta, the same training losses to float tolerance.
Parametrized over the registry, so a newly registered implementation is checked too.
"""

from __future__ import annotations

import pytest
import torch

from sublora.core.build import build_model
from sublora.core.config import RunConfig
from sublora.core.errors import ConfigError
from sublora.core.registry import registry

IMPLS = [name for name in registry("model").names() if name != "hf"]  # each checked against hf
V = 257


def config(impl: str = "hf", **model) -> RunConfig:
    return RunConfig.from_dict({
        "model": {"preset": "tiny", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16, "impl": impl, **model},
        "lora": {"attention_output": True, "mlp": True},  # every LoRA target group
        "sublora": {"intrinsic_dim": 32, "projector": "rdkron"},
    })


def nonzero_lora(*models) -> None:
    """LoRA B starts at zero, which would hide the adapters: give theta0 (every LoRA tensor) the same seeded
    nonzero value in each model, and the network's own tensors too."""
    theta0 = torch.randn(models[0].D, generator=torch.Generator().manual_seed(3)) * 0.05
    with torch.no_grad():
        for m in models:
            m.theta0.copy_(theta0)
            for name, value in m.param_dict(theta0).items():
                m.net.get_parameter(name).copy_(value)


_BUILT: dict[str, object] = {}


def both(impl: str, **model):
    """(hf model, ``impl`` model) of one config: fresh copies of models built once per module (building is
    most of these tests' time)."""
    import copy

    key = f"{impl}{sorted(model.items())}"
    if key not in _BUILT:
        _BUILT[key] = (build_model(config("hf", **model), V, V - 1), build_model(config(impl, **model), V, V - 1))
    return tuple(copy.deepcopy(m) for m in _BUILT[key])


def batch(T: int = 16):
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, V, (3, T), generator=gen), torch.randint(0, V, (3, T), generator=gen)


@pytest.mark.parametrize("impl", IMPLS)
def test_same_tensors_under_the_same_names(impl):
    hf, other = both(impl)
    assert [(s.name, s.shape) for s in other.layout.slots] == [(s.name, s.shape) for s in hf.layout.slots]
    assert other.layout.fingerprint() == hf.layout.fingerprint()
    assert torch.equal(other.theta0, hf.theta0)  # the same seeded LoRA init
    targets = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "lm_head"}
    assert {t for t in targets if any(f".{t}.lora_A" in s.name for s in other.layout.slots)} == targets


@pytest.mark.parametrize("impl", IMPLS)
def test_same_logits_for_the_same_weights(impl):
    hf, other = both(impl)
    nonzero_lora(hf)
    other.net.load_state_dict(hf.net.state_dict())  # the hf model's tensors, loaded by name
    nonzero_lora(other)
    with torch.no_grad():
        hf.w.normal_(0.0, 0.1)
        other.w.copy_(hf.w)
    x, _ = batch()
    hf.eval(), other.eval()
    with torch.no_grad():
        torch.testing.assert_close(other(x), hf(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_same_gradient_in_theta(impl):
    hf, other = both(impl)
    nonzero_lora(hf, other)
    x, y = batch()
    grads = []
    for m in (hf, other):
        theta = m.flat_params().detach().requires_grad_(True)
        m.loss(x, y, theta).backward()
        grads.append(theta.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("lora_dropout", [0.0, 0.1])  # the fused LoRA node and the separate LoRA term
def test_same_gradient_under_bf16_autocast(impl, lora_dropout):
    """``train.dtype=bfloat16`` runs the forward under autocast (the default on a GPU): an implementation's
    own autograd nodes must take autocast's dtype as nn.Linear does (lean's crashed: bfloat16 x float32),
    and theta's gradient stays float32; hf and ``impl`` agree to bf16's precision."""
    hf, other = both(impl)
    nonzero_lora(hf, other)
    for m in (hf, other):
        for module in m.net.modules():
            if hasattr(module, "lora_dropout") and lora_dropout:
                module.lora_dropout = torch.nn.ModuleDict({"default": torch.nn.Dropout(lora_dropout)}) \
                    if isinstance(module.lora_dropout, torch.nn.ModuleDict) else torch.nn.Dropout(lora_dropout)
        m.train()
    x, y = batch()
    losses, grads = [], []
    for m in (hf, other):
        torch.manual_seed(0)  # the same dropout masks (both draw them in the same order)
        theta = m.flat_params().detach().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m.loss(x, y, theta)
        loss.backward()
        losses.append(loss.item())
        grads.append(theta.grad)
    assert grads[1].dtype == torch.float32 and torch.isfinite(grads[1]).all()
    assert losses[1] == pytest.approx(losses[0], rel=1e-2)
    cos = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cos > 0.99, cos


@pytest.mark.parametrize("impl", IMPLS)
def test_same_training_losses(impl):
    """Ten AdamW steps from the same init: the losses agree to float tolerance."""
    curves = []
    models = both(impl)
    nonzero_lora(*models)
    for m in models:
        m.train()
        opt = torch.optim.AdamW([m.w], lr=5e-2)
        x, y = batch()
        losses = []
        for _ in range(10):
            loss = m.loss(x, y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
        curves.append(losses)
    assert curves[1] == pytest.approx(curves[0], rel=1e-5)
    assert curves[0][-1] < curves[0][0]


@pytest.mark.parametrize("impl", IMPLS)
def test_merged_network_computes_the_same_function(impl):
    """Scoring merges LoRA into the base weights once (untying the head): still the same logits."""
    from sublora.bounds.inference import merged_network

    _, m = both(impl)
    nonzero_lora(m)
    m.eval()
    x, _ = batch()
    with torch.no_grad():
        expected = m(x)
        embedding = m.net.get_output_embeddings().weight.clone()
        net = merged_network(m)
        args, kwargs, _ = m.adapter.arguments((x,), {}, None)
        torch.testing.assert_close(m.adapter.output(net(*args, **kwargs)), expected, rtol=1e-4, atol=1e-4)
    assert torch.equal(m.net.get_output_embeddings().weight, embedding)  # the model itself is untouched


@pytest.mark.parametrize("impl", IMPLS)
def test_a_pretrained_directory_loads(impl, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)  # GPT-2's own tanh GELU ("gelu_new"), as pretrained checkpoints have
    reference = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=32, n_embd=32, n_layer=2, n_head=2)).eval()
    reference.save_pretrained(tmp_path)
    m = build_model(config(impl, pretrained=str(tmp_path)), V, V - 1).eval()
    x, _ = batch()
    with torch.no_grad():
        torch.testing.assert_close(m(x), reference(x).logits, rtol=1e-4, atol=1e-4)


def test_checkpoints_are_shared_between_implementations():
    """model.impl does not change which function w computes: the model identity ignores it."""
    from sublora.core.checkpoint import model_identity, training_identity

    assert model_identity(config("lean")) == model_identity(config("hf"))
    assert training_identity(config("lean")) != training_identity(config("hf"))  # the bits of training differ


def test_lean_refuses_what_it_does_not_compute():
    from transformers import GPT2Config

    from sublora.core.lean_gpt2 import LeanGPT2

    with pytest.raises(ConfigError, match="scale_attn_by_inverse_layer_idx") as info:
        LeanGPT2.from_hf_config(GPT2Config(n_embd=32, n_layer=1, n_head=2, scale_attn_by_inverse_layer_idx=True))
    assert "model.impl=hf" in info.value.hint


def test_unknown_impl_names_the_choices():
    with pytest.raises(ConfigError, match="model.impl: Unknown model 'laen'. Did you mean 'lean'"):
        config("laen")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("projector", registry("projector").names())
def test_every_projector_trains_as_on_hf(impl, projector):
    """The LoRA tensors keep their names, so projectors that read them (film, nola, structured) work alike."""
    import copy

    from sublora.core.subspace import SubspaceModel

    projector = {"film": "film:rdkron"}.get(projector, projector)  # plain film finds no FiLM tensor in a GPT-2
    losses = []
    for built in both(impl):
        nonzero_lora(built)
        net = copy.deepcopy(built.net)  # the same network under another projector
        for name, p in net.named_parameters():
            p.requires_grad_(name in {s.name for s in built.layout.slots})
        m = SubspaceModel(net, projector, 32, 0, adapter=built.adapter)
        with torch.no_grad():
            m.w.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(2))
        x, y = batch()
        loss = m.loss(x, y)
        loss.backward()
        losses.append(loss.item())
        assert m.w.grad is not None and torch.isfinite(m.w.grad).all()
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
