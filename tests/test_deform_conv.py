"""Modulated deformable convolution against a slow reference written from the definition, in plain loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vsr.ops import deform_conv
from vsr.ops.deform_conv import ModulatedDeformConv2d, deform_conv_backend, modulated_deform_conv2d


def bilinear(image: list[list[float]], y: float, x: float) -> float:
    """Bilinear interpolation of a 2-D list at (y, x); each of the four corners outside the image is 0."""
    height, width = len(image), len(image[0])
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for corner_y, weight_y in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for corner_x, weight_x in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= corner_y < height and 0 <= corner_x < width:
                total += weight_y * weight_x * image[corner_y][corner_x]
    return total


def reference_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation) -> torch.Tensor:
    """Per output pixel, per kernel tap: sample where the offset says, scale by the mask, weight, sum."""
    n_batch, cin, _, _ = x.shape
    cout, _, kh, kw = weight.shape
    taps = kh * kw
    groups = offset.shape[1] // (2 * taps)
    ho, wo = offset.shape[2:]
    xs, offs, masks, ws = x.tolist(), offset.tolist(), mask.tolist(), weight.tolist()
    out = torch.zeros(n_batch, cout, ho, wo, dtype=torch.float64)
    for n in range(n_batch):
        for oy in range(ho):
            for ox in range(wo):
                samples = [[0.0] * taps for _ in range(cin)]
                for c in range(cin):
                    g = c // (cin // groups)
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            dy = offs[n][(g * taps + k) * 2][oy][ox]
                            dx = offs[n][(g * taps + k) * 2 + 1][oy][ox]
                            y = oy * stride - padding + i * dilation + dy
                            x_ = ox * stride - padding + j * dilation + dx
                            samples[c][k] = bilinear(xs[n][c], y, x_) * masks[n][g * taps + k][oy][ox]
                for o in range(cout):
                    value = 0.0 if bias is None else float(bias[o])
                    for c in range(cin):
                        for k in range(taps):
                            value += ws[o][c][k // kw][k % kw] * samples[c][k]
                    out[n, o, oy, ox] = value
    return out


def make_case(seed: int = 0, n: int = 2, cin: int = 4, cout: int = 3, h: int = 5, w: int = 6, kernel=(3, 3),
              groups: int = 2, stride: int = 1, padding: int = 1, dilation: int = 1, offset_scale: float = 1.5,
              dtype=torch.float64):
    """Random input, offsets (non-integer, some reaching outside the image), mask in (0, 1), weight, bias."""
    gen = torch.Generator().manual_seed(seed)
    kh, kw = kernel
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    x = torch.randn(n, cin, h, w, generator=gen, dtype=dtype)
    offset = offset_scale * torch.randn(n, 2 * groups * kh * kw, ho, wo, generator=gen, dtype=dtype)
    mask = torch.rand(n, groups * kh * kw, ho, wo, generator=gen, dtype=dtype)
    weight = torch.randn(cout, cin, kh, kw, generator=gen, dtype=dtype)
    bias = torch.randn(cout, generator=gen, dtype=dtype)
    return x, offset, mask, weight, bias


CASES = {
    "one group": dict(groups=1),
    "two groups": dict(groups=2),
    "one channel per group": dict(groups=4),
    "stride 2": dict(stride=2, h=7, w=6),
    "no padding": dict(padding=0),
    "padding 2, dilation 2": dict(padding=2, dilation=2),
    "dilation 2, stride 2": dict(padding=1, dilation=2, stride=2, h=7, w=8),
    "non-square kernel": dict(kernel=(2, 3), padding=1),
    "1x1 kernel": dict(kernel=(1, 1), padding=0),
    "offsets far outside": dict(offset_scale=4.0),
    "single-pixel-wide input": dict(h=4, w=1, kernel=(3, 1), padding=1),
}


@pytest.mark.parametrize("name", CASES)
def test_torch_path_matches_the_loop_reference(name):
    params = CASES[name]
    x, offset, mask, weight, bias = make_case(**params)
    stride, padding, dilation = params.get("stride", 1), params.get("padding", 1), params.get("dilation", 1)
    ours = modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation, backend="torch")
    expected = reference_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation)
    torch.testing.assert_close(ours, expected, atol=1e-10, rtol=1e-10)


def test_float32_matches_the_reference_within_1e_5():
    x, offset, mask, weight, bias = make_case(groups=2, dtype=torch.float32)
    ours = modulated_deform_conv2d(x, offset, mask, weight, bias, backend="torch")
    expected = reference_deform_conv(x, offset, mask, weight, bias, 1, 1, 1)
    torch.testing.assert_close(ours.double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dy,dx", [(-1.0, 0.0), (-0.999, 0.25), (0.0, -1.5), (0.5, 0.5), (4.0, -4.0), (0.999, 0.0)])
def test_samples_straddling_the_border_keep_only_their_inside_corners(dy, dx):
    """Every tap pushed by the same offset: at the border, half-outside samples are partial, not clamped."""
    x, _, mask, weight, bias = make_case(groups=1, n=1)
    offset = torch.empty(1, 18, 5, 6, dtype=torch.float64)
    offset[:, 0::2], offset[:, 1::2] = dy, dx
    ours = modulated_deform_conv2d(x, offset, mask, weight, bias, backend="torch")
    torch.testing.assert_close(ours, reference_deform_conv(x, offset, mask, weight, bias, 1, 1, 1),
                               atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2), (2, 0, 1)])
def test_zero_offsets_and_unit_mask_are_a_plain_convolution(stride, padding, dilation):
    x, offset, mask, weight, bias = make_case(groups=2, h=8, w=9, stride=stride, padding=padding,
                                              dilation=dilation, dtype=torch.float32)
    ours = modulated_deform_conv2d(x, torch.zeros_like(offset), torch.ones_like(mask), weight, bias,
                                   stride, padding, dilation, backend="torch")
    expected = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_integer_offsets_shift_the_input():
    """A whole-pixel offset is a translated convolution: a check that dy is the row and dx the column."""
    x, offset, mask, weight, bias = make_case(groups=1, n=1, h=8, w=9, dtype=torch.float32)
    offset = torch.zeros_like(offset)
    offset[:, 0::2], offset[:, 1::2] = 1.0, -2.0  # down one row, left two columns
    ours = modulated_deform_conv2d(x, offset, torch.ones_like(mask), weight, bias, backend="torch")
    # Output (oy, ox) sees the 3x3 window whose top-left is input (oy - 1 + 1, ox - 1 - 2); with 3 pixels of
    # zeros around x that window starts at (oy + 3, ox) of the padded image.
    full = F.conv2d(F.pad(x, (3, 3, 3, 3)), weight, bias)
    torch.testing.assert_close(ours, full[:, :, 3:3 + 8, 0:9], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("grad", [False, True])
def test_bands_of_rows_equal_the_whole_frame(monkeypatch, grad):
    x, offset, mask, weight, bias = make_case(groups=2, h=9, w=7, dtype=torch.float32)
    with torch.set_grad_enabled(grad):
        whole = modulated_deform_conv2d(x, offset, mask, weight, bias, backend="torch")
        for budget in (1, 9000, 17000):  # bands of 1, 2 and 4 rows
            monkeypatch.setattr(deform_conv, "GATHER_BUDGET_BYTES", budget)
            banded = modulated_deform_conv2d(x, offset, mask, weight, bias, backend="torch")
            torch.testing.assert_close(banded, whole, atol=1e-6, rtol=1e-6)  # see _deform_conv2d_torch


def test_budget_actually_splits_into_bands(monkeypatch):
    x, offset, *_ = make_case(groups=2, h=9, w=7)
    monkeypatch.setattr(deform_conv, "GATHER_BUDGET_BYTES", 1)
    assert deform_conv._rows_per_band(x, 2, (3, 3), offset.shape[3], 4) == 1
    monkeypatch.setattr(deform_conv, "GATHER_BUDGET_BYTES", 256 * 2**20)
    assert deform_conv._rows_per_band(x, 2, (3, 3), offset.shape[3], 4) >= offset.shape[2]


def test_gradients_pass_gradcheck():
    x, offset, mask, weight, bias = make_case(n=1, cin=2, cout=2, h=2, w=3, groups=2, offset_scale=0.7)
    offset = offset + 0.13  # keep samples off integer positions, where bilinear has kinks
    inputs = [t.clone().requires_grad_() for t in (x, offset, mask, weight, bias)]

    def run(x, offset, mask, weight, bias):
        return modulated_deform_conv2d(x, offset, mask, weight, bias, backend="torch")

    # ~750 forwards of tiny float64 matmuls: one thread, since MKL's two threads on a busy machine wait
    # for each other ~15 ms per call.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-6)
    finally:
        torch.set_num_threads(threads)


def test_gradients_reach_every_input_in_float32():
    inputs = [t.requires_grad_() for t in make_case(groups=2, dtype=torch.float32)]
    modulated_deform_conv2d(*inputs, backend="torch").square().sum().backward()
    for tensor in inputs:
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def alternating_row(width: int = 1920, seed: int = 1):
    """A 1-pixel-high image 0, 1, 0, 1, ..., sub-pixel offsets to the right, and the exact samples.

    Sampling column c at c + f gives f on even columns and 1 - f on odd ones, so an output in [0, 1] reveals
    a misplaced sample to within its own rounding (fp16 2.4e-4, bf16 2e-3), far below a half-precision
    grid's error at this width (0.22 px fp16, 1.9 px bf16).
    """
    columns = torch.arange(width)
    x = (columns % 2).float().reshape(1, 1, 1, width)
    fraction = torch.rand(width, generator=torch.Generator().manual_seed(seed)) * 0.98 + 0.01
    fraction = fraction.half().float()  # representable in every dtype the test uses
    offset = torch.zeros(1, 2, 1, width)
    offset[0, 1, 0] = fraction
    exact = torch.where(columns % 2 == 0, fraction, 1 - fraction)
    weight = torch.ones(1, 1, 1, 1)
    return x, offset, torch.ones(1, 1, 1, width), weight, exact


def test_half_inputs_sample_on_a_float32_grid():
    x, offset, mask, weight, exact = alternating_row()
    ours = modulated_deform_conv2d(x.half(), offset.half(), mask.half(), weight.half(), padding=0,
                                   backend="torch")
    assert ours.dtype == torch.float16
    assert (ours[0, 0, 0].float() - exact).abs().max() < 1e-3


def test_autocast_samples_on_a_float32_grid():
    x, offset, mask, weight, exact = alternating_row()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = modulated_deform_conv2d(x, offset, mask, weight, padding=0, backend="torch")
    assert (ours[0, 0, 0].float() - exact).abs().max() < 8e-3


def test_module_holds_weight_and_bias_under_checkpoint_names():
    layer = ModulatedDeformConv2d(8, 4, kernel_size=3, padding=1, deform_groups=2)
    assert set(layer.state_dict()) == {"weight", "bias"}
    assert layer.weight.shape == (4, 8, 3, 3) and layer.bias.shape == (4,)
    x = torch.randn(1, 8, 5, 6)
    offset, mask = torch.zeros(1, 36, 5, 6), torch.ones(1, 18, 5, 6)
    expected = F.conv2d(x, layer.weight, layer.bias, padding=1)
    torch.testing.assert_close(layer(x, offset, mask), expected, atol=1e-5, rtol=1e-5)


def test_wrong_offset_shape_is_refused():
    x, offset, mask, weight, bias = make_case(groups=2)
    with pytest.raises(ValueError, match="offset"):
        modulated_deform_conv2d(x, offset[:, :, :-1], mask, weight, bias, backend="torch")
    with pytest.raises(ValueError, match="deformable groups"):
        modulated_deform_conv2d(x[:, :3], offset[:, :54], mask[:, :27], weight[:, :3], bias, backend="torch")


def test_torchvision_path_is_handed_float32_for_half_inputs(monkeypatch):
    """Its kernel computes positions in the input dtype, so half inputs are widened first (a stand-in here)."""
    seen = []

    def stand_in(input, offset, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mask=None):
        seen.append({t.dtype for t in (input, offset, weight, bias, mask)})
        return modulated_deform_conv2d(input, offset, mask, weight, bias, stride, padding, dilation,
                                       backend="torch")

    monkeypatch.setattr(deform_conv, "_torchvision_deform_conv2d", lambda: stand_in)
    x, offset, mask, weight, bias = make_case(groups=2, stride=2, h=7, dtype=torch.float32)
    out = modulated_deform_conv2d(*(t.half() for t in (x, offset, mask, weight, bias)), stride=2,
                                  backend="torchvision")
    assert seen == [{torch.float32}] and out.dtype == torch.float16
    expected = modulated_deform_conv2d(*(t.half().float() for t in (x, offset, mask, weight, bias)), stride=2,
                                       backend="torch")
    torch.testing.assert_close(out.float(), expected, atol=1e-2, rtol=1e-3)


@pytest.mark.skipif(deform_conv_backend() != "torchvision", reason="torchvision is not installed (or does not match this torch): the optional fast "
                    "path; see README, 'Optional: torchvision'")
@pytest.mark.parametrize("name", ["two groups", "stride 2", "padding 2, dilation 2", "offsets far outside"])
def test_torchvision_path_agrees_with_the_torch_path(name):
    params = CASES[name]
    x, offset, mask, weight, bias = make_case(**params, dtype=torch.float32)
    args = (params.get("stride", 1), params.get("padding", 1), params.get("dilation", 1))
    ours = modulated_deform_conv2d(x, offset, mask, weight, bias, *args, backend="torch")
    theirs = modulated_deform_conv2d(x, offset, mask, weight, bias, *args, backend="torchvision")
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_default_backend_is_torch_when_torchvision_is_unusable():
    assert deform_conv_backend() in ("torch", "torchvision")
    try:
        import torchvision.ops  # noqa: F401
    except Exception:
        assert deform_conv_backend() == "torch"


def test_traced_for_export_it_holds_no_float64():
    """OpenVINO's CPU plugin never finishes compiling a graph with float64 in it (the exact grid's type)."""
    torch.manual_seed(0)
    x, offset, mask = torch.rand(1, 4, 6, 7), torch.randn(1, 18, 6, 7), torch.rand(1, 9, 6, 7)
    weight = torch.randn(2, 4, 3, 3)
    call = lambda x, offset, mask: modulated_deform_conv2d(x, offset, mask, weight, backend="torch")  # noqa: E731
    traced = torch.jit.trace(call, (x, offset, mask), check_trace=False)  # its check wants float64 bits
    assert "Double" not in str(traced.graph)
    torch.testing.assert_close(traced(x, offset, mask), call(x, offset, mask), rtol=0, atol=1e-5)
