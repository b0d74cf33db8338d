"""The entry point: a config class, cheap to import (no torch)."""

from __future__ import annotations

from typing import ClassVar

from sublora.core.projector_config import ProjectorConfig


class HashingConfig(ProjectorConfig):
    """Hashing trick: each coordinate of theta copies one signed coordinate of w."""

    description: ClassVar[str] = (
        "Hashing trick / count sketch: (P w)_i = s_i sqrt(d/D) w[h(i)], every column hit; O(D) memory and time."
    )
    implementation: ClassVar[str] = "sublora_hashing.projector:HashingProjector"
