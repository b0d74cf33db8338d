"""The tokenizer interface: text <-> token ids, with one end-of-text id."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from sublora.core.component import ComponentConfig

if TYPE_CHECKING:  # numpy only in annotations: importing the interface (as `sublora plugins` does) stays cheap
    import numpy as np


class TokenizerConfig(ComponentConfig):
    kind: ClassVar[str] = "tokenizer"


class Tokenizer(ABC):
    """``vocab_size`` counts every id the model can emit, the end-of-text id included."""

    vocab_size: int
    eot_id: int

    def __init__(self, config: TokenizerConfig):
        self.config = config

    @property
    def name(self) -> str:
        return self.config.spec

    @abstractmethod
    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` (without the end-of-text id)."""

    @abstractmethod
    def decode(self, ids) -> str:
        """Text of ``ids``; the end-of-text id decodes to a visible marker."""
