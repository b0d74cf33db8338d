"""What a component offers, read from its config class: description, variants and each option's
type, default and constraints (what `sublora plugins NAME[:VARIANT]` prints).

Everything comes from the Pydantic config the entry point names, so a plugin documents its
options by declaring them (``Field(..., ge=1, description=...)``), and nothing is imported
beyond that config (no torch).
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from sublora.core.component import ComponentConfig
from sublora.core.errors import UnknownComponentError
from sublora.core.registry import KINDS, PluginEntry, registry
from sublora.core.spec import parse_spec

#: ClassVars every component has; the others (e.g. a quantizer's fixed_codebook) are listed as settings.
_STANDARD_CLASSVARS = frozenset({"kind", "description", "variants", "default_variant", "implementation"})

#: kind -> (the config field that selects it, the field that holds its options)
SELECTED_BY: dict[str, tuple[str, str]] = {
    "projector": ("sublora.projector", "sublora.projector_options"),
    "quantizer": ("bound.quantizer", "bound.quantizer_options"),
    "coder": ("bound.coder", "bound.coder_options"),
    "bound": ("bound.estimators", "bound.estimator_options.NAME"),
    "source": ("data.source", "data.source_options"),
    "tokenizer": ("data.tokenizer", "data.tokenizer_options"),
    "model": ("model.impl", "none (an implementation has no options)"),  # issue 14.1
    "launcher": ("launcher", "the grid's launchers.NAME (sublora sweep)"),  # issue 12.5: a sweep option
}

_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "multiple_of": "multiple of",
           "min_length": "min length", "max_length": "max length"}


@dataclass(frozen=True)
class OptionInfo:
    """One option of a component config."""

    name: str
    type: str
    required: bool
    default: Any  #: the default value (None when required)
    constraints: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class ComponentInfo:
    """A registered component and everything its config declares."""

    entry: PluginEntry
    config_class: type[ComponentConfig]
    variant: str | None  #: the variant asked for (or the default one)
    description: str
    variants: tuple[str, ...]
    default_variant: str | None
    implementation: str
    settings: dict[str, Any]  #: other ClassVars, e.g. {"fixed_codebook": True}
    options: tuple[OptionInfo, ...]
    checks: tuple[str, ...]  #: validators across fields, by name

    @property
    def spec(self) -> str:
        return self.entry.name if self.variant is None else f"{self.entry.name}:{self.variant}"


def describe(spec: str, kind: str | None = None) -> list[ComponentInfo]:
    """The component(s) named ``spec`` (``family[:variant]``), in every kind or only in ``kind``.

    Raises UnknownComponentError with the closest name (or variant), and PluginLoadError for a
    plugin that does not load or is registered twice.
    """
    parsed = parse_spec(spec, kind or "component")
    kinds = [kind] if kind else [k for k in KINDS if parsed.family in registry(k).names()]
    if not kinds:
        raise _unknown(parsed.family)
    infos = []
    for k in kinds:
        reg = registry(k)
        entry = reg.entry(parsed.family)
        cls = reg.load(parsed.family)
        variants = tuple(cls.variants)
        if parsed.variant is not None and parsed.variant not in variants:
            close = difflib.get_close_matches(parsed.variant, list(variants), n=1)
            suggestion = f" Did you mean '{entry.name}:{close[0]}'?" if close else ""
            raise UnknownComponentError(
                f"Unknown variant '{parsed.variant}' of {k} '{entry.name}'.{suggestion}",
                hint=(f"Variants of {entry.name}: {', '.join(variants)}." if variants
                      else f"{k} '{entry.name}' has no variants; use '{entry.name}'."),
            )
        infos.append(ComponentInfo(
            entry=entry, config_class=cls, variant=parsed.variant or cls.default_variant,
            description=str(cls.description or ""), variants=variants, default_variant=cls.default_variant,
            implementation=cls.implementation, settings=_settings(cls), options=options_of(cls),
            checks=tuple(_name(d.func) for d in cls.__pydantic_decorators__.model_validators.values()
                         if _name(d.func) != "check_variant"),
        ))
    return infos


def _unknown(name: str) -> UnknownComponentError:
    everything = {n: k for k in KINDS for n in registry(k).names()}
    close = difflib.get_close_matches(name, list(everything), n=1)
    suggestion = f" Did you mean '{close[0]}' ({everything[close[0]]})?" if close else ""
    return UnknownComponentError(f"Unknown component '{name}'.{suggestion}",
                                 hint="`sublora plugins` lists every registered component.")


def options_of(cls: type[ComponentConfig]) -> tuple[OptionInfo, ...]:
    """Every option of a config class except ``variant`` (which the spec sets)."""
    checks: dict[str, list[str]] = {}
    for d in cls.__pydantic_decorators__.field_validators.values():
        for field in d.info.fields:
            checks.setdefault(field, []).append(f"checked by {_name(d.func)}")
    out = []
    for name, field in cls.model_fields.items():
        if name == "variant":
            continue
        required = field.is_required()
        default = None if required else _default(field)
        out.append(OptionInfo(name, type_name(field.annotation), required, default,
                              (*_constraints(field.metadata), *checks.get(name, ())), field.description or ""))
    return tuple(out)


def _default(field: Any) -> Any:
    try:
        return field.get_default(call_default_factory=True)
    except TypeError:  # pydantic >= 2.10: a factory may take the validated data
        try:
            return field.get_default(call_default_factory=True, validated_data={})
        except Exception:  # noqa: BLE001
            return "<computed>"
    except Exception:  # noqa: BLE001 - a failing factory is shown, not raised
        return "<computed>"


def _constraints(metadata: list[Any]) -> list[str]:
    out = []
    for item in metadata:
        attrs = {k: v for k, v in vars(item).items() if v is not None} if hasattr(item, "__dict__") else {}
        for key in getattr(item, "__slots__", ()) or getattr(type(item), "__dataclass_fields__", {}):
            value = getattr(item, key, None)
            if value is not None:
                attrs[key] = value
        for key, value in attrs.items():
            out.append(f"{_BOUNDS[key]} {value}" if key in _BOUNDS else f"{key}={value}")
    return out


def type_name(annotation: Any) -> str:
    """A readable type: ``int``, ``list[str]``, ``'hoeffding' | 'bernstein'``, ``float | None``."""
    if annotation is None or annotation is type(None):
        return "None"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is not None:
        name = getattr(origin, "__name__", str(origin).replace("typing.", ""))
        return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
    if annotation is Any:
        return "Any"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _settings(cls: type[ComponentConfig]) -> dict[str, Any]:
    out = {}
    for name in sorted(getattr(cls, "__class_vars__", ()) - _STANDARD_CLASSVARS):
        value = getattr(cls, name, None)
        if isinstance(value, (bool, int, float, str)):
            out[name] = value
    return out


def _name(func: Any) -> str:
    func = getattr(func, "__func__", func)
    return getattr(func, "__name__", "validator").lstrip("_")
