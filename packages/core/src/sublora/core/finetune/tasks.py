"""Classification tasks: labelled texts with a train and a validation split.

A task spec is ``family[:name]``, parsed here once:

- ``stdlib-packages`` (the offline default): which standard-library package a piece of Python
  code comes from. Files of the embedded corpus (the ``pystdlib`` source, through the sources
  registry) are split by file (seeded); a training example is a window of ``window`` characters
  drawn i.i.d. (seeded, with replacement) from the training files: a class uniformly, then a file
  of that class with probability proportional to its number of window starts, then a start
  uniformly. So the training examples are i.i.d. draws from that distribution by construction,
  which is what the example-level bounds need; validation windows come from the held-out files.
- ``csv:PATH``, ``jsonl:PATH``: local files with a text and a label column; PATH is a file, a folder
  or a glob, resolved by the registry's ``text`` source (``val_path`` for validation files, else a
  seeded ``val_fraction`` of the rows).
- ``hf:NAME`` and ``glue:cola``, ``glue:qqp``: a Hugging Face dataset (``datasets``), train and
  validation splits; offline, ``hf:json`` with ``data_files`` reads local files the same way.

Labels are class indices 0..C-1 (``num_classes`` fixes C; default: the largest label + 1) or
strings (the classes are their sorted distinct values). Bad input is refused, one clear error
each: a text or label column missing, a row without a label, a label out of range, one class.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sublora.core.errors import ConfigError, DataError

#: the offline default's classes: packages of the embedded corpus with many files and distinct code
DEFAULT_PACKAGES = ("asyncio", "email", "encodings", "lib2to3", "tkinter")
#: the GLUE tasks named in the docs: text column(s), label column, validation split
GLUE = {
    "cola": {"text_fields": ["sentence"], "label_field": "label", "val_split": "validation"},
    "qqp": {"text_fields": ["question1", "question2"], "label_field": "label", "val_split": "validation"},
}
FAMILIES = ("stdlib-packages", "csv", "jsonl", "hf", "glue")


class TaskOptions(BaseModel):
    """Options of every task family (each family reads the ones it needs; unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    # stdlib-packages
    packages: list[str] = Field(default_factory=lambda: list(DEFAULT_PACKAGES),
                                description="stdlib-packages: the top-level packages that are the classes.")
    window: int = Field(64, ge=8, description="stdlib-packages: characters per example.")
    train_examples: int = Field(50000, ge=2, description="stdlib-packages: training windows drawn.")
    val_examples: int = Field(1000, ge=1, description="stdlib-packages: validation windows drawn.")
    val_files: float = Field(0.2, gt=0, lt=1, description="stdlib-packages: share of each package's files held out.")
    root: str | None = Field(None, description="stdlib-packages: read this directory instead of the standard library.")
    # files and datasets
    text_fields: list[str] = Field(default_factory=lambda: ["text"], description="Column(s) joined into the text.")
    label_field: str = Field("label", description="Column holding the label.")
    num_classes: int | None = Field(None, ge=2, description="C for integer labels (default: largest label + 1).")
    val_path: str | None = Field(None, description="csv/jsonl: a validation file (default: a seeded split).")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="csv/jsonl without val_path: rows held out.")
    data_files: dict[str, str | list[str]] | None = Field(None, description="hf: local files per split (load_dataset).")
    config_name: str | None = Field(None, description="hf: dataset configuration.")
    train_split: str = Field("train")
    val_split: str = Field("validation")
    max_examples: int | None = Field(None, ge=2, description="Use only the first N training rows.")
    seed: int = Field(0, description="Seed of the split and of the drawn windows.")


@dataclass
class TaskData:
    """Texts and class indices of both splits, the class names, and what the task is."""

    name: str
    classes: list[str]
    train_texts: list[str]
    train_labels: list[int]
    val_texts: list[str]
    val_labels: list[int]
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self, split: str = "train") -> list[int]:
        labels = self.train_labels if split == "train" else self.val_labels
        return [labels.count(c) for c in range(self.num_classes)]

    def random_guess(self) -> dict[str, Any]:
        """Errors of predictors that ignore the text (docs/finetune.md): the majority class of the
        training examples (the baseline ``vacuous`` is judged against) and the uniform guess."""
        counts = self.class_counts()
        majority = max(range(self.num_classes), key=lambda c: (counts[c], -c))
        return {"majority_error": 1.0 - counts[majority] / len(self.train_labels),
                "majority_class": self.classes[majority], "uniform_error": 1.0 - 1.0 / self.num_classes,
                "rule": "majority_error = 1 - (training examples of the most frequent class) / N; "
                        "uniform_error = 1 - 1/C. A bound is called non-vacuous below majority_error."}

    def sha256(self) -> str:
        """Identity of the examples (texts, labels, classes): verify rebuilds the task and compares."""
        h = hashlib.sha256(json.dumps(self.classes).encode())
        for texts, labels in ((self.train_texts, self.train_labels), (self.val_texts, self.val_labels)):
            for text, label in zip(texts, labels):
                h.update(f"{label}\t{len(text)}\t".encode())
                h.update(text.encode("utf-8", "surrogatepass"))
        return h.hexdigest()


def parse_task(spec: str) -> tuple[str, str]:
    """(family, name) of ``family[:name]``; an unknown family lists the known ones."""
    family, _, name = spec.partition(":")
    if family not in FAMILIES:
        import difflib

        close = difflib.get_close_matches(family, FAMILIES, n=1)
        raise ConfigError(f"Unknown task {spec!r}." + (f" Did you mean {close[0]!r}?" if close else ""),
                          hint=f"Available: {', '.join(FAMILIES)} (e.g. stdlib-packages, csv:PATH, jsonl:PATH, "
                               "hf:NAME, glue:cola, glue:qqp).")
    if family in ("csv", "jsonl", "hf", "glue") and not name:
        raise ConfigError(f"Task {spec!r} needs a name after the colon (e.g. {family}:"
                          f"{'cola' if family == 'glue' else 'PATH' if family != 'hf' else 'NAME'}).")
    if family == "glue" and name not in GLUE:
        raise ConfigError(f"Unknown GLUE task {name!r}.", hint=f"Available: {', '.join(GLUE)}; any other dataset: "
                                                               "hf:NAME with text_fields and label_field.")
    return family, name


def load_task(spec: str, options: dict[str, Any] | TaskOptions | None = None) -> TaskData:
    """The task ``spec`` with its options, validated (DataError on bad input)."""
    family, name = parse_task(spec)
    opts = options if isinstance(options, TaskOptions) else _options(options or {})
    if family == "stdlib-packages":
        task = _stdlib_packages(opts)
    elif family in ("csv", "jsonl"):
        task = _local_files(family, name, opts)
    else:
        task = _hf(family, name, opts)
    _check_classes(task)
    return task


def _options(raw: dict[str, Any]) -> TaskOptions:
    from sublora.core.component import validation_message

    try:
        return TaskOptions.model_validate(raw)
    except Exception as exc:
        raise ConfigError(f"Invalid task options: {validation_message(exc)}.",
                          hint="Fix the --task.options.FIELD=VALUE override or the task section of the YAML file.") from exc


def _check_classes(task: TaskData) -> None:
    if not task.train_texts:
        raise DataError(f"Task {task.name!r} has no training examples.")
    if not task.val_texts:
        raise DataError(f"Task {task.name!r} has no validation examples.",
                        hint="Give a validation file or split (val_path, val_split), or raise val_fraction.")
    present = sorted(set(task.train_labels))
    if len(present) < 2:
        only = task.classes[present[0]] if present else "none"
        raise DataError(f"Task {task.name!r} has one class in its training examples ({only!r}): there is nothing "
                        "to classify and every bound would be trivial.",
                        hint="Give examples of at least two labels (check label_field and the file).")


# ---------------------------------------------------------------- stdlib-packages


def _stdlib_packages(opts: TaskOptions) -> TaskData:
    from sublora.core.registry import registry

    if len(opts.packages) < 2 or len(set(opts.packages)) != len(opts.packages):
        raise DataError(f"stdlib-packages needs at least two distinct packages; got {opts.packages}.",
                        hint="Set task.options.packages, e.g. [asyncio, email].")
    source = registry("source").config("pystdlib", {"root": opts.root} if opts.root else {}).build()
    by_package: dict[str, list[tuple[str, str]]] = {p: [] for p in opts.packages}
    for doc_id, text in source.documents():  # sorted by path: the split depends only on the data
        package = doc_id.split("/", 1)[0] if "/" in doc_id else None
        if package in by_package and len(text) >= opts.window:
            by_package[package].append((doc_id, text))
    rng = random.Random(opts.seed)
    train_files, val_files = [], []
    for package in opts.packages:
        files = by_package[package]
        if len(files) < 2:
            raise DataError(f"Package {package!r} has {len(files)} file(s) of at least {opts.window} characters in "
                            f"{source.location()}; a train/validation split by file needs two.",
                            hint="Choose packages with more files (task.options.packages).")
        order = list(range(len(files)))
        rng.shuffle(order)
        k = max(1, round(opts.val_files * len(files)))
        val_files.append([files[i] for i in sorted(order[:k])])
        train_files.append([files[i] for i in sorted(order[k:])])
    train = _draw_windows(train_files, opts.window, opts.train_examples, random.Random(opts.seed + 1))
    val = _draw_windows(val_files, opts.window, opts.val_examples, random.Random(opts.seed + 2))
    return TaskData(
        name="stdlib-packages", classes=list(opts.packages),
        train_texts=[t for t, _ in train], train_labels=[c for _, c in train],
        val_texts=[t for t, _ in val], val_labels=[c for _, c in val],
        description={"source": source.location(), "train_files": {p: len(f) for p, f in zip(opts.packages, train_files)},
                     "val_files": {p: len(f) for p, f in zip(opts.packages, val_files)},
                     "scenario": "training windows are i.i.d. draws (seeded) from the training files: a class "
                                 "uniformly, a file of it in proportion to its window starts, a start uniformly"})


def _draw_windows(files: list[list[tuple[str, str]]], window: int, n: int,
                  rng: random.Random) -> list[tuple[str, int]]:
    out = []
    cumulative = [list(itertools.accumulate(len(text) - window + 1 for _, text in group)) for group in files]
    for _ in range(n):
        c = rng.randrange(len(files))
        (_, text), = rng.choices(files[c], cum_weights=cumulative[c])  # = weights=..., without re-summing
        start = rng.randrange(len(text) - window + 1)
        out.append((text[start:start + window], c))
    return out


# ---------------------------------------------------------------- local files and datasets


def _rows_csv(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return rows, list(reader.fieldnames or [])


def _rows_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    from sublora.core.data.sources import jsonl_records

    rows = [row for _, row in jsonl_records(path)]
    columns = {key: None for row in rows for key in row}
    return rows, list(columns)


def _read_file(family: str, path_text: str) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Rows and columns of every .csv / .jsonl file ``path_text`` names (a file, a folder or a glob, resolved
    by the registry's ``text`` source, in its sorted order), and where they came from."""
    from sublora.core.registry import registry

    source = registry("source").config("text", {"path": path_text, "extensions": [f".{family}"]}).build()
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    for path, _ in source.files():
        more, cols = (_rows_csv if family == "csv" else _rows_jsonl)(path)
        rows += more
        columns.update(dict.fromkeys(cols))
    return rows, list(columns), {"location": source.location(), "files": len(source.files())}


def _local_files(family: str, path: str, opts: TaskOptions) -> TaskData:
    rows, columns, where = _read_file(family, path)
    if opts.val_path is not None:
        val_rows, val_columns, where["validation"] = _read_file(family, opts.val_path)
        columns = [c for c in columns if c in val_columns] if rows else val_columns
    else:
        order = list(range(len(rows)))
        random.Random(opts.seed).shuffle(order)
        k = max(1, round(opts.val_fraction * len(rows))) if len(rows) > 1 else 0
        held = set(order[:k])
        val_rows = [r for i, r in enumerate(rows) if i in held]
        rows = [r for i, r in enumerate(rows) if i not in held]
    return _labelled(f"{family}:{path}", rows, val_rows, columns, opts, where)


def _hf(family: str, name: str, opts: TaskOptions) -> TaskData:
    try:
        import datasets
    except ImportError as exc:
        raise DataError("Hugging Face tasks need the `datasets` package.",
                        hint="Run `pip install sublora-core[hf]`, or use a csv:/jsonl: task.") from exc
    if family == "glue":
        defaults = GLUE[name]
        dataset, config_name = "glue", name
        fields_set = opts.model_fields_set
        opts = opts.model_copy(update={k: v for k, v in defaults.items() if k not in fields_set})
    else:
        dataset, config_name = name, opts.config_name
    try:
        ds = datasets.load_dataset(dataset, config_name, data_files=opts.data_files)
    except Exception as exc:
        raise DataError(f"Could not load dataset {dataset!r} ({type(exc).__name__}: {exc}).",
                        hint="Offline, use hf:json with task.options.data_files={train: ..., validation: ...}, "
                             "or a csv:/jsonl: task.") from exc
    for split in (opts.train_split, opts.val_split):
        if split not in ds:
            raise DataError(f"Dataset {dataset!r} has no split {split!r} (splits: {', '.join(ds)}).",
                            hint="Set task.options.train_split / val_split.")
    train, val = ds[opts.train_split], ds[opts.val_split]
    return _labelled(f"{family}:{name}", list(train), list(val), list(train.column_names), opts, dataset)


def _labelled(name: str, rows: list[dict[str, Any]], val_rows: list[dict[str, Any]], columns: list[str],
              opts: TaskOptions, where: Any) -> TaskData:
    """Texts and class indices of both splits; refuses missing columns, missing and out-of-range labels."""
    for column in (*opts.text_fields, opts.label_field):
        if column not in columns:
            kind = "label" if column == opts.label_field else "text"
            raise DataError(f"Task {name!r} has no {kind} column {column!r} (columns: {', '.join(columns) or 'none'}).",
                            hint=f"Set task.options.{'label_field' if kind == 'label' else 'text_fields'} to the "
                                 f"column holding the {kind}.")
    if opts.max_examples is not None:
        rows = rows[: opts.max_examples]
    raw = [_label(r, opts.label_field, name, "train", i) for i, r in enumerate(rows)]
    raw_val = [_label(r, opts.label_field, name, "validation", i) for i, r in enumerate(val_rows)]
    classes, to_index = _classes(raw + raw_val, opts, name)
    texts = [_text(r, opts.text_fields) for r in rows]
    val_texts = [_text(r, opts.text_fields) for r in val_rows]
    from_data = None if opts.num_classes is not None else ("count" if all(isinstance(v, int) for v in raw + raw_val)
                                                            else "names")
    return TaskData(name=name, classes=classes, train_texts=texts, train_labels=[to_index(v) for v in raw],
                    val_texts=val_texts, val_labels=[to_index(v) for v in raw_val],
                    description={"source": where, "text_fields": opts.text_fields, "label_field": opts.label_field,
                                 "scenario": "the training rows are assumed i.i.d. draws from the task's distribution",
                                 "classes_from_data": from_data})


def _text(row: dict[str, Any], fields: list[str]) -> str:
    return "\n".join("" if row.get(f) is None else str(row[f]) for f in fields)


def _label(row: dict[str, Any], column: str, name: str, split: str, i: int) -> Any:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"Task {name!r}: {split} row {i + 1} has no label (column {column!r} is empty).",
                        hint="Every example needs a label; drop unlabelled rows (e.g. a test split with label -1 "
                             "is not a training split).")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return value.strip()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"Task {name!r}: {split} row {i + 1} has label {value!r}; labels are class indices or names.")
    return value


def _classes(values: list[Any], opts: TaskOptions, name: str):
    if all(isinstance(v, int) for v in values):
        C = opts.num_classes if opts.num_classes is not None else max(values) + 1
        bad = [v for v in values if not 0 <= v < C]
        if bad:
            raise DataError(f"Task {name!r}: label {bad[0]} is out of range: labels are class indices 0..{C - 1}"
                            + (" (num_classes)." if opts.num_classes is not None else "."),
                            hint="Fix the labels, or set task.options.num_classes to the number of classes.")
        return [str(c) for c in range(C)], int
    if any(isinstance(v, int) for v in values):
        raise DataError(f"Task {name!r} mixes integer and text labels.", hint="Use one kind of label throughout.")
    classes = sorted(set(values))
    index = {c: i for i, c in enumerate(classes)}
    return classes, index.__getitem__
