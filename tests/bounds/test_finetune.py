"""`sublora finetune` (issue 13.1): tasks and their bad input, the classifier, the example-level
certificate and its verification. End-to-end tests are tiny (a few steps) and marked slow."""

from __future__ import annotations

import json
import math

import pytest
from sublora.core.errors import ConfigError, DataError, RunDirError, VerificationError
from sublora.core.finetune.tasks import load_task

TINY = {
    "model": {"base": "tiny", "block_size": 24},
    "sublora": {"intrinsic_dim": 40},
    "train": {"max_steps": 4, "batch_size": 4, "eval_interval": 2, "eval_examples": 8},
    "bound": {"doc_samples": 24},
}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(n=40):
    return [{"text": f"{'spam offer win' if i % 2 else 'meeting notes agenda'} {i}", "label": i % 2} for i in range(n)]


def _config(**sections):
    import copy

    from sublora.core.finetune.config import FinetuneConfig

    data = copy.deepcopy(TINY)
    for section, fields in sections.items():
        data.setdefault(section, {}).update(fields)
    return FinetuneConfig.from_dict(data)


# ------------------------------------------------------------------ tasks and bad input


def test_csv_and_jsonl_tasks_read_labels_and_split(tmp_path):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("text,label\n" + "".join(f"row {i},{'pos' if i % 3 else 'neg'}\n" for i in range(30)))
    task = load_task(f"csv:{csv_path}", {"seed": 1})
    assert task.classes == ["neg", "pos"] and len(task.train_texts) + len(task.val_texts) == 30
    assert len(task.val_texts) == 3  # val_fraction 0.1, seeded
    assert task.sha256() == load_task(f"csv:{csv_path}", {"seed": 1}).sha256()
    j = load_task(f"jsonl:{_jsonl(tmp_path / 't.jsonl', _rows())}")
    assert j.classes == ["0", "1"] and set(j.train_labels) == {0, 1}
    guess = j.random_guess()
    assert guess["uniform_error"] == 0.5 and 0.4 <= guess["majority_error"] <= 0.5


def test_file_tasks_resolve_paths_through_the_text_source(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    rows = _rows(40)
    _jsonl(folder / "b.jsonl", rows[20:])
    _jsonl(folder / "a.jsonl", rows[:20])
    (folder / "notes.txt").write_text("not a task file")
    task = load_task(f"jsonl:{folder}", {"val_path": str(folder / "a.jsonl")})
    assert len(task.train_texts) == 40 and len(task.val_texts) == 20  # a.jsonl then b.jsonl, sorted
    assert task.description["source"]["files"] == 2
    with pytest.raises(DataError, match="missing.jsonl' does not exist"):
        load_task(f"jsonl:{tmp_path / 'missing.jsonl'}")
    with pytest.raises(DataError, match="matches no file with suffix .jsonl"):
        load_task(f"jsonl:{folder / '*.txt'}")


def test_label_missing_is_refused(tmp_path):
    rows = _rows()
    rows[7] = {"text": "no label here"}
    with pytest.raises(DataError, match="row 8 has no label"):
        load_task(f"jsonl:{_jsonl(tmp_path / 't.jsonl', rows)}", {"val_path": str(_jsonl(tmp_path / 'v.jsonl', _rows(4)))})


def test_label_out_of_range_is_refused(tmp_path):
    rows = _rows()
    rows[3]["label"] = 5
    path = _jsonl(tmp_path / "t.jsonl", rows)
    with pytest.raises(DataError, match="label 5 is out of range: labels are class indices 0..1"):
        load_task(f"jsonl:{path}", {"num_classes": 2})
    rows[3]["label"] = -1  # without num_classes: a negative index is out of range
    with pytest.raises(DataError, match="label -1 is out of range"):
        load_task(f"jsonl:{_jsonl(tmp_path / 'u.jsonl', rows)}")


def test_one_class_is_refused(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [{"text": f"x {i}", "label": 0} for i in range(20)])
    with pytest.raises(DataError, match="one class"):
        load_task(f"jsonl:{path}")


def test_text_column_missing_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("sentence,label\n" + "".join(f"s{i},{i % 2}\n" for i in range(10)))
    with pytest.raises(DataError, match="no text column 'text' \\(columns: sentence, label\\)") as info:
        load_task(f"csv:{path}")
    assert "text_fields" in info.value.hint
    assert load_task(f"csv:{path}", {"text_fields": ["sentence"]}).num_classes == 2


def test_unknown_task_and_options_are_refused():
    with pytest.raises(ConfigError, match="Unknown task 'jsnl:x'. Did you mean 'jsonl'"):
        load_task("jsnl:x")
    with pytest.raises(ConfigError, match="Unknown GLUE task 'sst3'"):
        load_task("glue:sst3")
    with pytest.raises(ConfigError, match="Invalid task options"):
        load_task("stdlib-packages", {"windw": 3})


def test_stdlib_packages_task_is_deterministic_and_split_by_file():
    opts = {"packages": ["asyncio", "email"], "train_examples": 60, "val_examples": 20, "window": 40}
    task = load_task("stdlib-packages", opts)
    assert task.classes == ["asyncio", "email"] and len(task.train_texts) == 60 and len(task.val_texts) == 20
    assert all(len(t) == 40 for t in task.train_texts + task.val_texts)
    assert task.sha256() == load_task("stdlib-packages", opts).sha256()
    files = task.description
    assert all(files["val_files"][p] >= 1 and files["train_files"][p] > files["val_files"][p] for p in task.classes)
    with pytest.raises(DataError, match="at least two distinct packages"):
        load_task("stdlib-packages", {"packages": ["email"]})


def test_glue_tasks_read_their_columns(monkeypatch):
    """glue:qqp and glue:cola (online) with a local stand-in for the download: their columns and splits."""
    datasets = pytest.importorskip("datasets")
    asked = []

    def fake_load_dataset(name, config_name=None, data_files=None):
        asked.append((name, config_name))
        rows = {"qqp": {"question1": ["a?", "b?", "c?"], "question2": ["x?", "y?", "z?"], "label": [0, 1, 0]},
                "cola": {"sentence": ["ok .", "bad bad", "fine ."], "label": [1, 0, 1]}}[config_name]
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows),
                                     "validation": datasets.Dataset.from_dict(rows)})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    qqp = load_task("glue:qqp")
    assert asked[-1] == ("glue", "qqp") and qqp.train_texts[1] == "b?\ny?" and qqp.classes == ["0", "1"]
    cola = load_task("glue:cola")
    assert cola.train_texts == ["ok .", "bad bad", "fine ."] and len(cola.val_texts) == 3


def test_config_refuses_what_finetuning_does_not_do():
    with pytest.raises(ConfigError, match="lora.head"):
        _config(lora={"head": True})
    with pytest.raises(ConfigError, match="qat_steps"):
        _config(bound={"qat_steps": 5})
    with pytest.raises(ConfigError, match="sublora.projector"):
        _config(sublora={"projector": "rdkrn"})
    assert _config().bound.headline_target == "document_top1"


# ------------------------------------------------------------------ the classifier


def test_head_lies_in_the_subspace_and_only_w_trains():
    from sublora.core.finetune.model import build_classifier

    model, base = build_classifier(_config(), num_classes=3)
    names = [s.name for s in model.layout.slots]
    assert "head.weight" in names and "head.bias" in names and any("lora_A" in n for n in names)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["w"]
    assert base.identity["kind"] == "preset" and base.tokenizer == "bytes"
    import torch

    ids = torch.randint(0, 256, (2, 10))
    logits = model(ids, torch.tensor([10, 4]))
    assert logits.shape == (2, 3)
    padded = ids.clone()
    padded[1, 4:] = 256  # padding after the text does not change its features (causal model)
    assert torch.allclose(model(padded, torch.tensor([10, 4]))[1], logits[1], atol=1e-5)


def test_scores_smooth_over_the_classes():
    import numpy as np
    import torch
    from sublora.bounds.classification import score_examples
    from sublora.core.finetune.train import Encoded

    class Fixed(torch.nn.Module):  # logits that favour class 0
        def forward(self, ids, lengths, theta=None):
            return torch.tensor([[2.0, 0.0, 0.0]]).repeat(ids.size(0), 1)

    fixed = Fixed()
    fixed.flat_params = lambda: None
    data = Encoded(torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 3]), torch.tensor([0, 2]))
    bpd, errors, extremes, _ = score_examples(fixed, data, np.array([0, 1, 1]), (0.5,), 3)
    p = np.exp(2) / (np.exp(2) + 2)
    right, wrong = -np.log2(0.5 * p + 0.5 / 3), -np.log2(0.5 * (1 - p) / 2 + 0.5 / 3)
    assert np.allclose(bpd[0], [right, wrong, wrong])
    assert errors.tolist() == [0.0, 1.0, 1.0] and extremes.shape == (1, 2)


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """A tiny finetuning run on a local JSONL task (a few steps)."""
    from sublora.bounds.classification import finetune

    root = tmp_path_factory.mktemp("ft")
    task = _jsonl(root / "task.jsonl", _rows(60))
    run = root / "run"
    cert = finetune(_config(task={"spec": f"jsonl:{task}"}), run)
    return run, cert


@pytest.mark.slow
def test_finetune_writes_a_classification_certificate_that_verifies(finetuned):
    from sublora.bounds.verify import verify

    run, cert = finetuned
    assert cert["kind"] == "classification" and cert["format"] == "sublora-certificate/2"
    assert cert["code_bits"] == 8 * (run / "model.slc").stat().st_size
    assert cert["evaluation"]["examples"]["N"] == cert["task"]["N_train"] == 54
    assert cert["vocab"]["V"] == 2 and cert["headline"]["target"] == "document_top1"
    names = {b["name"] for b in cert["bounds"]}
    assert {"document_top1", "document_top1_kl"} <= names
    assert set(cert["random_guess"]) >= {"majority_error", "uniform_error", "rule"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["kind"] == "finetune" and manifest["status"] == "bounded"
    checks = verify(run, rescore_mode="all")
    assert any("re-scored all" in c for c in checks)
    assert json.loads((run / "manifest.json").read_text())["status"] == "verified"


@pytest.mark.slow
def test_verify_refuses_an_edited_classification_certificate(finetuned, tmp_path):
    import shutil

    from sublora.bounds.verify import verify

    run, _ = finetuned
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    cert = json.loads((copy / "certificate.json").read_text())
    cert["bounds"][0]["value"] *= 0.5
    (copy / "certificate.json").write_text(json.dumps(cert))
    with pytest.raises(VerificationError, match="disagrees"):
        verify(copy)
    shutil.copy(run / "certificate.json", copy / "certificate.json")
    (copy / "model.slc").write_bytes((copy / "model.slc").read_bytes()[:-1] + b"\x00")
    with pytest.raises(VerificationError, match="model.slc"):
        verify(copy)
    shutil.copy(run / "model.slc", copy / "model.slc")
    name = next(iter(cert["hypothesis"]))  # the file matches, the certificate names other quantized values
    cert = json.loads((run / "certificate.json").read_text())
    cert["hypothesis"][name]["values_sha256"] = "0" * 64
    (copy / "certificate.json").write_text(json.dumps(cert))
    with pytest.raises(VerificationError, match=f"Decoded tensor '{name}' differs from the certified"):
        verify(copy)


@pytest.mark.slow
def test_verify_refuses_edited_settings_and_task_records_and_names_what_it_does_not_rederive(finetuned, tmp_path):
    """The printed N, the bound settings and the task's class counts are checked, not only the bounds."""
    import shutil

    from sublora.bounds.verify import verify

    run, _ = finetuned
    checks = verify(run)
    assert any("informational, not re-derived: " in c and "accuracy" in c for c in checks)
    for section, key, value in (("bound_settings", "delta", 0.5), ("bound_settings", "hyper_bits", 20.0),
                                ("task", "N_train", 9999)):
        copy = tmp_path / f"{section}_{key}"
        shutil.copytree(run, copy)
        cert = json.loads((copy / "certificate.json").read_text())
        cert[section][key] = value
        (copy / "certificate.json").write_text(json.dumps(cert))
        with pytest.raises(VerificationError, match=f"{section}.{key}"):
            verify(copy)


def test_a_class_set_read_off_the_data_is_paid_for(tmp_path):
    """C (or the class names) chosen from the examples sets the head, so D, theta0 and P: its code is charged."""
    from sublora.bounds.classification import class_bits
    from sublora.core.finetune.tasks import load_task

    counted = load_task(f"jsonl:{_jsonl(tmp_path / 'a.jsonl', _rows(40))}")
    assert counted.description["classes_from_data"] == "count" and class_bits({**counted.description,
                                                                               "classes": counted.classes}) == 3.0
    fixed = load_task(f"jsonl:{tmp_path / 'a.jsonl'}", {"num_classes": 2})
    assert class_bits({**fixed.description, "classes": fixed.classes}) == 0.0
    named = load_task(f"jsonl:{_jsonl(tmp_path / 'b.jsonl', [{**r, 'label': ['ham', 'spam'][r['label']]} for r in _rows(40)])}")
    L = 8 * len(json.dumps(["ham", "spam"]).encode())
    assert class_bits({**named.description, "classes": named.classes}) == pytest.approx(L + 2 * math.log2(L))


@pytest.mark.slow
def test_the_certificate_charges_the_class_bits(finetuned):
    _, cert = finetuned
    assert cert["extra_breakdown"]["classes"] == 3.0  # C = 2 read off the labels: 2 floor(log2 2) + 1
    assert cert["extra_bits"] == pytest.approx(sum(cert["extra_breakdown"].values()))


@pytest.mark.slow
def test_sublora_bound_refuses_a_finetuning_run(finetuned):
    from sublora.bounds.certify import certify

    run, _ = finetuned
    with pytest.raises(RunDirError, match="finetuning run"):
        certify(run, force=True)


@pytest.mark.slow
def test_finetune_refuses_a_used_out_directory(finetuned, tmp_path):
    from sublora.bounds.classification import finetune

    run, _ = finetuned
    with pytest.raises(RunDirError, match="not empty .*a finished finetuning"):
        finetune(_config(), run)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text("{}")  # not a finetuning's manifest
    with pytest.raises(RunDirError, match="not empty"):
        finetune(_config(), tmp_path / "other")


@pytest.mark.slow
def test_an_interrupted_finetuning_resumes_to_the_uninterrupted_bits(tmp_path):
    """Stopped after its step-50 commit (state: w, AdamW, both generators, the metrics' length), a rerun of the
    same command ends with the uninterrupted run's weights, metrics and certificate; other settings are refused.
    The base is a pretrained directory with dropout 0.1, so the dropout generator's state matters too."""
    import torch
    from sublora.bounds.classification import finetune
    from sublora.bounds.verify import verify
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=257, n_positions=32, n_embd=32, n_layer=2, n_head=2, resid_pdrop=0.1,
                               embd_pdrop=0.1, attn_pdrop=0.1)).save_pretrained(tmp_path / "base")
    task = _jsonl(tmp_path / "task.jsonl", _rows(40))
    config = _config(task={"spec": f"jsonl:{task}"}, train={"max_steps": 70, "eval_interval": 20},
                     model={"base": str(tmp_path / "base"), "tokenizer": "bytes"})
    whole = finetune(config, tmp_path / "whole")

    def stop(step, event):
        if step == 62:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(config, tmp_path / "cut", on_step=stop)
    assert (tmp_path / "cut" / "checkpoint" / "state.pt").is_file()
    changed = _config(task={"spec": f"jsonl:{task}"}, train={"max_steps": 70, "eval_interval": 20, "lr": 0.02},
                      model={"base": str(tmp_path / "base"), "tokenizer": "bytes"})
    with pytest.raises(RunDirError, match=r"other settings \(changed: train\.lr\)"):
        finetune(changed, tmp_path / "cut")
    resumed = finetune(config, tmp_path / "cut")
    final = "checkpoint/final.safetensors"
    assert (tmp_path / "cut" / final).read_bytes() == (tmp_path / "whole" / final).read_bytes()
    assert resumed["bounds"] == whole["bounds"] and resumed["accuracy"] == whole["accuracy"]

    def events(run):
        return [{k: v for k, v in json.loads(line).items() if k != "elapsed"}
                for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert events(tmp_path / "cut") == events(tmp_path / "whole")
    assert not (tmp_path / "cut" / "checkpoint" / "state.pt").exists()
    assert verify(tmp_path / "cut")


@pytest.mark.slow
def test_a_finetuning_stopped_while_bounding_is_bounded_on_rerun(tmp_path, monkeypatch):
    """Trained (final weights saved), stopped in certification: the rerun bounds those weights, no retraining."""
    from sublora.bounds import classification

    task = _jsonl(tmp_path / "task.jsonl", _rows(40))
    config = _config(task={"spec": f"jsonl:{task}"})
    whole = classification.finetune(config, tmp_path / "whole")
    real = classification.certify_classification

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(classification, "certify_classification", stopped)
    with pytest.raises(KeyboardInterrupt):
        classification.finetune(config, tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "manifest.json").read_text())["status"] == "trained"
    monkeypatch.setattr(classification, "certify_classification", real)
    import sublora.core.finetune.train as train_module

    monkeypatch.setattr(train_module, "fit", lambda *a, **k: pytest.fail("retrained a trained run"))
    resumed = classification.finetune(config, tmp_path / "cut")
    assert resumed["bounds"] == whole["bounds"]


@pytest.mark.slow
def test_finetune_on_an_hf_dataset_stand_in(tmp_path):
    """The hf: code path (glue:cola / glue:qqp online) on local JSON files through `datasets`."""
    pytest.importorskip("datasets")
    from sublora.bounds.classification import finetune
    from sublora.bounds.verify import verify

    rows = [{"sentence": r["text"], "label": r["label"]} for r in _rows(40)]
    train, val = _jsonl(tmp_path / "train.json", rows), _jsonl(tmp_path / "validation.json", rows[:8])
    config = _config(task={"spec": "hf:json", "options": {"text_fields": ["sentence"], "data_files": {
        "train": str(train), "validation": str(val)}}})
    cert = finetune(config, tmp_path / "run")
    assert cert["task"]["N_train"] == 40 and cert["task"]["N_val"] == 8
    assert verify(tmp_path / "run")


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["hf", "lean"])
def test_finetune_from_a_sublora_run(make_tiny_config, tmp_path, impl):
    """A sublora run as the base (of either GPT-2 implementation: the main job's is lean): its model with LoRA
    merged, recorded and checked by verify."""
    import torch
    from sublora.bounds.classification import finetune
    from sublora.bounds.verify import verify
    from sublora.core.finetune.model import resolve_base
    from sublora.core.train import load_trained, train

    train(make_tiny_config(model={"impl": impl}), tmp_path / "pre")
    run_model, _, _ = load_trained(tmp_path / "pre")
    base = resolve_base(str(tmp_path / "pre"), 24, 0, None)
    ids = torch.randint(0, 256, (2, 16))
    with torch.no_grad():  # LoRA merged (the tied LM head untied first): the run's own function
        assert torch.allclose(base.lm(ids).logits, run_model(ids), atol=1e-4)
    task = _jsonl(tmp_path / "task.jsonl", _rows(40))
    cert = finetune(_config(task={"spec": f"jsonl:{task}"}, model={"base": str(tmp_path / "pre")}), tmp_path / "ft")
    assert cert["run"]["base"]["kind"] == "run" and cert["run"]["base"]["model"] == "best checkpoint"
    assert verify(tmp_path / "ft")
    from sublora.bounds.certify import certify

    certify(tmp_path / "pre", overrides={"bound.levels": 11, "bound.qat_steps": 0})  # the base run certified since: verify still rebuilds the base that was used
    assert verify(tmp_path / "ft")


@pytest.mark.slow
def test_cli_finetune_and_verify(tmp_path):
    from sublora.cli.app import app
    from typer.testing import CliRunner

    task = _jsonl(tmp_path / "task.jsonl", _rows(40))
    args = ["finetune", "--task", f"jsonl:{task}", "--model", "tiny", "--projector", "rdkron:qr",
            "--sublora.intrinsic_dim", "40", "--out", str(tmp_path / "run"), "--model.block_size=24",
            "--train.max_steps=3", "--train.batch_size=4", "--train.eval_examples=8", "--bound.doc_samples=20"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "Error bounds" in done.output and "majority-class error" in done.output
    check = CliRunner().invoke(app, ["verify", str(tmp_path / "run")])
    assert check.exit_code == 0 and "certificate verified" in check.output, check.output
    shown = CliRunner().invoke(app, ["show", str(tmp_path / "run")])
    assert shown.exit_code == 0 and "finetuning run" in shown.output and "Error bounds" in shown.output, shown.output


def test_a_coder_carrying_a_learned_model_is_refused_for_finetuning():
    """Its independence from the bounded examples cannot be checked here: it could code the model for free."""
    from sublora.bounds.classification import refuse_learned_coder
    from sublora.core.errors import ConfigError, DataError
    from sublora.core.registry import registry

    refuse_learned_coder(registry("coder").config("arithmetic").build(), "finetuning")  # no model: fine

    class Learned:
        def check_run_data(self, run_data):
            return {"prior": "runs/p"}

    class Refusing:
        def check_run_data(self, run_data):
            raise DataError("cannot be identified")

    for coder in (Learned(), Refusing()):
        with pytest.raises(ConfigError, match="learned model"):
            refuse_learned_coder(coder, "finetuning")
