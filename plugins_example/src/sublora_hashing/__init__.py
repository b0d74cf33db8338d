"""sublora-hashing-projector: an example third-party projector plugin (the hashing trick)."""

__version__ = "0.1.0"
