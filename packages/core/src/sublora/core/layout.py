"""Where each trainable tensor lives in the flat parameter vector theta (length D)."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

_LAYER = re.compile(r"\.h\.(\d+)\.")


@dataclass(frozen=True)
class ParamSlot:
    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def group(self) -> str:
        """'lora_A', 'lora_B' or 'misc' (any other trainable tensor)."""
        if "lora_A" in self.name:
            return "lora_A"
        if "lora_B" in self.name:
            return "lora_B"
        return "misc"

    @property
    def layer(self) -> int | None:
        """Transformer block index, or None for tensors outside the blocks (e.g. the head)."""
        match = _LAYER.search(self.name)
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class ParamLayout:
    slots: tuple[ParamSlot, ...]

    @classmethod
    def from_named_shapes(cls, named_shapes: list[tuple[str, tuple[int, ...]]]) -> "ParamLayout":
        slots, offset = [], 0
        for name, shape in named_shapes:
            slot = ParamSlot(name, tuple(int(s) for s in shape), offset)
            slots.append(slot)
            offset += slot.numel
        return cls(tuple(slots))

    @property
    def D(self) -> int:
        return sum(s.numel for s in self.slots)

    def fingerprint(self) -> str:
        """Hash of names and shapes: a checkpoint records it to catch a config mismatch."""
        text = "\n".join(f"{s.name}:{'x'.join(map(str, s.shape))}" for s in self.slots)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
