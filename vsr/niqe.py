"""NIQE (Mittal, Soundararajan, Bovik 2013): a no-reference quality score, lower is more natural.

LPIPS, DISTS and their kin need network weights we cannot download; NIQE needs only a 36-dimensional Gaussian
fitted once to pristine natural images, which we ship (`vsr/weights/niqe_pris_params.npz`, from BasicSR, the
values of the authors' MATLAB release). It is the no-reference measure Real-ESRGAN and RealBasicVSR report,
and it is computed here as BasicSR's `calculate_niqe` computes it, which reproduces MATLAB's `niqe.m`:

1. Y of BT.601 (MATLAB's rgb2ycbcr), rounded to integers; `crop_border` pixels cut at each border; then cut
   at the bottom and right to whole 96x96 blocks.
2. At two scales (the image, then MATLAB's bicubic imresize by 0.5), the MSCN coefficients (Eq. 1): the
   image less its local mean, over its local deviation plus 1, both under a 7x7 Gaussian of sigma 7/6
   with edges replicated; in float32, as BasicSR (see `mscn` for why that matters).
3. Per block (96x96, then 48x48 at the half scale), 18 features: a generalised Gaussian fit of the MSCN
   coefficients (shape, scale) and an asymmetric one of their products with each of four neighbours
   (horizontal, vertical, two diagonals; the neighbours wrap around inside the block, as MATLAB's
   circshift does): shape, mean, left and right scale.
4. A Gaussian fitted to the blocks' 36 features (mean ignoring NaN, covariance over the blocks without
   NaN), and the distance to the pristine Gaussian: sqrt((mu_p - mu)^T pinv((S_p + S) / 2) (mu_p - mu)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from vsr.degradations import imresize
from vsr.metrics import frames_to_8bit, rgb_to_y

PARAMS_PATH = Path(__file__).resolve().parent / "weights" / "niqe_pris_params.npz"
BLOCK = 96  # pixels; the block size of the pristine model, so the one to use (niqe.m's advice)
MIN_BLOCKS = 2  # a covariance needs two samples
# Neighbour offsets (rows, columns) of the pairwise products: horizontal, vertical, main and anti-diagonal.
NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class PristineModel:
    mean: np.ndarray  # (36,)
    covariance: np.ndarray  # (36, 36)
    window: np.ndarray  # (7, 7), sums to 1


@lru_cache(maxsize=1)
def pristine_model() -> PristineModel:
    """The shipped parameters, read once; a plain .npz, so nothing in it can run code."""
    with np.load(PARAMS_PATH, allow_pickle=False) as params:
        return PristineModel(params["mu_pris_param"].reshape(-1), params["cov_pris_param"],
                             params["gaussian_window"])


def niqe(frame: np.ndarray, crop_border: int = 0) -> float:
    """NIQE of one (H, W, 3) RGB frame (uint8; uint16 is taken to 8 bits as vsr.metrics does), on Y.

    NaN where fewer than two blocks have texture to fit (a flat frame: a fade to black).
    """
    frame = frames_to_8bit([frame], "frame")[0]
    check_size(frame.shape[1], frame.shape[0], crop_border)
    luma = np.round(rgb_to_y(frame))  # rounded, as BasicSR does to agree with MATLAB
    if crop_border:
        luma = luma[crop_border:-crop_border, crop_border:-crop_border]
    return niqe_of_luma(luma)


def niqe_of_luma(luma: np.ndarray) -> float:
    """NIQE of a (H, W) grey or Y image in [0, 255] (float or integer), all of which counts."""
    check_size(luma.shape[1], luma.shape[0])
    rows, columns = luma.shape[0] // BLOCK, luma.shape[1] // BLOCK
    image = luma[:rows * BLOCK, :columns * BLOCK].astype(np.float32)
    model = pristine_model()
    # BasicSR resizes in float32, and the rounding that leaves in flat areas becomes MSCN samples at the half
    # scale; we resize in float64 and then store float32, which leaves less. On the frames we checked against
    # BasicSR this is the whole difference left between us: at most 0.006.
    half = imresize(torch.from_numpy(image.astype(np.float64)), (image.shape[0] // 2, image.shape[1] // 2))
    half = half.numpy().astype(np.float32)
    features = np.concatenate([block_features(mscn(image, model.window), BLOCK),
                               block_features(mscn(half, model.window), BLOCK // 2)], axis=1)
    return distance_to_pristine(features, model)


def check_size(width: int, height: int, crop_border: int = 0) -> None:
    """Raise if a width x height frame, less `crop_border` all round, holds fewer than two 96x96 blocks."""
    inner_width, inner_height = width - 2 * crop_border, height - 2 * crop_border
    blocks = max(inner_width, 0) // BLOCK * (max(inner_height, 0) // BLOCK)
    if blocks < MIN_BLOCKS:
        cropped = f" less {crop_border} pixels at each border" if crop_border else ""
        raise ValueError(f"NIQE needs at least {MIN_BLOCKS} whole {BLOCK}x{BLOCK} blocks: {width}x{height}"
                         f"{cropped} holds {blocks} (at least {2 * BLOCK}x{BLOCK} or {BLOCK}x{2 * BLOCK} "
                         "once cropped)")


def mscn(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (Eq. 1) of a float32 image, edges replicated.

    In float32, as BasicSR computes them (local sums in float64, stored as float32, as scipy's convolve
    does with a float32 image): where the coefficient is 0 in exact arithmetic (flat areas, straight ramps)
    it comes out as exactly 0, not as float64 rounding noise of either sign, which the fits would count
    as samples of that sign. Such areas are common in video (skies, letterboxes); there float64 moves NIQE
    by up to ~0.4.
    """
    mean = cv2.filter2D(image.astype(np.float64), cv2.CV_64F, window,
                        borderType=cv2.BORDER_REPLICATE).astype(np.float32)
    square_mean = cv2.filter2D(np.square(image).astype(np.float64), cv2.CV_64F, window,
                               borderType=cv2.BORDER_REPLICATE).astype(np.float32)
    # abs: rounding can make a flat patch's variance a hair negative.
    deviation = np.sqrt(np.abs(square_mean - mean * mean))
    return (image - mean) / (deviation + np.float32(1))


def block_features(coefficients: np.ndarray, block: int) -> np.ndarray:
    """(blocks, 18) features of the whole `block` x `block` tiles of an MSCN image."""
    rows, columns = coefficients.shape[0] // block, coefficients.shape[1] // block
    tiles = coefficients[:rows * block, :columns * block].reshape(rows, block, columns, block)
    tiles = tiles.transpose(0, 2, 1, 3).reshape(rows * columns, block, block)
    shape, _, left, right = fit_aggd(tiles)
    features = [shape, (left + right) / 2]  # the MSCN coefficients: a symmetric fit, one scale
    for offset in NEIGHBOURS:
        products = tiles * np.roll(tiles, offset, axis=(1, 2))  # wraps inside each tile, as circshift
        features += fit_aggd(products)
    return np.stack(features, axis=1)


def fit_aggd(samples: np.ndarray) -> list[np.ndarray]:
    """Moment-matching fit of an asymmetric generalised Gaussian to each of (n, ...) sample sets.

    Returns [shape, mean, left scale, right scale], each (n,), the mean by Eq. 8. The shape is the one of
    niqe.m's grid 0.2, 0.201, ..., 10 whose moment ratio is nearest the samples'. A side with no samples
    (a flat block) gives NaN scales and, as in the references, whose argmin lands on the first NaN, the
    grid's first shape, 0.2.
    """
    flat = samples.reshape(len(samples), -1).astype(np.float64)
    squares = flat * flat
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((squares * (flat < 0)).sum(axis=1) / (flat < 0).sum(axis=1))
        right_std = np.sqrt((squares * (flat > 0)).sum(axis=1) / (flat > 0).sum(axis=1))
        gamma_hat = left_std / right_std
        ratio = np.abs(flat).mean(axis=1) ** 2 / squares.mean(axis=1)
        normalised = ratio * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    grid = _shape_grid()
    index = _nearest_index(grid.ratio, normalised)
    left, right = left_std * grid.spread[index], right_std * grid.spread[index]
    return [grid.shape[index], (right - left) * grid.mean_factor[index], left, right]


@dataclass(frozen=True)
class ShapeGrid:
    shape: np.ndarray  # niqe.m's candidate shapes a: 0.2:0.001:10, 9801 values
    ratio: np.ndarray  # Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)), the moment ratio the fit matches; rising
    spread: np.ndarray  # sqrt(Gamma(1/a) / Gamma(3/a)): standard deviation -> scale
    mean_factor: np.ndarray  # Gamma(2/a) / Gamma(1/a): (right - left scale) -> mean (Eq. 8)


@lru_cache(maxsize=1)
def _shape_grid() -> ShapeGrid:
    """The shape candidates and their gamma-function terms, computed once (numpy has no gamma function)."""
    shape = np.arange(0.2, 10.001, 0.001)  # as niqe.m and BasicSR spell the grid, to the last bit
    log_gamma = np.vectorize(math.lgamma)
    g1, g2, g3 = log_gamma(1 / shape), log_gamma(2 / shape), log_gamma(3 / shape)
    return ShapeGrid(shape, np.exp(2 * g2 - g1 - g3), np.sqrt(np.exp(g1 - g3)), np.exp(g2 - g1))


def _nearest_index(ratios: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the nearest of the rising `ratios` to each value: the lower on a tie, 0 for NaN.

    What the references' argmin of (ratios - value)^2 over the whole grid gives, by binary search: a
    (blocks x 9801) table would take ~170 MB for a 1080p frame.
    """
    above = np.clip(np.searchsorted(ratios, values), 1, len(ratios) - 1)
    below = above - 1
    take_below = (ratios[below] - values) ** 2 <= (ratios[above] - values) ** 2
    return np.where(np.isnan(values), 0, np.where(take_below, below, above))


def distance_to_pristine(features: np.ndarray, model: PristineModel) -> float:
    """Eq. 10: the distance between the blocks' Gaussian and the pristine one; NaN with < 2 complete blocks."""
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) < MIN_BLOCKS:
        return float("nan")
    mean = np.nanmean(features, axis=0)  # no empty column: the complete blocks have a value in each
    covariance = np.cov(complete, rowvar=False)
    difference = model.mean - mean
    quality = difference @ np.linalg.pinv((model.covariance + covariance) / 2) @ difference
    return float(np.sqrt(quality))
