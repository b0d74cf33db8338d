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


#: Two specs of each kind, for the hint of a malformed one.
_EXAMPLES = {"projector": "'rdkron' or 'structured:learned'", "tokenizer": "'bytes' or 'tiktoken:gpt2'",
             "source": "'pystdlib' or 'text'", "quantizer": "'kmeans' or 'uniform'",
             "coder": "'arithmetic' or 'shortest'", "bound": "'azuma' or 'pacbayes:kl'",
             "estimator": "'azuma' or 'pacbayes:kl'", "launcher": "'local' or 'slurm'"}


def parse_spec(text: str | ComponentSpec, kind: str = "component") -> ComponentSpec:
    """Parse ``family[:variant]``; raise ConfigError naming the grammar otherwise."""
    if isinstance(text, ComponentSpec):
        return text
    match = _SPEC.match(str(text).strip())
    if not match:
        example = _EXAMPLES.get(kind, "'family' or 'family:variant'")
        raise ConfigError(f"Invalid {kind} spec {text!r}.",
                          hint=f"Use family[:variant], for example {example} (`sublora plugins` lists them).")
    return ComponentSpec(match["family"].lower(), match["variant"].lower() if match["variant"] else None)
