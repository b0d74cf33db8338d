"""One error hierarchy for every sublora package.

Each error also subclasses the matching built-in (as PEFT does), so callers
that catch ValueError or FileNotFoundError keep working. The library raises;
only the CLI turns these into one-line messages. ``hint`` says what to do next.
"""

from __future__ import annotations


class SubloraError(Exception):
    """Base of every error sublora raises on purpose."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class ConfigError(SubloraError, ValueError):
    """A config value or override is invalid; the message names the field."""


class UnknownComponentError(SubloraError, LookupError):
    """A component name is not registered under its kind."""


class PluginLoadError(SubloraError, ImportError):
    """A registered plugin failed to import or does not define a component."""


class DataError(SubloraError, ValueError):
    """Prepared data is missing, corrupt, empty or does not match the config."""


class CheckpointError(SubloraError, ValueError):
    """A checkpoint is missing, corrupt or belongs to another configuration."""


class RunDirError(SubloraError, FileExistsError):
    """A run directory is in a state the command cannot work with."""


class TrainingError(SubloraError, RuntimeError):
    """Training diverged (NaN/inf loss) or could not proceed."""


class VerificationError(SubloraError, ValueError):
    """A compressed model or certificate does not match what it claims."""


class BoundError(SubloraError, ValueError):
    """A bound was asked for with inputs it cannot certify (bad delta, alpha, n...)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a command after it saved its work; the message says where the run stands."""

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.message = message
        self.step = step
