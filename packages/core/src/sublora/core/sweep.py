"""Experiment grids: a base config plus axes, expanded into named points, one run directory each.

A GRID file (YAML)::

    name: adaptive-allocation
    preset: default                 # optional starting preset
    base:                           # overrides of every point, nested or dotted
      train.max_steps: 300
    axes:
      - name: d                     # a plain axis: one field, a list of values
        field: sublora.intrinsic_dim
        values: [1000, 2000]
      - name: alloc                 # a labelled axis: label -> overrides
        values:
          uniform: {sublora.projector: "structured:uniform"}
          fixed0.8: {sublora.projector: "structured:fixed", sublora.projector_options: {allocation_ratio: 0.8}}
      - name: seed                  # several fields set to the same value; replicates, not conditions
        fields: [train.seed, sublora.seed, model.init_seed]
        values: [42, 123, 999]
        replicate: true

Points are the Cartesian product of the axes, named by joining their labels
(``d1000_fixed0.8_seed42``); a plain axis labels its value as name + value.
Later axes override earlier ones and the base. ``replicate`` axes are averaged
over by ``sublora analyze``; the other axes define the conditions compared.

What a point asks a scheduler for (``sublora sweep --launcher slurm``) is not part of its
config: a ``resources:`` block gives every point's (partition, gpus, cpus, mem, time, ...),
and an axis overrides them per point with ``resources.*`` keys (``resources.gpus: 4``).
``launchers:`` holds options per launcher name (``slurm: {setup: [...]}``)::

    resources: {partition: gpu, gpus: 1, cpus: 8, mem: 32G, time: "12:00:00"}
    launchers:
      slurm: {setup: ["module load cuda"]}
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sublora.core.config import RunConfig
from sublora.core.errors import ConfigError
from sublora.core.launcher import Resources

RESOURCES = "resources."  #: dotted keys of an axis that set the point's resources, not its config
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


class Axis(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Short name, used in run-directory names.")
    field: str | None = Field(None, description="The dotted config field a plain axis sets.")
    fields: list[str] = Field(default_factory=list, description="Several dotted fields set to the same value.")
    values: list[Any] | dict[str, dict[str, Any]] = Field(
        description="Plain axis: a list of values. Labelled axis: a mapping label -> {dotted field: value}.")
    replicate: bool = Field(False, description="Points differing only here are replicates (e.g. seeds).")

    @model_validator(mode="after")
    def _shape(self) -> "Axis":
        targets = ([self.field] if self.field else []) + list(self.fields)
        if isinstance(self.values, dict):
            if targets:
                raise ValueError(f"axis {self.name!r}: labelled values (a mapping) set their own fields; "
                                 "drop 'field'/'fields'")
            for label, overrides in self.values.items():
                if not isinstance(overrides, dict) or not overrides:
                    raise ValueError(f"axis {self.name!r}: label {label!r} must map to a non-empty "
                                     "mapping of dotted fields")
        elif not targets:
            raise ValueError(f"axis {self.name!r}: a list of values needs 'field' or 'fields'")
        if not self.values:
            raise ValueError(f"axis {self.name!r} has no values")
        for label, _ in self.levels():
            if set(label) <= {"."}:  # '.', '..': the point's run directory would be the sweep's or its parent
                raise ValueError(f"axis {self.name!r}: label {label!r} cannot name a run directory; use letters or digits")
        for dotted in targets:
            if "." not in dotted:
                raise ValueError(f"axis {self.name!r}: field {dotted!r} must be dotted, e.g. sublora.intrinsic_dim")
        return self

    def levels(self) -> list[tuple[str, dict[str, Any]]]:
        """(label, dotted overrides) of every value of this axis, in order."""
        if isinstance(self.values, dict):
            return [(_safe(str(label)), dict(over)) for label, over in self.values.items()]
        targets = ([self.field] if self.field else []) + list(self.fields)
        return [(_safe(f"{self.name}{_fmt(v)}"), {t: v for t in targets}) for v in self.values]


class Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("sweep", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$", description="The sweep's name: its "
                      "default output is runs/NAME, so letters, digits, '_', '-' and '.' only (no path).")
    preset: str | None = Field(None, description="Starting preset of every point (see `sublora run --preset`).")
    base: dict[str, Any] = Field(default_factory=dict, description="Config of every point: nested or dotted keys.")
    axes: list[Axis] = Field(min_length=1)
    resources: Resources = Field(default_factory=Resources, description="What each point asks a scheduler for; "
                                 "axes override it with resources.* keys.")
    launchers: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Options per launcher name, "
                                                 "e.g. {slurm: {setup: ['module load cuda']}}.")

    @model_validator(mode="after")
    def _unique(self) -> "Grid":
        names = [a.name for a in self.axes]
        if len(set(names)) != len(names):
            raise ValueError(f"axis names must be unique; got {names}")
        seen: dict[str, tuple] = {}
        for point in self.points():
            if point.name.startswith("."):
                raise ValueError(f"point {point.name!r} starts with '.', which would hide its run directory; "
                                 f"change the first axis' label {point.labels[self.axes[0].name]!r}")
            if point.name in seen:
                raise ValueError(f"two points get the same name {point.name!r}; make the axis labels distinct")
            seen[point.name] = point.labels
            self.resources_of(point)  # a bad resources.* value fails here, naming the point
        return self

    def resources_of(self, point: "Point") -> Resources:
        """The point's resources: the grid's ``resources`` with the point's ``resources.*`` keys on top."""
        mine = {k[len(RESOURCES):]: v for k, v in point.overrides.items() if k.startswith(RESOURCES)}
        if not mine:
            return self.resources
        try:
            return Resources.model_validate({**self.resources.model_dump(exclude_unset=True), **mine})
        except Exception as exc:
            from sublora.core.component import validation_message

            raise ValueError(f"point {point.name!r}: resources: {validation_message(exc)}") from exc

    def points(self) -> list["Point"]:
        out = []
        for combo in itertools.product(*(a.levels() for a in self.axes)):
            overrides: dict[str, Any] = {}
            for _, over in combo:
                overrides.update(over)
            labels = {a.name: label for a, (label, _) in zip(self.axes, combo)}
            out.append(Point("_".join(labels.values()), labels, overrides))
        return out

    @property
    def conditions(self) -> list[str]:
        """Names of the axes that define the compared conditions (not replicates)."""
        return [a.name for a in self.axes if not a.replicate]

    @property
    def replicates(self) -> list[str]:
        return [a.name for a in self.axes if a.replicate]

    def config(self, point: "Point", defaults: dict[str, Any] | None = None) -> RunConfig:
        """The point's validated config: preset <- dotted ``defaults`` <- base <- axes; errors name the point.

        ``defaults`` are what the runner chooses (e.g. train.threads) unless the grid sets them itself.
        """
        from sublora.core.overrides import apply_overrides, _deep_merge
        from sublora.core.presets import preset as load_preset

        data = apply_overrides(load_preset(self.preset) if self.preset else {}, defaults or {})
        nested = {k: v for k, v in self.base.items() if "." not in k}
        dotted = {k: v for k, v in self.base.items() if "." in k}
        data = apply_overrides(_deep_merge(data, nested), dotted)
        data = apply_overrides(data, {k: v for k, v in point.overrides.items() if not k.startswith(RESOURCES)})
        try:
            return RunConfig.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"Grid point {point.name!r}: {exc}", hint=exc.hint) from exc


@dataclass(frozen=True)
class Point:
    name: str
    labels: dict[str, str]
    overrides: dict[str, Any] = field(default_factory=dict)


def load_grid(path: str | Path) -> Grid:
    """Read and validate a GRID file; errors name the file and the field."""
    from sublora.core.component import validation_message
    from sublora.core.overrides import load_yaml

    data = load_yaml(path)
    try:
        return Grid.model_validate(data)
    except Exception as exc:
        raise ConfigError(f"Invalid grid file {path}: {validation_message(exc)}.",
                          hint="A grid has `axes` (each with name and values; plain axes also a field), "
                          "optional `base` and `preset`; see configs/grids/.") from exc


def run_state(run_dir: str | Path) -> str:
    """'pending' (nothing yet), 'training' (started or interrupted), 'trained', 'bounded' or 'verified'."""
    from sublora.core.manifest import read_json

    manifest = Path(run_dir) / "manifest.json"
    if not manifest.is_file():
        return "pending"
    try:
        status = read_json(manifest).get("status", "training")
    except ValueError:
        return "training"
    if status in ("bounded", "verified") and not (Path(run_dir) / "certificate.json").is_file():
        return "trained"
    return status


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    return str(value)


def _safe(label: str) -> str:
    return _UNSAFE.sub("-", label).strip("-") or "x"
