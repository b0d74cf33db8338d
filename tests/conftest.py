"""Shared test setup: a private cache dir, few threads, no network; tiny configs."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory):
    cache = tmp_path_factory.mktemp("sublora-cache")
    os.environ["SUBLORA_CACHE"] = str(cache)
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch

        # under pytest-xdist each of the two workers has one core
        default = "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2"
        torch.set_num_threads(int(os.environ.get("SUBLORA_TEST_THREADS", default)))
    except ImportError:
        pass
    yield


@pytest.fixture(scope="session")
def fresh_python():
    """``run(code, env=None, timeout=120)``: ``code`` in a new interpreter (nothing imported yet); returns the
    JSON its last output line holds. A non-zero exit fails the test with the interpreter's stderr."""
    import json
    import subprocess
    import sys

    def run(code: str, env: dict[str, str] | None = None, timeout: float = 120):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    return run


TINY = {
    "data": {"source": "text", "max_documents": None},
    "model": {"preset": "tiny", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "dropout": 0.0},
    "sublora": {"intrinsic_dim": 64, "projector": "rdkron"},
    "train": {"max_steps": 6, "batch_size": 2, "warmup_steps": 2, "eval_interval": 3, "eval_batches": 1,
              "log_interval": 2, "checkpoint_interval": 3, "threads": 1},
    "bound": {"doc_samples": 3, "token_blocks": 8},
}


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory):
    """A small folder of real text (stdlib modules) for fast data preparation."""
    import sysconfig
    from pathlib import Path

    root = tmp_path_factory.mktemp("corpus")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("abc.py", "bisect.py", "colorsys.py", "keyword.py", "fnmatch.py", "glob.py", "heapq.py", "numbers.py"):
        (root / f"{name}.txt").write_text((stdlib / name).read_text())
    return root


@pytest.fixture
def tiny_config(text_corpus):
    """A validated tiny RunConfig over the small corpus."""
    import copy

    from sublora.core.config import RunConfig

    data = copy.deepcopy(TINY)
    data["data"]["source_options"] = {"path": str(text_corpus)}
    return RunConfig.from_dict(data)


@pytest.fixture(scope="session")
def make_tiny_config(text_corpus):
    """A factory of validated tiny RunConfigs over the small corpus: make_tiny_config(sublora={"seed": 1})."""
    import copy

    from sublora.core.config import RunConfig

    def make(**sections):
        data = copy.deepcopy(TINY)
        data["data"]["source_options"] = {"path": str(text_corpus)}
        for section, fields in sections.items():
            data.setdefault(section, {}).update(fields)
        return RunConfig.from_dict(data)

    return make


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """`sublora run --preset smoke --train.threads=1` through the CLI, once per session: (run dir, the
    CompletedProcess). Shared by tests/e2e/test_smoke_run.py and tests/cli/test_run_errors.py (the root
    conftest.py keeps them on one xdist worker); a test that changes the run works on a copy."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("smoke") / "smoke"
    env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
    result = subprocess.run([sys.executable, "-m", "sublora.cli.app", "run", "--preset", "smoke", "--train.threads=1",
                             "--out", str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result
