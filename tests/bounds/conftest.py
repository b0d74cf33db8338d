"""A certified tiny run shared by the export and post-hoc tests (trained and bounded once per session)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def certified_run(tmp_path_factory, make_tiny_config):
    """A tiny trained run with its certificate (64 sampled blocks, 6 documents, no levels search, no QAT)."""
    from sublora.bounds.certify import certify
    from sublora.core.train import train

    run = tmp_path_factory.mktemp("certified") / "run"
    train(make_tiny_config(bound={"token_blocks": 64, "doc_samples": 6, "levels_grid": [], "qat_steps": 0}), run)
    certify(run)
    return run


@pytest.fixture(scope="session")
def exported_run(certified_run, tmp_path_factory):
    """``certified_run`` exported with ``sublora export`` semantics (export_hf)."""
    from sublora.bounds.export import export_hf

    out = tmp_path_factory.mktemp("exported") / "hf"
    export_hf(certified_run, out)
    return out
