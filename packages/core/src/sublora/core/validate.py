"""Every component spec of a run config and its options, checked when the config loads.

Each component used to be looked up only when its stage ran, so an estimator
typo surfaced after training, QAT and scoring. ``RunConfig.from_dict`` calls
``validate_components`` (the CLI, sweeps and library all load configs there),
so a typo fails before any work. Everything goes through the registry: an
entry point loads a light config class (pydantic, no torch), the component's
own config validates its options, and a field added to it is checked too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sublora.core.errors import ConfigError, PluginLoadError, SubloraError, UnknownComponentError
from sublora.core.registry import registry
from sublora.core.spec import parse_spec

if TYPE_CHECKING:
    from sublora.core.config import RunConfig


@dataclass(frozen=True)
class Use:
    """One component the config selects: where its spec and options are, and what it is given."""

    kind: str
    spec: str
    spec_field: str
    options: dict[str, Any]
    options_field: str
    #: option name -> the config field it comes from (e.g. the quantizer's levels from bound.levels)
    option_fields: tuple[tuple[str, str], ...] = ()


def estimator_family(spec: str) -> str:
    """The estimator_options key of an estimator spec (its family, lower case as parse_spec gives it), as the
    bound stage reads it; never raises, so a malformed spec is reported where its field is checked."""
    return spec.split(":")[0].strip().lower()


def uses(config: "RunConfig") -> list[Use]:
    """Every component ``config`` selects, with the options each is built with."""
    d, s, b = config.data, config.sublora, config.bound
    out = [
        Use("source", d.source, "data.source", d.source_options, "data.source_options"),
        Use("tokenizer", d.tokenizer, "data.tokenizer", d.tokenizer_options, "data.tokenizer_options"),
        Use("projector", s.projector, "sublora.projector", s.projector_options, "sublora.projector_options"),
        Use("model", config.model.impl, "model.impl", {}, "model.impl"),
        Use("coder", b.coder, "bound.coder", b.coder_options, "bound.coder_options"),
    ]
    # The quantizer is built as the bound stage builds it: levels from bound.levels unless quantizer_options
    # set it, and once per levels_grid candidate (the candidate wins).
    base_origin = "bound.quantizer_options" if "levels" in b.quantizer_options else "bound.levels"
    builds = [({"levels": b.levels, **b.quantizer_options}, base_origin)]
    builds += [({**b.quantizer_options, "levels": n}, "bound.levels_grid") for n in b.levels_grid]
    for options, origin in builds:
        use = Use("quantizer", b.quantizer, "bound.quantizer", options, "bound.quantizer_options",
                  (("levels", origin),))
        if use not in out:
            out.append(use)
    for i, spec in enumerate(b.estimators):
        family = estimator_family(spec)
        out.append(Use("bound", spec, f"bound.estimators[{i}]", b.estimator_options.get(family) or {},
                       f"bound.estimator_options.{family}"))
    return out


def validate_components(config: "RunConfig") -> None:
    """Raise ConfigError naming the field of the first unknown spec or invalid option.

    A plugin that is installed but fails to import raises PluginLoadError, also naming the field.
    """
    for use in uses(config):
        _check(use)
    _check_estimator_option_keys(config)


def _check(use: Use) -> None:
    reg = registry(use.kind)
    try:
        parsed = parse_spec(use.spec, use.kind)
        cls = reg.load(parsed.family)
    except (ConfigError, UnknownComponentError) as exc:
        raise ConfigError(f"{use.spec_field}: {exc.message}", hint=exc.hint) from exc
    except PluginLoadError as exc:
        raise PluginLoadError(f"{use.spec_field}: {exc.message}", hint=exc.hint) from exc
    try:
        reg.config(parsed, use.options)
    except SubloraError as exc:
        if parsed.variant is not None and parsed.variant not in cls.variants:
            raise _unknown_variant(use, parsed.family, parsed.variant, cls.variants) from exc
        raise type(exc)(f"{_field_of(exc, use)}: {exc.message}", hint=exc.hint) from exc


def _unknown_variant(use: Use, family: str, variant: str, variants: tuple[str, ...]) -> ConfigError:
    close = difflib.get_close_matches(variant, variants, n=1)
    suggestion = f" Did you mean '{family}:{close[0]}'?" if close else ""
    allowed = ", ".join(f"{family}:{v}" for v in variants) if variants else f"'{family}' has no variants"
    return ConfigError(f"{use.spec_field}: Unknown variant '{variant}' of {use.kind} '{family}'.{suggestion}",
                       hint=f"Use {family} or one of: {allowed}." if variants else f"Use {family} ({allowed}).")


def _field_of(exc: BaseException, use: Use) -> str:
    """The config field to blame: the option's origin (e.g. bound.levels), else the options."""
    errors = getattr(exc.__cause__, "errors", None)
    heads = {str(e["loc"][0]) for e in errors() if e.get("loc")} if callable(errors) else set()
    origins = dict(use.option_fields)
    if heads and heads <= set(origins):
        return ", ".join(sorted({origins[h] for h in heads}))
    return use.options_field


def _check_estimator_option_keys(config: "RunConfig") -> None:
    """Options for an estimator that is not run would be silently ignored: refuse them."""
    families = [estimator_family(spec) for spec in config.bound.estimators]
    for key in config.bound.estimator_options:
        if key in families:
            continue
        close = difflib.get_close_matches(key, families, n=1)
        suggestion = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"bound.estimator_options.{key}: no estimator '{key}' among bound.estimators "
            f"({', '.join(config.bound.estimators) or 'none'}), so these options would be ignored.{suggestion}",
            hint="Key estimator_options by an estimator's family (the part before ':'), "
            "or add the estimator to bound.estimators.",
        )
