"""The stabiliser's default, apart from the stage so that the command line reads it without importing torch."""

# The blend weight where the flow is fully trusted, chosen on clips/val (BI and realworld input) as the one with
# the lowest tOF over both models: benchmarks/stabilize_effect.py and benchmarks/RESULTS.md ("Flicker control").
# 0.5 removes more of the flow-warping error for a higher tOF on realsr.
DEFAULT_STRENGTH = 0.25
