"""The typed description every plugin registers: a Pydantic config class.

An entry point names a ``ComponentConfig`` subclass (cheap to import: no
torch). The config validates options (unknown fields rejected), knows its
variants and names its implementation as ``"module:attribute"``, imported
only when the component is built. This is PEFT's config-to-implementation
mapping, and it keeps ``sublora plugins`` fast.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

from sublora.core.errors import ConfigError, PluginLoadError


def load_object(path: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module
    except Exception as exc:  # noqa: BLE001 - any import failure is a plugin failure
        raise PluginLoadError(
            f"Could not load {path!r}: {type(exc).__name__}: {exc}",
            hint="Reinstall the package that provides it, or pick another component (see `sublora plugins`).",
        ) from exc


class ComponentConfig(BaseModel):
    """Base of every component config.

    Subclasses set the class variables and add their own typed options.
    ``variant`` holds the part after the colon of the spec.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    kind: ClassVar[str] = "component"
    description: ClassVar[str] = ""
    variants: ClassVar[tuple[str, ...]] = ()
    default_variant: ClassVar[str | None] = None
    implementation: ClassVar[str] = ""

    variant: str | None = None
    _registered_name: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_variant(self) -> "ComponentConfig":
        if self.variant is None and self.default_variant is not None:
            object.__setattr__(self, "variant", self.default_variant)
        if self.variant is not None and self.variant not in self.variants:
            raise ValueError(unknown_variant_message(self.variant, self.variants))
        return self

    @property
    def spec(self) -> str:
        name = self._registered_name or type(self).__name__
        return name if self.variant is None else f"{name}:{self.variant}"

    def implementation_class(self) -> type:
        if not self.implementation:
            raise PluginLoadError(f"{type(self).__name__} names no implementation.")
        return load_object(self.implementation)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Instantiate the implementation with this config as first argument."""
        return self.implementation_class()(self, *args, **kwargs)


def unknown_variant_message(variant: str, variants: tuple[str, ...]) -> str:
    """'unknown variant 'qrr'; did you mean 'qr'? allowed variants: qr' (the suggestion only when one is close)."""
    close = difflib.get_close_matches(variant, list(variants), n=1)
    suggestion = f"; did you mean {close[0]!r}?" if close else ";"
    allowed = ", ".join(variants) if variants else "none"
    return f"unknown variant {variant!r}{suggestion} allowed variants: {allowed}"


def _fields_at(model: type | None, path: tuple) -> list[str] | None:
    """The field names of the pydantic model reached from ``model`` along ``path`` (section names), or None."""
    for name in path:
        field = getattr(model, "model_fields", {}).get(name)
        model = getattr(field, "annotation", None) if field is not None else None
    fields = getattr(model, "model_fields", None)
    return list(fields) if fields else None


def validation_message(exc: Exception, prefix: str = "", model: type | None = None) -> str:
    """Turn a pydantic ValidationError into 'field: problem; field: problem'. With ``model`` (the class that
    was validated), an unknown field names the ones that exist there, and the closest one."""
    import difflib

    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for err in errors():
        raw = tuple(x for x in err.get("loc", ()) if x != "__root__")
        loc = ".".join(str(x) for x in raw)
        loc = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
            known = _fields_at(model, raw[:-1]) if model is not None and raw else None
            if known:
                close = difflib.get_close_matches(str(raw[-1]), known, n=1)
                msg += f" ({f'did you mean {close[0]!r}? ' if close else ''}known: {', '.join(known)})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def make_config(cls: type[ComponentConfig], name: str, variant: str | None, options: dict | None) -> ComponentConfig:
    """Validate options for a registered component; errors name the component and field."""
    try:
        config = cls(variant=variant, **(options or {}))
    except Exception as exc:
        raise ConfigError(
            f"Invalid options for {cls.kind} '{name}': {validation_message(exc)}.",
            hint=f"Fields of '{name}': {', '.join(k for k in cls.model_fields if k != 'variant') or 'none'}.",
        ) from exc
    config._registered_name = name
    return config
