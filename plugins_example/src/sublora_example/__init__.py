"""sublora-example-plugins: one third-party component of each kind, to copy (see docs/plugins.md)."""

__version__ = "0.2.0"
