"""vsr: temporal video super-resolution."""

__version__ = "0.1.0"
