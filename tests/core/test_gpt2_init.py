"""sublora.core.gpt2_init draws GPT-2's and LoRA's seeded init as transformers and peft do, bit for bit.

Compared with the libraries' own init (GPT2LMHeadModel(config) under manual_seed, get_peft_model under
manual_seed + 1), over shapes, seeds and LoRA target groups, and pinned by digests. If a later
transformers or peft release changes its init, the comparison reports it as a skip; runs keep
sublora's init either way (model.py loads it), which the digests hold still.
"""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch

from sublora.core.config import RunConfig
from sublora.core.gpt2_init import GPT2Shape, base_state, lora_state
from sublora.core.model import add_lora, build_base_model, gpt2_shape, lora_targets

V = 261
CASES = [  # (model section, lora section, sha256 prefix of every tensor drawn)
    ({"preset": "tiny", "block_size": 64, "init_seed": 0}, {}, "0d5ca22a57e0c8009dedbe01267a724f"),
    ({"preset": "tiny", "n_layer": 3, "n_embd": 48, "n_head": 3, "block_size": 40, "init_seed": 11},
     {"attention_output": True, "mlp": True}, "79aef0a3c921617cdcf5e618b6d31e90"),
    ({"preset": "mini", "block_size": 32, "init_seed": 7}, {"head": False, "mlp": True, "r": 2},
     "923a20bc01a166050a4705a0d8dbb713"),
]
#: The releases whose own init these digests were checked against (transformers, peft).
VERIFIED = {"transformers": "5.24.0", "peft": "0.21.2"}


def ours(config: RunConfig) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    shape = gpt2_shape(config.model, V)
    return (base_state(shape, config.model.init_seed),
            lora_state(shape, lora_targets(config.lora), config.lora.r, config.model.init_seed + 1))


@pytest.mark.parametrize("model, lora, digest", CASES)
def test_the_init_is_the_one_runs_were_made_with(model, lora, digest):
    """sublora's init does not move: every run's base weights and theta0 depend on it."""
    base, adapters = ours(RunConfig.from_dict({"model": model, "lora": lora}))
    state = {**base, **adapters}
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].numpy().tobytes())
    assert h.hexdigest()[:32] == digest


def libraries_own(config: RunConfig):
    """The GPT-2 + LoRA that transformers and peft draw themselves (sublora's init not loaded)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    shape = config.model.shape()
    hf_config = GPT2Config(vocab_size=V, n_positions=config.model.block_size, n_embd=shape["n_embd"],
                           n_layer=shape["n_layer"], n_head=shape["n_head"], activation_function="gelu")
    torch.manual_seed(config.model.init_seed)
    model = GPT2LMHeadModel(hf_config)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(config.model.init_seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = get_peft_model(model, PeftLoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, bias="none",
                                                   target_modules=lora_targets(config.lora), fan_in_fan_out=True))
    lora = {k.removeprefix("base_model.model."): v for k, v in net.state_dict().items() if ".lora_" in k}
    return base, lora


@pytest.mark.parametrize("model, lora, digest", CASES)
def test_every_tensor_equals_the_libraries_own_init(model, lora, digest):
    """The same draws as transformers and peft make themselves. A later release that draws differently is
    reported as a skip (runs keep sublora's init); with the releases verified, a difference fails."""
    from importlib.metadata import version

    config = RunConfig.from_dict({"model": model, "lora": lora})
    base, peft_lora = libraries_own(config)
    our_base, our_lora = ours(config)
    assert set(base) - set(our_base) == {"lm_head.weight"}  # tied to wte: not a tensor of its own
    assert set(our_lora) == set(peft_lora) and our_lora
    differ = [k for k in our_base if not torch.equal(our_base[k], base[k])]
    differ += [k for k in our_lora if not torch.equal(our_lora[k], peft_lora[k])]
    installed = {name: version(name) for name in VERIFIED}
    if differ and installed != VERIFIED:
        pytest.skip(f"{installed} draw GPT-2's or LoRA's init differently from {VERIFIED} ({differ[0]}, ...); "
                    "sublora keeps its own (the init runs were made with)")
    assert not differ


def test_the_draws_depend_on_the_seed_and_follow_gpt2s_scaled_init():
    shape = GPT2Shape(V, 64, 64, 2)
    a, b = base_state(shape, 0), base_state(shape, 1)
    assert not torch.equal(a["transformer.wte.weight"], b["transformer.wte.weight"])
    assert a["transformer.h.0.attn.c_attn.weight"].std().item() == pytest.approx(0.02, rel=0.05)
    assert a["transformer.h.1.mlp.c_proj.weight"].std().item() == pytest.approx(0.01, rel=0.05)  # 0.02 / sqrt(2 * 2)


def test_the_hf_model_keeps_sublora_init_whatever_transformers_draws(monkeypatch):
    """A transformers release that drew its init differently would not change a run's base weights."""
    from transformers import GPT2PreTrainedModel

    config = RunConfig.from_dict({"model": CASES[0][0]})
    before = build_base_model(config.model, V, V - 1).state_dict()
    monkeypatch.setattr(GPT2PreTrainedModel, "_init_weights", lambda self, module: None)
    patched, _ = libraries_own(config)
    assert not torch.equal(patched["transformer.wte.weight"], before["transformer.wte.weight"])  # the patch bites
    after = build_base_model(config.model, V, V - 1).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    monkeypatch.undo()
    net = add_lora(build_base_model(config.model, V, V - 1), config.lora, config.model.init_seed)
    lora = {k.removeprefix("base_model.model."): v for k, v in net.state_dict().items() if ".lora_" in k}
    expected = lora_state(gpt2_shape(config.model, V), lora_targets(config.lora), config.lora.r, config.model.init_seed + 1)
    assert all(torch.equal(lora[k], expected[k]) for k in expected)


@pytest.mark.slow  # a fresh process
def test_a_lean_run_builds_without_importing_transformers_or_peft(fresh_python):
    code = (
        "import sys, json\n"
        "from sublora.core.build import build_model\n"
        "from sublora.core.config import RunConfig\n"
        "m = build_model(RunConfig.from_dict({'model': {'preset': 'tiny', 'impl': 'lean', 'block_size': 32}}), 257, 256)\n"
        "print(json.dumps(sorted(n for n in ('transformers', 'peft') if n in sys.modules)))\n"
    )
    assert fresh_python(code) == []
