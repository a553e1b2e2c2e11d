"""The stabiliser's default, apart from the stage so that the command line reads it without importing torch."""

# The blend weight where the flow is fully trusted, chosen on clips/val/natural (BI, realworld and noisy input,
# realsr and realesr-animevideov3) with benchmarks/stabilize_effect.py (benchmarks/RESULTS.md, "Flicker
# control"): the strongest that costs no model more than 0.3 dB PSNR-Y. 0.75 removes more flicker from a model
# that flickers hard (realsr on noisy input) but softens a steady one (realesr-animevideov3: -0.37 dB).
DEFAULT_STRENGTH = 0.5
