"""Scoring split over processes gives the evidence of one process, bit for bit, and one certificate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sublora.bounds.evaluate import score_documents, score_token_blocks

from tiny_scoring import EOT, T, V, tiny_scoring_model
ALPHAS = (0.01, 0.5)


class _Shard:
    """Rank ``rank`` of ``world`` in one process: ranks run last to first, rank 0 gathers what the others left."""

    def __init__(self, rank: int, world: int, box: dict):
        self.rank, self.world, self.box = rank, world, box

    def gather(self, parts):
        assert not set(parts) & set(self.box), "two ranks scored the same batch"
        self.box.update(parts)
        return dict(self.box) if self.rank == 0 else None


def _sharded(fn, world: int):
    box: dict = {}
    for rank in reversed(range(world)):
        result = fn(_Shard(rank, world, box))
        assert (result is None) == (rank != 0)
    return result


@pytest.fixture(scope="module")
def model():
    return tiny_scoring_model()


@pytest.mark.parametrize("world", [2, 3])
def test_token_blocks_split_over_ranks_are_bitwise_one_process(model, world):
    tokens = np.random.default_rng(0).integers(0, V, size=23 * T + 1)
    one = score_token_blocks(model, tokens, T, ALPHAS, None, seed=0, batch_size=4, topk=(1, 5))
    many = _sharded(lambda s: score_token_blocks(model, tokens, T, ALPHAS, None, seed=0, batch_size=4, topk=(1, 5),
                                                 shard=s), world)
    assert np.array_equal(one.block_indices, many.block_indices) and one.sampled == many.sampled
    for name in ("loss", "xi2", "loss_extremes"):
        assert np.array_equal(getattr(one, name), getattr(many, name)), name
    for k in (1, 5):
        assert np.array_equal(one.topk_error[k], many.topk_error[k])


@pytest.mark.parametrize("world", [2, 3])
def test_documents_split_over_ranks_are_bitwise_one_process(model, world):
    """Documents whose windows fall into several batches: partial sums are added in batch order everywhere."""
    lengths = np.array([70, 5, 33, 120, 16, 9, 64, 41])
    ends = np.cumsum(lengths)
    tokens = np.random.default_rng(1).integers(0, EOT, size=int(ends[-1]))
    tokens[ends - 1] = EOT
    args = (model, tokens, ends - lengths, ends, EOT, T, 8, ALPHAS, (1, 3), 12)
    one = score_documents(*args, seed=4, batch_size=2)
    many = _sharded(lambda s: score_documents(*args, seed=4, batch_size=2, shard=s), world)
    assert np.array_equal(one.indices, many.indices) and one.tokens_scored == many.tokens_scored
    assert np.array_equal(one.bpd, many.bpd) and np.array_equal(one.loss_extremes, many.loss_extremes)
    for k in (1, 3):
        assert np.array_equal(one.topk_error[k], many.topk_error[k])


def _sublora(*args, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sublora.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_tiny_config):
    from sublora.core.train import train

    run = tmp_path_factory.mktemp("sharded") / "run"
    # every block (no subsampling term), small batches: many batches to share out
    train(make_tiny_config(bound={"token_blocks": None, "doc_samples": 6, "levels_grid": [], "qat_steps": 0,
                                  "batch_size": 8}), run)
    return run


@pytest.mark.slow
def test_bound_nproc_2_writes_the_one_process_certificate(trained, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(trained, one)
    shutil.copytree(trained, two)
    r1 = _sublora("bound", str(one), "--device", "cpu")
    assert r1.returncode == 0, r1.stdout + r1.stderr
    r2 = _sublora("bound", str(two), "--nproc", "2", "--device", "cpu")
    assert r2.returncode == 0, r2.stdout + r2.stderr
    with np.load(one / "evidence.npz") as a, np.load(two / "evidence.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            assert np.array_equal(a[name], b[name]), name
    c1, c2 = (json.loads((p / "certificate.json").read_text()) for p in (one, two))
    assert c1["evidence_sha256"] == c2["evidence_sha256"]
    assert c1["bounds"] == c2["bounds"] and c1["headline"] == c2["headline"]
    assert c1["evaluation"]["token_level"]["sampled"] is False  # every block: no subsampling term
    assert (c1["scoring"]["processes"], c2["scoring"]["processes"]) == (1, 2)
    assert c2["scoring"]["device"] == "cpu" and c2["scoring"]["dtype"] == "float32"
    verified = _sublora("verify", str(two), "--device", "cpu")
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.slow
def test_rank_0_refusing_releases_the_other_ranks(trained, tmp_path):
    """A run that already holds a certificate: rank 0 refuses, rank 1 is told to stop (no hang)."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "certificate.json").write_text("{}")
    r = _sublora("bound", str(run), "--nproc", "2", "--device", "cpu", timeout=90)
    assert r.returncode != 0
    assert "already holds a certificate" in r.stdout + r.stderr
