"""The data source interface: a deterministic sequence of documents."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from sublora.core.component import ComponentConfig


class SourceConfig(ComponentConfig):
    kind: ClassVar[str] = "source"


class Source(ABC):
    def __init__(self, config: SourceConfig):
        self.config = config

    @abstractmethod
    def documents(self) -> Iterator[tuple[str, str]]:
        """Yield (document id, text) in a deterministic order."""

    def describe(self) -> dict[str, Any]:
        """What meta.json records about where the data came from."""
        return {"source": self.config.spec, "options": self.config.model_dump(exclude={"variant"})}
