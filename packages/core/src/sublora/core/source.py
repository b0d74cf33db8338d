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
        #: Files left out because they are binary or not UTF-8 text, filled while ``documents`` runs.
        self.skipped_files: list[str] = []

    @abstractmethod
    def documents(self) -> Iterator[tuple[str, str]]:
        """Yield (document id, text) in a deterministic order."""

    def location(self) -> str | None:
        """Where the data is read from, resolved (an absolute path); None if the options alone say it.

        Part of the prepared data's cache key, so ``path: ./c`` read from two folders is two data sets.
        """
        return None

    def fingerprint(self) -> dict[str, Any] | None:
        """A cheap summary of the current content (e.g. the hashed file listing with sizes and mtimes).

        Part of the cache key, so editing the data prepares it again instead of reusing stale tokens.
        None: the content cannot be summarised cheaply (a remote data set); the options identify it.
        """
        return None

    def describe(self) -> dict[str, Any]:
        """What meta.json records about where the data came from."""
        return {"source": self.config.spec, "options": self.config.model_dump(exclude={"variant"})}
