"""Video quality metrics, computed the way the papers' own evaluation scripts compute them.

Our figures are only worth printing if they compare with published tables, so each metric follows one
reference script, quirks included, and says which. Sections: input frames (shared by every metric), fidelity
(PSNR, SSIM), optical flow, temporal consistency (tOF, flow-warping error).

Every metric takes sequences of (H, W, 3) RGB frames, a list or one (T, H, W, 3) array, uint8 or uint16.
The reference scripts read 8-bit PNG or JPEG files, so uint16 frames are first scaled to 8 bits
(round(v * 255 / 65535)); a 16-bit frame that is an 8-bit one times 257 scores exactly as that 8-bit frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Frames = Sequence[np.ndarray] | np.ndarray

# ---------------------------------------------------------------------------------------------------------
# Input frames
# ---------------------------------------------------------------------------------------------------------


def frames_to_8bit(frames: Frames, name: str = "frames") -> list[np.ndarray]:
    """Check `frames` are (H, W, 3) uint8/uint16 RGB of one size and return them as contiguous uint8."""
    converted = []
    for index, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{name}[{index}] has shape {frame.shape}, expected (H, W, 3) RGB")
        if frame.dtype == np.uint16:
            # 65535 / 255 = 257, and v * 255 / 65535 never lands on .5, so rounding has no ties to break.
            frame = np.round(frame / 257.0).astype(np.uint8)
        elif frame.dtype != np.uint8:
            raise ValueError(f"{name}[{index}] is {frame.dtype}, expected uint8 or uint16")
        if converted and frame.shape != converted[0].shape:
            raise ValueError(f"{name}[{index}] is {frame.shape[1]}x{frame.shape[0]}, but {name}[0] is "
                             f"{converted[0].shape[1]}x{converted[0].shape[0]}")
        converted.append(np.ascontiguousarray(frame))
    return converted


def paired_frames(outputs: Frames, targets: Frames) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Both sequences as 8-bit frames, after checking they match frame for frame in count and size."""
    outputs = frames_to_8bit(outputs, "outputs")
    targets = frames_to_8bit(targets, "targets")
    if len(outputs) != len(targets):
        raise ValueError(f"outputs have {len(outputs)} frames but targets have {len(targets)}")
    if outputs and outputs[0].shape != targets[0].shape:
        raise ValueError(f"outputs are {outputs[0].shape[1]}x{outputs[0].shape[0]} but targets are "
                         f"{targets[0].shape[1]}x{targets[0].shape[0]}")
    return outputs, targets


# ---------------------------------------------------------------------------------------------------------
# Fidelity: PSNR and SSIM, as BasicSR's `calculate_psnr` / `calculate_ssim` with test_y_channel=True
# ---------------------------------------------------------------------------------------------------------


def rgb_to_y(frame: np.ndarray) -> np.ndarray:
    """8-bit RGB -> float64 Y in [16, 235], MATLAB's rgb2ycbcr (BT.601, studio swing), not rounded."""
    rgb = frame.astype(np.float64) / 255.0
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])


def _crop(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border else image


def psnr(output: np.ndarray, target: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB of one 8-bit frame pair, on Y (or RGB), after cropping `crop_border` pixels (the scale)."""
    a, b = (rgb_to_y(x) if y_channel else x.astype(np.float64) for x in (output, target))
    mse = np.mean((_crop(a, crop_border) - _crop(b, crop_border)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(output: np.ndarray, target: np.ndarray, crop_border: int = 0) -> float:
    """SSIM (Wang et al. 2004) of one 8-bit frame pair on Y: 11x11 Gaussian window of sigma 1.5, valid part."""
    a, b = (_crop(rgb_to_y(x), crop_border) for x in (output, target))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = cv2.getGaussianKernel(11, 1.5)
    window = window @ window.T

    def local_mean(image: np.ndarray) -> np.ndarray:
        return cv2.filter2D(image, -1, window)[5:-5, 5:-5]  # only where the window fits inside the frame

    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mu_a**2
    var_b = local_mean(b * b) - mu_b**2
    cov = local_mean(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def detail_ratio(output: np.ndarray, target: np.ndarray, crop_border: int = 0) -> float:
    """Fine detail of an 8-bit frame against its ground truth's: the variance of the Laplacian of Y, as a ratio.

    A sharpness proxy that needs no learned network (LPIPS and its kin need weights we cannot download): 1 is
    as much high-frequency energy as the ground truth, below 1 blurrier (what regression models give), above 1
    noisier or over-sharpened. It says nothing about whether the detail is the right detail; PSNR does.
    """
    a, b = (cv2.Laplacian(_crop(rgb_to_y(x), crop_border), cv2.CV_64F) for x in (output, target))
    reference = float(b.var())
    return float(a.var()) / reference if reference > 0 else float("inf")


def grid_peak(output: np.ndarray, scale: int) -> float:
    """How strongly an upscaled 8-bit frame's fine detail peaks on the frequencies of the low-res pixel grid: the
    mean spectral power of its high-passed Y on the lines at multiples of 1/scale cycles per pixel, against the
    mean over the whole spectrum. No reference needed.

    Natural detail has no peak there (0.3-0.7 on the validation clips' ground truth). A model that draws each
    low-res pixel along an edge as a blob of its own, the beading the shipped tecogan shows on real footage,
    makes a pattern locked to that grid and raises it (benchmarks/real_footage.py).
    """
    luma = rgb_to_y(output)
    height, width = (side - side % scale for side in luma.shape)
    detail = luma[:height, :width] - cv2.GaussianBlur(luma[:height, :width], (0, 0), 1.5)
    power = np.abs(np.fft.fft2(detail)) ** 2
    on_grid = np.zeros(power.shape, dtype=bool)
    on_grid[[k * height // scale for k in range(1, scale)], :] = True
    on_grid[:, [k * width // scale for k in range(1, scale)]] = True
    return float(power[on_grid].mean() / power.mean())


def psnr_per_frame(outputs: Frames, targets: Frames, crop_border: int = 0, y_channel: bool = True) -> list[float]:
    outputs, targets = paired_frames(outputs, targets)
    return [psnr(o, t, crop_border, y_channel) for o, t in zip(outputs, targets)]


def ssim_per_frame(outputs: Frames, targets: Frames, crop_border: int = 0) -> list[float]:
    outputs, targets = paired_frames(outputs, targets)
    return [ssim(o, t, crop_border) for o, t in zip(outputs, targets)]


def grey(frame: np.ndarray) -> np.ndarray:
    """8-bit RGB -> 8-bit grey, the input of every flow here."""
    # OpenCV's fixed-point weights (0.299, 0.587, 0.114), as TecoGAN's script converts before its flows.
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


# ---------------------------------------------------------------------------------------------------------
# Optical flow
# ---------------------------------------------------------------------------------------------------------


def farneback_flow(earlier_grey: np.ndarray, later_grey: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 flow from `earlier_grey` to `later_grey` (uint8), on the earlier frame's grid.

    Channel 0 is dx, channel 1 dy: earlier(y, x) ~ later(y + dy, x + dx). The parameters are TecoGAN's tOF
    ones (pyramid scale 0.5, 3 levels, 15-pixel window, 3 iterations, poly_n 5, poly_sigma 1.2, no flags);
    the warping error reuses them, having no flow network of its own here.
    """
    return cv2.calcOpticalFlowFarneback(earlier_grey, later_grey, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample float32 `image` at each pixel plus `flow` (H, W, 2; dx, dy), bilinearly.

    Positions outside the frame take the nearest edge pixel, as FlowNet2's Resample2d layer (the warp of
    Lai et al.'s scripts) clamps its indices. cv2.remap rounds the sub-pixel position to 1/32 pixel: a
    difference from the float warp of at most 1/64 pixel times the image gradient.
    """
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


# ---------------------------------------------------------------------------------------------------------
# Temporal consistency: tOF (TecoGAN, Chu et al. 2020, official_metrics/metrics.py)
# ---------------------------------------------------------------------------------------------------------


def tof_frame_pairs(frame_count: int, skip_border_frames: int = 2) -> list[tuple[int, int]]:
    """The (earlier, later) frame pairs tOF compares.

    TecoGAN's script only looks at frames [cutfr, T - cutfr) with cutfr = 2, and a flow needs the frame
    before, so its first pair starts at frame cutfr: pairs (i - 1, i) for cutfr < i < T - cutfr. With 7
    frames that is (2, 3) and (3, 4); frames 0, 1, 5 and 6 play no part.
    """
    if skip_border_frames < 0:
        raise ValueError(f"skip_border_frames must be >= 0, got {skip_border_frames}")
    pairs = [(i - 1, i) for i in range(skip_border_frames + 1, frame_count - skip_border_frames)]
    if not pairs:
        raise ValueError(f"tOF with skip_border_frames={skip_border_frames} needs at least "
                         f"{2 * skip_border_frames + 2} frames, got {frame_count}")
    return pairs


def tof_crop_box(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) of the flow area tOF averages over (the script's `crop_8x8`).

    Each side is cut to the largest multiple of 32 that leaves at least 16 pixels over (the script steps
    down by 32 from the largest multiple until it does), centred with the odd pixel going to the bottom or
    right: at least 8 pixels of border all round, where Farneback's flow is least trustworthy.
    """
    kept = [(length - 16) // 32 * 32 for length in (height, width)]
    if min(kept) <= 0:
        raise ValueError(f"tOF crops flows to multiples of 32 with 8 pixels of border: {width}x{height} "
                         "frames are too small (at least 48x48)")
    return (height - kept[0]) // 2, (width - kept[1]) // 2, kept[0], kept[1]


def tof_per_pair(outputs: Frames, targets: Frames, skip_border_frames: int = 2) -> list[float]:
    """tOF of each pair in `tof_frame_pairs`: mean over the crop of |flow(targets) - flow(outputs)|.

    For a pair (i - 1, i) both sequences get a Farneback flow from frame i - 1 to frame i (on greyscale);
    per pixel of `tof_crop_box` the Euclidean norm of their difference, then the mean. Lower is better;
    a sequence scores exactly 0 against itself.
    """
    outputs, targets = paired_frames(outputs, targets)
    pairs = tof_frame_pairs(len(outputs), skip_border_frames)
    tof_crop_box(*outputs[0].shape[:2])  # fail on frames too small before any flow is computed
    used = range(pairs[0][0], pairs[-1][1] + 1)
    output_greys = {i: grey(outputs[i]) for i in used}
    target_greys = {i: grey(targets[i]) for i in used}
    return [tof_of_flows(farneback_flow(output_greys[earlier], output_greys[later]),
                         farneback_flow(target_greys[earlier], target_greys[later]))
            for earlier, later in pairs]


def tof_of_flows(output_flow: np.ndarray, target_flow: np.ndarray) -> float:
    """tOF of one frame pair from the Farneback flows of output and target: mean |difference| over the crop."""
    top, left, crop_height, crop_width = tof_crop_box(*output_flow.shape[:2])
    rows, columns = slice(top, top + crop_height), slice(left, left + crop_width)
    difference = target_flow[rows, columns] - output_flow[rows, columns]
    # float32 throughout, as in the script: per-pair values match it bit for bit on the same OpenCV.
    return float(np.sqrt(np.sum(difference * difference, axis=-1)).mean())


def tof(outputs: Frames, targets: Frames, skip_border_frames: int = 2) -> float:
    """TecoGAN's tOF of one clip: the mean of `tof_per_pair` (see there for the pairs and the crop)."""
    values = tof_per_pair(outputs, targets, skip_border_frames)
    # The script averages its per-pair values as a float32 sum divided by the count.
    return float(np.asarray(values, dtype=np.float32).sum() / len(values))


# ---------------------------------------------------------------------------------------------------------
# Temporal consistency: flow-warping error (Lai et al. 2018, evaluate_WarpError.py)
# ---------------------------------------------------------------------------------------------------------


def unreliable_flow_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """(H, W) bool on the earlier frame's grid: where `forward` (earlier -> later) should not be trusted.

    `backward` is the later -> earlier flow. Two tests, with the constants of Lai et al.'s utils.py
    `detect_occlusion`:
    - forward-backward mismatch: following the forward flow and then the backward flow found there should
      come home; flagged where |f + b'|^2 > 0.01 (|f|^2 + |b'|^2) + 0.5, with b' the backward flow sampled at
      x + f(x). That is occlusion: what the pixel shows is hidden in the later frame;
    - motion boundaries: |grad f|^2 > 0.01 |f|^2 + 0.002, forward differences, zero in the last row/column.
    Reference quirk: its helper names its arguments (fw_flow, bw_flow) but is called with (bw_flow, fw_flow);
    the swap is what puts the mask on the earlier frame, where the error is measured, and it is what we do.
    """
    backward_there = backward_warp(backward, forward)
    mismatch = _squared_norm(forward + backward_there)
    occluded = mismatch > 0.01 * (_squared_norm(forward) + _squared_norm(backward_there)) + 0.5
    # The reference takes these differences in float64 (np.zeros default), so do we.
    flow = forward.astype(np.float64)
    along_x = np.zeros_like(flow)
    along_y = np.zeros_like(flow)
    along_x[:, :-1] = flow[:, :-1] - flow[:, 1:]
    along_y[:-1, :] = flow[:-1, :] - flow[1:, :]
    boundary = _squared_norm(along_x) + _squared_norm(along_y) > 0.01 * _squared_norm(flow) + 0.002
    return occluded | boundary


def warping_error_per_pair(outputs: Frames, targets: Frames | None = None) -> list[float]:
    """Flow-warping error of each consecutive pair (t - 1, t), t = 1 .. T - 1.

    Lai et al. measure how well output frame t, moved back along the true motion, lands on output frame
    t - 1. The motion comes from the ground truth when `targets` are given (their "input video"; the
    outputs' own flow would follow the outputs' artefacts instead of the scene), else from the outputs. Their
    scripts use FlowNet2; its weights are not available offline, so we use OpenCV Farneback with tOF's
    parameters on greyscale: figures compare with each other, not with the paper's.

    Conventions, on the guide sequence G (targets or outputs) and the outputs O:
    - forward f = flow(G[t-1] -> G[t]) on frame t-1's grid, G[t-1](x) ~ G[t](x + f(x));
      backward b = flow(G[t] -> G[t-1]) on frame t's grid;
    - warped(x) = O[t](x + f(x)), bilinear with edge clamping: frame t brought onto frame t-1
      (the mirror image, frame t-1 brought onto t with b, differs in which frame's occlusions are masked);
    - error = mean of (warped - O[t-1])^2 over the pixels `unreliable_flow_mask(f, b)` leaves and the three
      channels, RGB in [0, 1]. A pair with no reliable pixel scores 0, as the reference's masked sum does.
    """
    if targets is None:
        outputs = guide = frames_to_8bit(outputs, "outputs")
    else:
        outputs, guide = paired_frames(outputs, targets)
    if len(outputs) < 2:
        raise ValueError(f"the warping error needs at least 2 frames, got {len(outputs)}")
    greys = [grey(frame) for frame in guide]
    return [warping_error_of_pair(outputs[t - 1], outputs[t], farneback_flow(greys[t - 1], greys[t]),
                                  farneback_flow(greys[t], greys[t - 1]))
            for t in range(1, len(outputs))]


def warping_error_of_pair(output_earlier: np.ndarray, output_later: np.ndarray, forward: np.ndarray,
                          backward: np.ndarray) -> float:
    """Flow-warping error of one pair of 8-bit output frames, given the guide's forward and backward flows."""
    reliable = ~unreliable_flow_mask(forward, backward)
    warped = backward_warp(output_later.astype(np.float32) / 255.0, forward)
    squared = (warped - output_earlier.astype(np.float32) / 255.0) ** 2
    count = int(reliable.sum())
    return float(squared[reliable].sum(dtype=np.float64) / (3 * count)) if count else 0.0


def warping_error(outputs: Frames, targets: Frames | None = None) -> float:
    """Flow-warping error of one clip: the mean of `warping_error_per_pair` over all its pairs."""
    return float(np.mean(warping_error_per_pair(outputs, targets)))


def _squared_norm(flow: np.ndarray) -> np.ndarray:
    return flow[..., 0] ** 2 + flow[..., 1] ** 2
