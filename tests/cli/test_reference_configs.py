"""configs/reference/ holds the published settings and loads through the config loader as written (it cannot
run here: OpenWebText is not local). The sweep grid's points are exactly the three config files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sublora.core.overrides import resolve_config
from sublora.core.sweep import load_grid

REFERENCE = Path(__file__).resolve().parents[2] / "configs" / "reference"
D = {"25k": 25_000, "50k": 50_000, "100k": 100_000}


@pytest.mark.parametrize("name", list(D))
def test_each_reference_config_loads_with_the_published_settings(name):
    c = resolve_config(REFERENCE / f"gpt2_owt_d{name}.yaml")
    assert c.sublora.intrinsic_dim == D[name] and c.sublora.projector == "rdkron:qr"
    assert (c.data.source, c.data.source_options["name"], c.data.tokenizer) == ("hf", "openwebtext", "tiktoken:gpt2")
    assert (c.model.preset, c.model.block_size, c.model.pretrained) == ("small", 1024, None)
    assert (c.lora.r, c.lora.alpha, c.lora.dropout, c.lora.attention, c.lora.head) == (4, 32.0, 0.1, True, True)
    assert (c.train.lr, c.train.weight_decay, c.train.max_steps) == (5e-3, 1e-2, 600_000)
    assert c.train.batch_size * c.train.grad_accum == 320
    for ranks in (1, 2, 4, 5, 8):  # the accumulation splits evenly over the usual GPU counts
        assert c.train.grad_accum % ranks == 0
    b = c.bound
    assert (b.levels, b.levels_grid, b.qat_steps, b.hyper_bits, b.delta) == (11, [11], 0, 7.0, 0.05)
    assert (b.doc_samples, b.headline_target, b.estimators) == (10_000, "document_bpd", ["subsampling"])
    assert b.alphas == [1e-4, 1e-3, 5e-3, 1e-2, 0.05, 0.1, 0.25, 0.5]


def test_the_three_configs_differ_only_in_d():
    configs = {n: resolve_config(REFERENCE / f"gpt2_owt_d{n}.yaml").to_dict() for n in D}
    for n in D:
        configs[n]["sublora"].pop("intrinsic_dim")
    assert configs["25k"] == configs["50k"] == configs["100k"]


def test_the_reference_sweep_is_the_three_configs_with_slurm_resources():
    grid = load_grid(REFERENCE / "sweep_d.yaml")
    points = grid.points()
    assert [p.name for p in points] == ["d25000", "d50000", "d100000"]
    for point, name in zip(points, D):
        threads = resolve_config(REFERENCE / f"gpt2_owt_d{name}.yaml").train.threads
        assert grid.config(point, defaults={"train.threads": threads}) == resolve_config(
            REFERENCE / f"gpt2_owt_d{name}.yaml")
        resources = grid.resources_of(point)
        assert resources.gpus == 1 and resources.minutes == 2 * 24 * 60 and resources.mem_gb == 64
    from sublora.core.registry import registry

    assert registry("launcher").config("slurm", grid.launchers["slurm"]).max_requeue >= 10
