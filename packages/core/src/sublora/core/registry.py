"""Registries of components, filled only through entry points.

Built-in components use the same entry points as third-party plugins, so
there is one loading path and the listing shows who provides each name.
Entry points are listed cheaply (one scan of the installed distributions)
and loaded lazily; a plugin that fails to load is reported as broken and
breaks nothing else. Two distributions that register the same name under one
kind make that name a conflict: it is listed as such and fails only when it is
selected (as pytest refuses a plugin registered twice). Set
``SUBLORA_DISABLE_PLUGIN_AUTOLOAD=1`` to ignore every distribution but sublora's
own (as pytest's PYTEST_DISABLE_PLUGIN_AUTOLOAD).
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from sublora.core.component import ComponentConfig, load_object, make_config
from sublora.core.errors import PluginLoadError, UnknownComponentError
from sublora.core.spec import ComponentSpec, parse_spec

#: The distributions of this repository; everything else is a third-party plugin.
BUILTIN_DISTRIBUTIONS = frozenset({"sublora-core", "sublora-projectors", "sublora-bounds", "sublora-cli",
                                   "sublora-lmgc"})

#: kind -> entry-point group
KINDS: dict[str, str] = {
    "projector": "sublora.projectors",
    "quantizer": "sublora.quantizers",
    "coder": "sublora.coders",
    "bound": "sublora.bounds",
    "source": "sublora.sources",
    "tokenizer": "sublora.tokenizers",
    "model": "sublora.models",  # GPT-2 implementations (issue 14.1)
    "launcher": "sublora.launchers",  # how `sublora sweep` runs its points (issue 12.5)
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
    """One listing row: an entry and whether it loads (``state``: ok, broken or conflict)."""

    entry: PluginEntry
    ok: bool
    variants: tuple[str, ...] = ()
    description: str = ""
    error: str = ""  #: the whole message
    hint: str = ""
    state: str = "ok"
    summary: str = ""  #: the cause in one line, for a listing (e.g. "ModuleNotFoundError: No module named 'x'")


def _autoload_disabled() -> bool:
    return os.environ.get("SUBLORA_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in ("", "0", "false", "no")


def _provider(ep: metadata.EntryPoint) -> tuple[str, str]:
    """The distribution name and version of an entry point; '?' when its metadata is missing or unreadable."""
    try:
        dist = getattr(ep, "dist", None)
        if dist is None:
            return "?", "?"
        return str(dist.metadata["Name"] or "?"), str(dist.version or "?")
    except Exception:  # noqa: BLE001 - a damaged dist-info must not break the listing
        return "?", "?"


@lru_cache(maxsize=None)
def _scan() -> dict[str, tuple[PluginEntry, ...]]:
    """Every entry of every kind, from one pass over the installed distributions."""
    found: dict[str, dict[tuple[str, str], PluginEntry]] = {kind: {} for kind in KINDS}
    installed = metadata.entry_points()  # read once; .select works on every Python >= 3.10
    for kind, group in KINDS.items():
        for ep in installed.select(group=group):
            _add(found[kind], kind, ep)
    return {kind: tuple(sorted(entries.values(), key=lambda e: (e.name, e.distribution, e.value)))
            for kind, entries in found.items()}


def _add(found: dict[tuple[str, str], PluginEntry], kind: str, ep: metadata.EntryPoint) -> None:
    dist_name, version = _provider(ep)
    if _autoload_disabled() and dist_name.lower() not in BUILTIN_DISTRIBUTIONS:
        return
    entry = PluginEntry(kind, ep.name.lower(), ep.value, dist_name, version)
    # The same name and target twice (one distribution seen on two paths) is one entry.
    found.setdefault((entry.name, entry.value), entry)


def _entries(kind: str) -> tuple[PluginEntry, ...]:
    return _scan()[kind]


def _conflict_error(kind: str, name: str, entries: tuple[PluginEntry, ...]) -> PluginLoadError:
    by = [f"by {e.distribution} {e.version} ({e.value})" for e in entries]
    times = "twice" if len(by) == 2 else f"{len(by)} times"
    return PluginLoadError(
        f"{kind} '{name}' is registered {times}: {', '.join(by[:-1])} and {by[-1]}.",
        hint=f"Uninstall all but one of {', '.join(sorted({e.distribution for e in entries}))} "
        "(`pip uninstall NAME`); until then no run can select it.",
    )


def refresh() -> None:
    """Forget cached entry points (after installing a plugin in-process)."""
    _scan.cache_clear()
    _load.cache_clear()


class Registry:
    """All components of one kind: list, look up, validate and build."""

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise UnknownComponentError(f"Unknown component kind {kind!r}.", hint=f"Kinds: {', '.join(KINDS)}.")
        self.kind = kind

    def entries(self) -> tuple[PluginEntry, ...]:
        """Every registration, sorted by name; a conflicting name appears once per distribution."""
        return _entries(self.kind)

    def names(self) -> list[str]:
        return sorted({e.name for e in self.entries()})

    def entry(self, name: str) -> PluginEntry:
        """The one entry of ``name``; UnknownComponentError (with the closest name) or, if two
        distributions register it, PluginLoadError naming both."""
        name = name.lower()
        matches = tuple(e for e in self.entries() if e.name == name)
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise _conflict_error(self.kind, name, matches)
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
        """One row per registration; a plugin that fails to load or is registered twice is a row too."""
        entries = self.entries()
        counts = Counter(e.name for e in entries)
        out = []
        for e in entries:
            if counts[e.name] > 1:
                others = sorted({x.distribution for x in entries if x.name == e.name and x != e})
                exc = _conflict_error(self.kind, e.name, tuple(x for x in entries if x.name == e.name))
                out.append(PluginStatus(e, False, error=exc.message, hint=exc.hint or "", state="conflict",
                                        summary=f"also registered by {', '.join(others)}"))
                continue
            try:
                cls = _load(e)
                out.append(PluginStatus(e, True, tuple(str(v) for v in cls.variants), str(cls.description or "")))
            except Exception as exc:  # noqa: BLE001 - e.g. a config whose variants are not strings
                message = exc.message if isinstance(exc, PluginLoadError) else f"{_where(e)}: {type(exc).__name__}: {exc}"
                out.append(PluginStatus(e, False, error=message, hint=getattr(exc, "hint", None) or "",
                                        state="broken", summary=_summary(exc, e)))
        return out


def _where(entry: PluginEntry) -> str:
    return f"{entry.kind} '{entry.name}' from {entry.distribution} {entry.version}"


def _summary(exc: BaseException, entry: PluginEntry) -> str:
    """The root cause in one line: the import error itself rather than the messages wrapping it."""
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    if cause is exc:
        text = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        text = text.removeprefix(f"{_where(entry)}: ").removeprefix(f"{_where(entry)} ")
    else:
        text = f"{type(cause).__name__}: {cause}"
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@lru_cache(maxsize=None)
def _load(entry: PluginEntry) -> type[ComponentConfig]:
    where = _where(entry)
    try:
        obj = load_object(entry.value)
    except PluginLoadError as exc:
        raise PluginLoadError(f"{where}: {exc.message}",
                              hint=f"Reinstall or uninstall {entry.distribution}; every other component still works. "
                              f"`sublora --debug plugins {entry.name} --kind {entry.kind}` shows the traceback."
                              ) from exc
    if not (isinstance(obj, type) and issubclass(obj, ComponentConfig)):
        raise PluginLoadError(
            f"{where} points to {entry.value}, which is not a sublora ComponentConfig subclass.",
            hint=f"The entry point of {entry.distribution} must name its component's config class.",
        )
    if obj.kind != entry.kind:
        raise PluginLoadError(
            f"{where} is a {obj.kind} config, not a {entry.kind}.",
            hint=f"Register it under the {KINDS.get(obj.kind, 'matching')} entry-point group instead.",
        )
    return obj


def registry(kind: str) -> Registry:
    return Registry(kind)


def all_statuses() -> list[PluginStatus]:
    return [s for kind in KINDS for s in Registry(kind).statuses()]
