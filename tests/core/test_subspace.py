"""The subspace model: theta = theta0 + P w, only w trains, eval mode is deterministic."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sublora.core.build import build_model
from sublora.core.checkpoint import load_checkpoint, save_checkpoint
from sublora.core.errors import CheckpointError


def _model(cfg):
    return build_model(cfg, vocab_size=257, eot_id=256)


def test_theta_is_theta0_plus_projection(tiny_config):
    m = _model(tiny_config)
    with torch.no_grad():
        m.w.normal_()
    expected = m.theta0 + m.projector(m.w)
    assert torch.allclose(m.flat_params(), expected)
    assert m.flat_params().shape == (m.D,)


def test_only_w_is_trainable_and_base_is_frozen(tiny_config):
    m = _model(tiny_config)
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable == ["w"]
    assert all(s.group in ("lora_A", "lora_B") for s in m.layout.slots)
    assert any("lm_head" in s.name for s in m.layout.slots)  # head LoRA is on by default


def test_rebuilt_model_is_identical(tiny_config):
    a, b = _model(tiny_config), _model(tiny_config)
    x = torch.randint(0, 257, (2, 16))
    with torch.no_grad():
        a.w.normal_(generator=torch.Generator().manual_seed(1))
        b.w.copy_(a.w)
    a.eval(), b.eval()
    assert torch.equal(a(x), b(x))


def test_eval_mode_turns_off_lora_dropout(tiny_config):
    cfg = tiny_config.model_copy(update={"lora": tiny_config.lora.model_copy(update={"dropout": 0.5})})
    m = _model(cfg)
    with torch.no_grad():
        m.w.normal_(generator=torch.Generator().manual_seed(0))
    x = torch.randint(0, 257, (2, 16))
    m.train()
    assert not torch.equal(m(x), m(x)), "dropout should be active in train mode"
    m.eval()
    assert torch.equal(m(x), m(x)), "eval mode must reach the wrapped network's LoRA dropout"


def test_gradient_reaches_w_through_the_projector(tiny_config):
    m = _model(tiny_config)
    x = torch.randint(0, 257, (2, 16))
    m.loss(x, x).backward()
    assert m.w.grad is not None and torch.count_nonzero(m.w.grad) > 0


@pytest.mark.slow  # fresh processes: ~5 s
def test_checkpoint_roundtrip_in_a_new_process_gives_identical_logits(tiny_config, tmp_path):
    m = _model(tiny_config)
    with torch.no_grad():
        m.w.normal_(generator=torch.Generator().manual_seed(3))
    m.eval()
    x = torch.randint(0, 257, (2, 16), generator=torch.Generator().manual_seed(4))
    torch.save({"x": x, "logits": m(x).detach()}, tmp_path / "ref.pt")
    save_checkpoint(tmp_path / "ck.safetensors", m, tiny_config, step=1, val_loss=None)
    (tmp_path / "cfg.json").write_text(tiny_config.model_dump_json())
    script = f"""
import torch
from sublora.core.config import RunConfig
from sublora.core.build import build_model
from sublora.core.checkpoint import load_checkpoint
cfg = RunConfig.model_validate_json(open({str(tmp_path / 'cfg.json')!r}).read())
m = build_model(cfg, 257, 256)
load_checkpoint({str(tmp_path / 'ck.safetensors')!r}, m, cfg)
m.eval()
ref = torch.load({str(tmp_path / 'ref.pt')!r})
assert torch.equal(m(ref['x']), ref['logits']), 'logits differ'
print('identical')
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "identical" in out.stdout


def test_checkpoint_of_another_config_is_refused(tiny_config, tmp_path):
    m = _model(tiny_config)
    save_checkpoint(tmp_path / "ck.safetensors", m, tiny_config, step=1, val_loss=None)
    other = tiny_config.model_copy(update={"sublora": tiny_config.sublora.model_copy(update={"intrinsic_dim": 65})})
    with pytest.raises(CheckpointError, match="different model config"):
        load_checkpoint(tmp_path / "ck.safetensors", _model(other), other)
    seed_changed = tiny_config.model_copy(update={"sublora": tiny_config.sublora.model_copy(update={"seed": 5})})
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "ck.safetensors", _model(seed_changed), seed_changed)


def test_corrupt_checkpoint_is_a_clear_error(tiny_config, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad, _model(tiny_config), tiny_config)
