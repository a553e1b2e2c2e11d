"""The stabiliser's default, apart from the stage so that the command line reads it without importing torch."""

# The blend weight where the flow is fully trusted (where nothing moves the stage blends harder: 0.8 at this
# default), chosen on clips/val/natural (BI, realworld and noisy input, realsr and realesr-animevideov3) with
# benchmarks/stabilize_effect.py (benchmarks/RESULTS.md, "Flicker control"). 0.75 also costs no model more than
# 0.3 dB PSNR-Y there and removes a little more flicker from a model that flickers hard (realsr on noisy input:
# tOF -34% against -32%), but it softens a steady model more (realesr-animevideov3: -0.22 dB against -0.11, and
# more tOF, not less) and drags a slow pan further (up to 0.25 dB against 0.12 on a model with no flicker).
DEFAULT_STRENGTH = 0.5
