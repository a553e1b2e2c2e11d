"""How the diffusion refiner samples; apart from the network so that the command line reads it without torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    """How to sample: `vsr run --refine-steps/--refine-strength/--refine-coupling/--refine-seed`."""

    steps: int = 4  # DDIM steps per frame; each runs the denoiser once
    # Start this far along the noise schedule, from the VSR output (SDEdit's partial start); lower keeps closer
    # to it. From pure noise (1.0), four steps cannot recover the picture: benchmarks/refiner_quality.py.
    strength: float = 0.4
    coupling: float = 0.5  # pull towards the previous refined frame (0: every frame refined independently)
    seed: int = 0
