"""Turn what a contract check was given (a spec, a config or a built component) into a config or a component."""

from __future__ import annotations

from typing import Any

from sublora.core.component import ComponentConfig


def resolve(kind: str, spec: Any, options: dict | None, config_type: type, component_type: type,
            *build_args: Any) -> tuple[ComponentConfig | None, Any]:
    """(config, component) from a registered spec (``"name:variant"``), a config instance or a built component.

    A built component has no config to vary, so checks that need other options (e.g. other
    codebook sizes) skip those; its config is returned when it carries one.
    """
    if isinstance(spec, component_type):
        if options:
            raise ValueError("pass options only with a spec string; a built component already holds its options")
        return getattr(spec, "config", None), spec
    if isinstance(spec, config_type):
        if options:
            raise ValueError("pass options only with a spec string; a config already holds its options")
        config = spec
    elif isinstance(spec, str):
        from sublora.core.registry import registry

        config = registry(kind).config(spec, options)
    else:
        raise TypeError(f"expected a {kind} spec string, a {config_type.__name__} or a {component_type.__name__}; "
                        f"got {type(spec).__name__}")
    component = config.build(*build_args)
    assert isinstance(component, component_type), (
        f"{kind} '{config.spec}' built a {type(component).__name__}, not a {component_type.__name__} subclass")
    return config, component


def with_options(config: ComponentConfig, **update: Any) -> ComponentConfig:
    """The same component with some options changed, validated again (keeps the registered name)."""
    new = type(config)(**{**config.model_dump(), **update})
    new._registered_name = config._registered_name
    return new


def label(kind: str, config: ComponentConfig | None, component: Any) -> str:
    """How messages name the component: "quantizer 'grid'"."""
    return f"{kind} '{config.spec if config is not None else type(component).__name__}'"
