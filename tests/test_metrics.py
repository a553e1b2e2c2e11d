"""Temporal-consistency metrics (tOF, flow-warping error) on small synthetic clips made here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vsr.metrics import (
    backward_warp,
    detail_ratio,
    farneback_flow,
    frames_to_8bit,
    grid_peak,
    tof,
    tof_crop_box,
    tof_frame_pairs,
    tof_per_pair,
    unreliable_flow_mask,
    warping_error,
    warping_error_per_pair,
)

HEIGHT, WIDTH, FRAMES = 96, 128, 7


def translating_frame(index: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A smooth texture seen through a window that slides 2 px right and 1 px down a frame (content moves
    2 px left, 1 px up). It is defined everywhere, so new content enters at the edges as in a real pan."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    x, y = x + 2.0 * index, y + 1.0 * index
    r = 0.5 + 0.25 * np.sin(x / 5.0) + 0.25 * np.cos(y / 7.0)
    g = 0.5 + 0.25 * np.sin((x + y) / 6.0) + 0.25 * np.sin(y / 4.0)
    b = 0.5 + 0.25 * np.cos((x - y) / 8.0) + 0.25 * np.sin(x / 3.0 + np.cos(y / 9.0))
    return np.round(np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    return [translating_frame(i) for i in range(FRAMES)]


def with_noise(frames: list[np.ndarray], sigma: float, seed: int = 0) -> list[np.ndarray]:
    """Independent noise on every frame: flicker that a frame-by-frame method produces."""
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0.0, sigma, f.shape), 0, 255).astype(np.uint8) for f in frames]


def with_gain_jitter(frames: list[np.ndarray], gain: float) -> list[np.ndarray]:
    """Brightness pumping: frames alternately darker and brighter by `gain`."""
    return [np.clip(f * (1 + (gain if i % 2 else -gain)), 0, 255).astype(np.uint8) for i, f in enumerate(frames)]


def random_frames(count: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(count)]


# --- tOF ----------------------------------------------------------------------------------------------------


def test_tof_of_a_clip_against_itself_is_exactly_zero(clip: list[np.ndarray]) -> None:
    assert tof(clip, clip) == 0.0
    assert tof_per_pair(clip, clip) == [0.0, 0.0]


@pytest.mark.parametrize(("flicker", "mild", "strong"), [(with_noise, 4, 16), (with_gain_jitter, 0.02, 0.08)],
                         ids=["noise", "gain_jitter"])
def test_tof_grows_with_flicker(clip: list[np.ndarray], flicker, mild: float, strong: float) -> None:
    assert 0 < tof(flicker(clip, mild), clip) < tof(flicker(clip, strong), clip)


def test_tof_pairs_skip_two_border_frames_each_side_as_the_script_does() -> None:
    assert tof_frame_pairs(7) == [(2, 3), (3, 4)]
    assert tof_frame_pairs(6) == [(2, 3)]
    assert tof_frame_pairs(4, skip_border_frames=0) == [(0, 1), (1, 2), (2, 3)]


def test_tof_ignores_frames_outside_the_used_pairs(clip: list[np.ndarray]) -> None:
    outputs = with_noise(clip, 8)
    baseline = tof_per_pair(outputs, clip)
    assert len(baseline) == 2
    garbage = random_frames(FRAMES)
    for unused in (0, 1, 5, 6):
        changed = list(outputs)
        changed[unused] = garbage[unused]
        assert tof_per_pair(changed, clip) == baseline
    for used, pair_changed in ((2, 0), (4, 1)):
        changed = list(outputs)
        changed[used] = garbage[used]
        values = tof_per_pair(changed, clip)
        assert values[pair_changed] != baseline[pair_changed]
        assert values[1 - pair_changed] == baseline[1 - pair_changed]


def test_tof_crop_box_matches_crop_8x8_worked_by_hand() -> None:
    # 90 rows: 90 // 32 * 32 = 64 leaves 26 >= 16, kept; top = 26 // 2 = 13.
    # 128 columns: 128 leaves 0 < 16, step down to 96, leaves 32; left = 16.
    assert tof_crop_box(90, 128) == (13, 16, 64, 96)
    # 144 rows: 128 leaves exactly 16, kept; top 8. 176 columns: 160 leaves exactly 16, kept; left 8.
    assert tof_crop_box(144, 176) == (8, 8, 128, 160)
    # Smallest side with anything left: 48 -> 32 (8 + 32 + 8); 47 would keep nothing.
    assert tof_crop_box(48, 48) == (8, 8, 32, 32)
    with pytest.raises(ValueError, match="too small"):
        tof_crop_box(47, 128)


def test_tof_equals_the_official_protocol_written_out() -> None:
    """Frames [2, T-2), pairs (i-1, i) for i > 2, flows cropped by stepping down from a multiple of 32."""
    height, width = 90, 128
    targets = [translating_frame(i, height, width) for i in range(FRAMES)]
    outputs = with_noise(targets, 6)

    def flow(sequence: list[np.ndarray], i: int) -> np.ndarray:
        earlier, later = (cv2.cvtColor(sequence[j], cv2.COLOR_RGB2GRAY) for j in (i - 1, i))
        return cv2.calcOpticalFlowFarneback(earlier, later, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def crop_by_stepping(flow: np.ndarray) -> np.ndarray:
        h, w = flow.shape[0] // 32 * 32, flow.shape[1] // 32 * 32
        while h > flow.shape[0] - 16:
            h -= 32
        while w > flow.shape[1] - 16:
            w -= 32
        y, x = (flow.shape[0] - h) // 2, (flow.shape[1] - w) // 2
        return flow[y:y + h, x:x + w]

    expected = []
    for i in range(2, FRAMES - 2):
        if i > 2:
            difference = crop_by_stepping(flow(targets, i)) - crop_by_stepping(flow(outputs, i))
            expected.append(float(np.sqrt(np.sum(difference * difference, axis=-1)).mean()))
    assert tof_per_pair(outputs, targets) == expected
    assert tof(outputs, targets) == pytest.approx(np.mean(expected), rel=1e-6)


def test_tof_needs_a_pair_after_skipping_border_frames(clip: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="at least 6 frames"):
        tof(clip[:5], clip[:5])
    assert len(tof_per_pair(clip[:2], clip[:2], skip_border_frames=0)) == 1


# --- flow-warping error --------------------------------------------------------------------------------------


def test_farneback_flow_points_from_the_earlier_frame_to_where_its_content_went(clip: list[np.ndarray]) -> None:
    earlier, later = (cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in clip[:2])
    flow = farneback_flow(earlier, later)
    assert flow.shape == (HEIGHT, WIDTH, 2) and flow.dtype == np.float32
    # The content moves 2 px left and 1 px up: earlier(y, x) ~ later(y - 1, x - 2).
    np.testing.assert_allclose(flow[16:-16, 16:-16].mean(axis=(0, 1)), [-2.0, -1.0], atol=0.05)


def test_backward_warp_samples_at_pixel_plus_flow_clamping_at_the_edge() -> None:
    image = np.arange(20, dtype=np.float32).reshape(4, 5)
    flow = np.zeros((4, 5, 2), np.float32)
    flow[..., 0] = 1.0  # warped(y, x) = image(y, x + 1)
    warped = backward_warp(image, flow)
    np.testing.assert_array_equal(warped[:, :-1], image[:, 1:])
    np.testing.assert_array_equal(warped[:, -1], image[:, -1])


def test_consistent_flows_are_trusted_and_contradicting_ones_are_not() -> None:
    forward = np.broadcast_to(np.float32([2.0, 1.0]), (24, 32, 2)).copy()
    assert not unreliable_flow_mask(forward, -forward).any()
    # Going (2, 1) and coming back (2, 1) misses home by |(4, 2)|^2 = 20 > 0.01 * (5 + 5) + 0.5.
    assert unreliable_flow_mask(forward, forward).all()


def test_motion_boundaries_are_unreliable() -> None:
    forward = np.zeros((24, 32, 2), np.float32)
    forward[:, 16:, 0] = 3.0  # right half moves 3 px right, left half stands still
    mask = unreliable_flow_mask(forward, -forward)
    # Forward difference f(x) - f(x + 1) is nonzero only in column 15: |(-3, 0)|^2 = 9 > 0.002.
    expected = np.zeros((24, 32), bool)
    expected[:, 15] = True
    np.testing.assert_array_equal(mask, expected)


def test_warping_error_of_a_rigid_pan_is_near_zero_and_flicker_raises_it(clip: list[np.ndarray]) -> None:
    steady = warping_error(clip)
    assert len(warping_error_per_pair(clip)) == FRAMES - 1
    assert 0 <= steady < 3e-4  # edge columns entering the view, 8-bit rounding, 1/32-px remap positions
    flickering = warping_error(with_noise(clip, 8))
    assert flickering > 1e-3 and flickering > 10 * steady
    assert warping_error(with_noise(clip, 16)) > flickering


def test_warping_error_takes_the_motion_from_the_targets(clip: list[np.ndarray]) -> None:
    # One noise picture, frozen: steady by its own (zero) motion, but it does not follow the targets' pan.
    frozen = random_frames(1) * FRAMES
    assert warping_error(frozen) < 1e-5
    assert warping_error(frozen, clip) > 0.1
    # Noise outputs: their own flow is meaningless, the targets' still gives a (large) answer.
    assert warping_error(random_frames(FRAMES), clip) > 0.1
    assert warping_error(clip, clip) == warping_error(clip)


def test_warping_error_needs_two_frames(clip: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="at least 2 frames"):
        warping_error(clip[:1])


# --- input frames --------------------------------------------------------------------------------------------


def test_sixteen_bit_frames_score_as_the_same_picture_in_eight_bits(clip: list[np.ndarray]) -> None:
    outputs = with_noise(clip, 8)
    deep_outputs = [f.astype(np.uint16) * 257 for f in outputs]
    deep_clip = [f.astype(np.uint16) * 257 for f in clip]
    assert tof(deep_outputs, deep_clip) == tof(outputs, clip)
    assert warping_error(deep_outputs, deep_clip) == warping_error(outputs, clip)
    assert warping_error(deep_outputs) == warping_error(outputs)


def test_sixteen_bit_values_are_rounded_to_the_nearest_eight_bit_level() -> None:
    values = np.array([0, 128, 129, 257, 65535 - 129, 65535], np.uint16)
    frame = np.repeat(values[None, :, None], 3, axis=2)
    np.testing.assert_array_equal(frames_to_8bit([frame])[0][0, :, 0], [0, 0, 1, 1, 254, 255])


def test_a_stacked_array_is_as_good_as_a_list(clip: list[np.ndarray]) -> None:
    outputs = with_noise(clip, 8)
    assert tof(np.stack(outputs), np.stack(clip)) == tof(outputs, clip)
    assert warping_error(np.stack(outputs)) == warping_error(outputs)


def test_mismatched_clips_are_refused(clip: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="outputs have 6 frames but targets have 7"):
        tof(clip[:6], clip)
    with pytest.raises(ValueError, match="outputs have 7 frames but targets have 6"):
        warping_error(clip, clip[:6])
    smaller = [f[:80] for f in clip]
    with pytest.raises(ValueError, match="outputs are 128x80 but targets are 128x96"):
        tof(smaller, clip)
    with pytest.raises(ValueError, match=r"outputs\[3\] is 128x80, but outputs\[0\] is 128x96"):
        warping_error(clip[:3] + smaller[3:])


def test_frames_that_are_not_rgb_bytes_are_refused(clip: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"targets\[0\] is float32"):
        tof(clip, [f.astype(np.float32) / 255 for f in clip])
    with pytest.raises(ValueError, match=r"outputs\[0\] has shape \(96, 128\)"):
        warping_error([f[..., 0] for f in clip])


# --- fidelity: PSNR-Y and SSIM-Y ---

def test_y_channel_is_matlab_rgb2ycbcr_studio_swing():
    from vsr.metrics import rgb_to_y

    black, white = np.zeros((1, 1, 3), np.uint8), np.full((1, 1, 3), 255, np.uint8)
    assert rgb_to_y(black)[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(white)[0, 0] == pytest.approx(235.0)
    red = np.array([[[255, 0, 0]]], np.uint8)
    assert rgb_to_y(red)[0, 0] == pytest.approx(16 + 65.481)


def test_psnr_of_a_known_error_and_the_border_crop():
    from vsr.metrics import psnr

    target = np.full((20, 20, 3), 100, np.uint8)
    output = target.copy()
    output[4:-4, 4:-4] += 10  # every channel +10 inside: Y moves by 10 * (65.481 + 128.553 + 24.966) / 255
    dy = 10 * 219.0 / 255
    inside = 10 * np.log10(255**2 / dy**2)
    assert psnr(output, target, crop_border=4) == pytest.approx(inside)
    assert psnr(output, target, crop_border=4, y_channel=False) == pytest.approx(10 * np.log10(255**2 / 100))
    assert psnr(output, target, crop_border=0) > inside  # the untouched border dilutes the error
    assert psnr(target, target) == float("inf")


def test_ssim_is_one_for_equal_frames_and_falls_with_noise():
    from vsr.metrics import ssim

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    assert ssim(frame, frame) == pytest.approx(1.0)
    light = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(frame + rng.normal(0, 30, frame.shape), 0, 255).astype(np.uint8)
    assert 1.0 > ssim(light, frame) > ssim(heavy, frame) > 0.0


def test_the_detail_ratio_tells_blur_from_noise():
    coarse = np.random.default_rng(1).integers(0, 256, (HEIGHT // 2, WIDTH // 2, 3), dtype=np.uint8)
    target = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    blurred = cv2.GaussianBlur(target, (7, 7), 2.0)
    noisy = np.clip(target + np.random.default_rng(0).normal(0, 12, target.shape), 0, 255).astype(np.uint8)
    assert detail_ratio(target, target, 4) == pytest.approx(1.0)
    assert detail_ratio(blurred, target, 4) < 0.5
    assert detail_ratio(noisy, target, 4) > 1.2


def test_grid_peak_sees_a_pattern_locked_to_the_low_res_grid():
    rows, columns = np.mgrid[0:36, 0:48]
    low_res = np.zeros((36, 48, 3), dtype=np.uint8)
    low_res[rows > 0.3 * columns + 10] += 60  # two tilted edges, as on real footage
    low_res[rows > -0.6 * columns + 30] += 120
    low_res = cv2.GaussianBlur(low_res, (0, 0), 0.7)
    smooth = cv2.resize(low_res, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    blocky = cv2.resize(low_res, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)  # a staircase of 4x4 blocks
    high_rows, high_columns = np.mgrid[0:144, 0:192]
    beads = 12 * np.cos(np.pi * high_columns / 2) * np.cos(np.pi * high_rows / 2)  # a blob per low-res pixel
    on_edges = np.abs(cv2.Laplacian(smooth.mean(2), cv2.CV_64F)) > 4
    beaded = np.clip(smooth + (beads * on_edges)[..., None], 0, 255).astype(np.uint8)
    assert grid_peak(blocky, 4) > 3 * grid_peak(smooth, 4)
    assert grid_peak(beaded, 4) > 1.5 * grid_peak(smooth, 4)
    assert grid_peak(smooth[:-3, :-2], 4) > 0  # sides that are not multiples of the scale are cut to them
