"""The Pydantic base of projector configs (no torch import)."""

from __future__ import annotations

from typing import ClassVar

from sublora.core.component import ComponentConfig


class ProjectorConfig(ComponentConfig):
    """Options of a projector. ``implementation`` names a ``Projector`` subclass."""

    kind: ClassVar[str] = "projector"
