"""The one spec grammar: ``family[:variant]`` (``rdkron``, ``rdkron:qr``, ``structured:learned``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sublora.core.errors import ConfigError

_NAME = r"[A-Za-z][A-Za-z0-9_\-\.]*"
_SPEC = re.compile(rf"^(?P<family>{_NAME})(?::(?P<variant>[A-Za-z0-9_\-\.]+))?$")


@dataclass(frozen=True)
class ComponentSpec:
    family: str
    variant: str | None = None

    def __str__(self) -> str:
        return self.family if self.variant is None else f"{self.family}:{self.variant}"


def parse_spec(text: str | ComponentSpec, kind: str = "component") -> ComponentSpec:
    """Parse ``family[:variant]``; raise ConfigError naming the grammar otherwise."""
    if isinstance(text, ComponentSpec):
        return text
    match = _SPEC.match(str(text).strip())
    if not match:
        raise ConfigError(
            f"Invalid {kind} spec {text!r}.",
            hint="Use family[:variant], for example 'rdkron' or 'structured:learned'.",
        )
    return ComponentSpec(match["family"].lower(), match["variant"].lower() if match["variant"] else None)
