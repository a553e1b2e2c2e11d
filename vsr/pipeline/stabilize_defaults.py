"""The stabiliser's default, apart from the stage so that the command line reads it without importing torch."""

# The blend weight where the flow is fully trusted, chosen on clips/val: benchmarks/stabilize_effect.py and
# benchmarks/RESULTS.md ("Flicker control").
DEFAULT_STRENGTH = 0.5
