"""Registries of components, filled only through entry points.

Built-in components use the same entry points as third-party plugins, so
there is one loading path and the listing shows who provides each name.
Entry points are listed cheaply and loaded lazily; a plugin that fails to
load is reported as broken and breaks nothing else. Set
``SUBLORA_DISABLE_PLUGIN_AUTOLOAD=1`` to ignore every distribution but sublora's
own (as pytest's PYTEST_DISABLE_PLUGIN_AUTOLOAD).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from sublora.core.component import ComponentConfig, load_object, make_config
from sublora.core.errors import PluginLoadError, UnknownComponentError
from sublora.core.spec import ComponentSpec, parse_spec

#: The distributions of this repository; everything else is a third-party plugin.
BUILTIN_DISTRIBUTIONS = frozenset({"sublora-core", "sublora-projectors", "sublora-bounds", "sublora-cli"})

#: kind -> entry-point group
KINDS: dict[str, str] = {
    "projector": "sublora.projectors",
    "quantizer": "sublora.quantizers",
    "coder": "sublora.coders",
    "bound": "sublora.bounds",
    "source": "sublora.sources",
    "tokenizer": "sublora.tokenizers",
}


@dataclass(frozen=True)
class PluginEntry:
    kind: str
    name: str
    value: str
    distribution: str
    version: str


@dataclass(frozen=True)
class PluginStatus:
    entry: PluginEntry
    ok: bool
    variants: tuple[str, ...] = ()
    description: str = ""
    error: str = ""


def _autoload_disabled() -> bool:
    return os.environ.get("SUBLORA_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in ("", "0", "false", "no")


@lru_cache(maxsize=None)
def _entries(kind: str) -> tuple[PluginEntry, ...]:
    group = KINDS[kind]
    seen: dict[str, PluginEntry] = {}
    for ep in metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        if _autoload_disabled() and dist_name.lower() not in BUILTIN_DISTRIBUTIONS:
            continue
        entry = PluginEntry(kind, ep.name.lower(), ep.value, dist_name, version)
        previous = seen.get(entry.name)
        if previous is not None and previous.value != entry.value:
            raise PluginLoadError(
                f"{kind} '{entry.name}' is registered twice: by {previous.distribution} "
                f"({previous.value}) and by {entry.distribution} ({entry.value}).",
                hint="Uninstall one of the two distributions.",
            )
        seen[entry.name] = entry
    return tuple(sorted(seen.values(), key=lambda e: e.name))


def refresh() -> None:
    """Forget cached entry points (after installing a plugin in-process)."""
    _entries.cache_clear()
    _load.cache_clear()


class Registry:
    """All components of one kind: list, look up, validate and build."""

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise UnknownComponentError(f"Unknown component kind {kind!r}.", hint=f"Kinds: {', '.join(KINDS)}.")
        self.kind = kind

    def entries(self) -> tuple[PluginEntry, ...]:
        return _entries(self.kind)

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def entry(self, name: str) -> PluginEntry:
        name = name.lower()
        for e in self.entries():
            if e.name == name:
                return e
        available = self.names()
        close = difflib.get_close_matches(name, available, n=1)
        suggestion = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownComponentError(
            f"Unknown {self.kind} '{name}'.{suggestion}",
            hint=f"Available {self.kind}s: {', '.join(available) or 'none installed'}.",
        )

    def load(self, name: str) -> type[ComponentConfig]:
        return _load(self.entry(name))

    def config(self, spec: str | ComponentSpec, options: dict | None = None) -> ComponentConfig:
        """Parse the spec, find the component and validate its options."""
        parsed = parse_spec(spec, self.kind)
        cls = self.load(parsed.family)
        return make_config(cls, parsed.family, parsed.variant, options)

    def specs(self) -> list[str]:
        """Every loadable spec: each family and each of its variants (``rdkron``, ``rdkron:qr``, ...)."""
        return [spec for s in self.statuses() if s.ok
                for spec in (s.entry.name, *(f"{s.entry.name}:{v}" for v in s.variants))]

    def statuses(self) -> list[PluginStatus]:
        out = []
        for e in self.entries():
            try:
                cls = _load(e)
                out.append(PluginStatus(e, True, tuple(cls.variants), cls.description))
            except PluginLoadError as exc:
                out.append(PluginStatus(e, False, error=exc.message))
        return out


@lru_cache(maxsize=None)
def _load(entry: PluginEntry) -> type[ComponentConfig]:
    obj = load_object(entry.value)
    if not (isinstance(obj, type) and issubclass(obj, ComponentConfig)):
        raise PluginLoadError(
            f"{entry.kind} '{entry.name}' from {entry.distribution} points to {entry.value}, "
            "which is not a sublora ComponentConfig subclass."
        )
    if obj.kind != entry.kind:
        raise PluginLoadError(
            f"{entry.kind} '{entry.name}' from {entry.distribution} is a {obj.kind} config, not a {entry.kind}."
        )
    return obj


def registry(kind: str) -> Registry:
    return Registry(kind)


def all_statuses() -> list[PluginStatus]:
    return [s for kind in KINDS for s in Registry(kind).statuses()]
