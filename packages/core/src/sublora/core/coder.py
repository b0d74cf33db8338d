"""The coder interface: a lossless code for a symbol sequence.

The payload must decode on its own given only the sequence length and the
alphabet size (both fixed by the run's config), so it carries whatever model
(e.g. symbol counts) the decoder needs. Its length in bits is what the bound
pays for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from sublora.core.component import ComponentConfig

if TYPE_CHECKING:  # numpy only in annotations: importing the interface (as `sublora plugins` does) stays cheap
    import numpy as np


class CoderConfig(ComponentConfig):
    kind: ClassVar[str] = "coder"


class Coder(ABC):
    def __init__(self, config: CoderConfig):
        self.config = config

    @abstractmethod
    def encode(self, symbols: np.ndarray, alphabet_size: int) -> bytes:
        """Encode symbols in [0, alphabet_size)."""

    @abstractmethod
    def decode(self, payload: bytes, length: int, alphabet_size: int) -> np.ndarray:
        """Invert ``encode`` exactly."""

    def check_run_data(self, run_data: dict | None) -> dict | None:
        """Refuse a learned model inside the coder (e.g. an LM prior) that saw the run's training data.

        The bound's prior must be fixed before the data is seen; a coder whose model depends on the
        data would code it for free. ``run_data`` is the run's data record (dir, config_key, sha256
        of the token files). Return what was checked (it goes into the certificate) or None when
        the coder has no such model; raise a SubloraError to refuse.
        """
        return None
