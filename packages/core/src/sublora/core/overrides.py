"""YAML config files plus dotted command-line overrides (``--train.lr=1e-3``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from sublora.core.config import RunConfig
from sublora.core.errors import ConfigError


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn ['--a.b=1', '--c.d', 'x'] into {'a.b': 1, 'c.d': 'x'}; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) <= 2:
            raise ConfigError(f"Unexpected argument {arg!r}.", hint="Overrides look like --section.field=value.")
        key, eq, value = arg[2:].partition("=")
        if key == "debug":  # sublora's own flag, given after the command
            raise ConfigError("--debug goes before the command: sublora --debug COMMAND ...",
                              hint="Or set SUBLORA_DEBUG=1.")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError(f"Override --{key} has no value.", hint=f"Write --{key}=VALUE.")
            value = args[i + 1]
            i += 1
        if "." not in key:
            raise ConfigError(f"Unknown option --{key}.", hint="Config overrides are dotted: --section.field=value (see --help).")
        out[key] = _parse_value(value)
        i += 1
    return out


def _parse_value(text: str) -> Any:
    """A YAML scalar/list, with numbers like 1e-3 (a string in YAML 1.1) read as floats."""
    if text == "":
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"Cannot set {dotted}: {part} is not a section.")
            node = child
        node[parts[-1]] = value
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"Config file {path} is a directory; a YAML file is expected.",
                          hint="Pass the path of a .yaml file, e.g. --config configs/default.yaml.")
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.",
                          hint="Check the path; configs/default.yaml is the main job's config.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections.")
    return data


def resolve_config(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """base dict <- YAML file <- overrides, then validate."""
    data = copy.deepcopy(base or {})
    if config_file is not None:
        data = _deep_merge(data, load_yaml(config_file))
    data = apply_overrides(data, overrides or {})
    return RunConfig.from_dict(data)


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
