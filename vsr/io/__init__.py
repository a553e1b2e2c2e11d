"""Everything that touches PyAV lives in this package."""
