"""LM-GC's errors: one SubloraError subclass per way the input can be wrong.

Each says what is wrong and what to do next (``hint``); the CLI prints them as
one line. A failed command writes nothing: outputs are written atomically at
the end, after every check has passed.
"""

from __future__ import annotations

from sublora.core.errors import SubloraError


class LmgcError(SubloraError, ValueError):
    """Base of every error the LM-GC package raises on purpose."""


class EmptyInputError(LmgcError):
    """The file to compress holds no bytes (nothing to code, no float to serialize)."""


class NotFloat32Error(LmgcError):
    """The file to compress is not a stream of float32 values (its size is not a multiple of 4)."""


class ContainerError(LmgcError):
    """A .lmgc file is truncated, corrupt or not a .lmgc file at all."""


class PriorError(LmgcError):
    """A prior cannot be loaded, or cannot code this text (window too long, tokenizer does not round-trip)."""


class PriorMismatchError(LmgcError):
    """The prior given to the decoder is not the one the file was coded with (identity differs)."""


class EnvironmentMismatchError(LmgcError):
    """The decoder runs under other library versions or CPU kernels than the encoder did."""


class DecodeError(LmgcError):
    """Decoding produced bytes other than the original (sha256 or text does not match)."""


class OutputExistsError(LmgcError, FileExistsError):
    """The output path exists and --force was not given (nothing is overwritten silently)."""


class PriorNotIndependentError(PriorError):
    """A prior named to code a certified model was trained on (numbers of runs trained on) the run's own data."""
