"""Modulated deformable convolution (DCNv2), with torchvision.ops.deform_conv2d's exact semantics.

Each output pixel (oy, ox) and kernel tap k = i*kw + j of deformable group g reads the input bilinearly at

    (oy*stride - padding + i*dilation + dy, ox*stride - padding + j*dilation + dx)

where (dy, dx) = offset[:, (g*K + k)*2 + {0, 1}, oy, ox]; the sample is scaled by mask[:, g*K + k, oy, ox] and
the weights then combine the samples as an ordinary convolution would. Input channel c belongs to group
c // (Cin/G). Bilinear corners outside the image count as 0.

torchvision's compiled kernel is used when torchvision imports and works; otherwise a pure-PyTorch path
samples every tap with grid_sample and contracts the taps with the weights in one matmul.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Upper bound on the bytes of the sampled taps (K times the input) held at once by the pure-PyTorch path;
# larger outputs are processed in bands of output rows so 1080p frames fit.
GATHER_BUDGET_BYTES = 256 * 2**20

BACKENDS = ("torchvision", "torch")

IntPair = int | tuple[int, int]


def _pair(value: IntPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


_TORCHVISION_CHECKED: dict[str, object] = {}  # "deform_conv2d": the function, or None where it is not usable


def _torchvision_deform_conv2d():
    """torchvision.ops.deform_conv2d if it imports and runs, else None; checked once.

    Importing can fail in ways other than ImportError: a torchvision wheel built for another torch raises
    RuntimeError ('operator torchvision::nms does not exist'), so anything raised means "not usable". The
    cache is a plain dict rather than functools.cache, which torch.compile looks through: it would trace the
    import on every call and break the graph there.
    """
    if "deform_conv2d" not in _TORCHVISION_CHECKED:
        try:
            from torchvision.ops import deform_conv2d

            x = torch.zeros(1, 1, 3, 3)
            deform_conv2d(x, torch.zeros(1, 18, 3, 3), torch.zeros(1, 1, 3, 3), padding=1,
                          mask=torch.ones(1, 9, 3, 3))
        except Exception:
            deform_conv2d = None
        _TORCHVISION_CHECKED["deform_conv2d"] = deform_conv2d
    return _TORCHVISION_CHECKED["deform_conv2d"]


@torch.compiler.assume_constant_result  # compiled code takes the answer as fixed instead of tracing the check
def deform_conv_backend() -> str:
    """The backend modulated_deform_conv2d uses when not told: "torchvision" if it works here, else "torch".

    VSR_DEFORM_CONV=torch in the environment forces the pure-PyTorch path (to compare the two, or to rule
    one out).
    """
    if os.environ.get("VSR_DEFORM_CONV") == "torch":
        return "torch"
    return "torchvision" if _torchvision_deform_conv2d() is not None else "torch"


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_shapes(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                  stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int]) -> int:
    """Validate the shapes against one another and return the number of deformable groups."""
    n, cin, h, w = x.shape
    _, weight_cin, kh, kw = weight.shape
    taps = kh * kw
    if weight_cin != cin:
        raise ValueError(f"weight expects {weight_cin} input channels, x has {cin}")
    if offset.shape[1] % (2 * taps) or offset.shape[1] == 0:
        raise ValueError(f"offset has {offset.shape[1]} channels, not a multiple of 2*{kh}*{kw}")
    groups = offset.shape[1] // (2 * taps)
    if cin % groups:
        raise ValueError(f"{cin} input channels do not split into {groups} deformable groups")
    ho = output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = output_size(w, kw, stride[1], padding[1], dilation[1])
    if tuple(offset.shape) != (n, 2 * groups * taps, ho, wo):
        raise ValueError(f"offset shape {tuple(offset.shape)}, expected {(n, 2 * groups * taps, ho, wo)}")
    if tuple(mask.shape) != (n, groups * taps, ho, wo):
        raise ValueError(f"mask shape {tuple(mask.shape)}, expected {(n, groups * taps, ho, wo)}")
    return groups


def _sampling_grid(offset: torch.Tensor, rows: Rows, in_size: tuple[int, int], kernel: tuple[int, int],
                   stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int]) -> torch.Tensor:
    """grid_sample's grid (N*G, K*rows, Wo, 2) for output rows `rows`, in offset's dtype (at least float32).

    A pixel coordinate p is normalised as align_corners=False reads it, (2*p + 1)/size - 1, which maps back to
    p for every size including 1 (align_corners=True would divide by size - 1 = 0). The offset-free part is
    normalised once in float64, the offsets are added scaled by 2/size: one pass over the large tensor per
    axis. The grid must not be half precision: at width 1920 an fp16 grid misplaces samples by up to 0.22 px.
    """
    n, channels, _, wo = offset.shape
    kh, kw = kernel
    groups = channels // (2 * kh * kw)
    h, w = in_size
    # Traced for export, float32: OpenVINO's CPU plugin never finishes compiling a graph with float64 in it,
    # and float32 places these integer coordinates within 1e-4 px at 1920 wide.
    exact = dict(device=offset.device, dtype=torch.float32 if torch.jit.is_tracing() else torch.float64)
    tap_rows = torch.arange(kh, **exact).repeat_interleave(kw)  # i for k = i*kw + j
    tap_cols = torch.arange(kw, **exact).repeat(kh)  # j
    out_rows = torch.arange(rows.start, rows.stop, **exact)
    count = rows.stop - rows.start
    out_cols = torch.arange(wo, **exact)
    y = out_rows[None, :, None] * stride[0] - padding[0] + tap_rows[:, None, None] * dilation[0]  # (K, rows, 1)
    x = out_cols[None, None, :] * stride[1] - padding[1] + tap_cols[:, None, None] * dilation[1]  # (K, 1, Wo)
    base_y, base_x = ((2 * y + 1) / h - 1).to(offset.dtype), ((2 * x + 1) / w - 1).to(offset.dtype)
    deltas = rows.of(offset).reshape(n, groups, kh * kw, 2, count, wo)
    if torch.jit.is_tracing():  # h and w are traced sizes there, which alpha= cannot take
        grid_y, grid_x = base_y + deltas[:, :, :, 0] * (2 / h), base_x + deltas[:, :, :, 1] * (2 / w)
    else:
        grid_y = torch.add(base_y, deltas[:, :, :, 0], alpha=2 / h)  # (N, G, K, rows, Wo)
        grid_x = torch.add(base_x, deltas[:, :, :, 1], alpha=2 / w)
    return torch.stack((grid_x, grid_y), dim=-1).reshape(n * groups, kh * kw * count, wo, 2)


def _sample_taps(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, rows: Rows,
                 kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 dilation: tuple[int, int]) -> torch.Tensor:
    """The masked bilinear samples (N, Cin*K, rows*Wo), channel c*K + k, ready for the weight matmul.

    grid_sample with zeros padding zeroes each bilinear corner that falls outside the image, which is
    exactly torchvision's rule (a point at or beyond one pixel outside gets 0; one nearer keeps its inside
    corners).
    """
    n, cin, h, w = x.shape
    taps = kernel[0] * kernel[1]
    groups = mask.shape[1] // taps
    grid = _sampling_grid(offset, rows, (h, w), kernel, stride, padding, dilation)
    sampled = F.grid_sample(x.reshape(n * groups, cin // groups, h, w), grid, mode="bilinear",
                            padding_mode="zeros", align_corners=False)  # (N*G, Cin/G, K*rows, Wo)
    count = rows.stop - rows.start
    sampled = sampled.reshape(n, groups, cin // groups, taps, count, -1)
    band_mask = rows.of(mask).reshape(n, groups, 1, taps, count, -1)
    # In place when nothing will be differentiated: the sampled tensor is the largest one here.
    sampled = sampled * band_mask if torch.is_grad_enabled() else sampled.mul_(band_mask)
    return sampled.reshape(n, cin * taps, -1)


@dataclass(frozen=True)
class Rows:
    """A band of output rows, start to stop; `whole` when it is every row, which a traced graph needs (its
    sizes are traced values, not numbers to slice with)."""

    start: int
    stop: int
    whole: bool = False

    def of(self, tensor: torch.Tensor) -> torch.Tensor:
        """This band's rows of an (N, C, Ho, Wo) tensor."""
        return tensor if self.whole else tensor[:, :, self.start:self.stop]


def _bands(x: torch.Tensor, groups: int, kernel: tuple[int, int], out_height: int, out_width: int,
           element_size: int) -> list[Rows]:
    """The output rows in bands that fit GATHER_BUDGET_BYTES; traced for export, one band of any height (the
    exported graph then works at every size, which Python-computed bands would fix to the traced one)."""
    if torch.jit.is_tracing():
        return [Rows(0, out_height, whole=True)]
    per_band = _rows_per_band(x, groups, kernel, out_width, element_size)
    return [Rows(start, min(start + per_band, out_height), whole=per_band >= out_height)
            for start in range(0, out_height, per_band)]


def _rows_per_band(x: torch.Tensor, groups: int, kernel: tuple[int, int], out_width: int,
                   element_size: int) -> int:
    """How many output rows of sampled taps (and their grid) fit in GATHER_BUDGET_BYTES, at least one."""
    n, cin = x.shape[:2]
    taps = kernel[0] * kernel[1]
    bytes_per_row = n * (cin + 2 * groups) * taps * out_width * element_size
    return max(1, GATHER_BUDGET_BYTES // bytes_per_row)


def _deform_conv2d_torch(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                         bias: torch.Tensor | None, stride: tuple[int, int], padding: tuple[int, int],
                         dilation: tuple[int, int]) -> torch.Tensor:
    """Pure PyTorch: sample the taps in float32 (or float64) bands of output rows, one matmul per band.

    Sampling runs with autocast off so fp16/bf16 inputs still get a float32 grid; the matmul runs in the
    input's dtype, or autocast's, as F.conv2d would. Banding leaves every sample unchanged; only the matmul
    of a narrower band may round its last bit differently, where the BLAS picks another kernel for the shape.
    """
    kernel = (weight.shape[2], weight.shape[3])
    groups = _check_shapes(x, offset, mask, weight, stride, padding, dilation)
    out_height, out_width = offset.shape[2:]
    sample_dtype = torch.promote_types(x.dtype, torch.float32)
    weight_matrix = weight.reshape(weight.shape[0], -1)  # (Cout, Cin*K), column c*K + i*kw + j
    x_wide, offset_wide, mask_wide = x.to(sample_dtype), offset.to(sample_dtype), mask.to(sample_dtype)
    bands = []
    for rows in _bands(x, groups, kernel, out_height, out_width, torch.finfo(sample_dtype).bits // 8):
        with torch.autocast(x.device.type, enabled=False):
            taps = _sample_taps(x_wide, offset_wide, mask_wide, rows, kernel, stride, padding, dilation)
        band = torch.matmul(weight_matrix, taps.to(x.dtype))  # (N, Cout, rows*Wo)
        bands.append(band.reshape(x.shape[0], -1, rows.stop - rows.start, out_width))
    out = bands[0] if len(bands) == 1 else torch.cat(bands, dim=2)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1).to(out.dtype)


def modulated_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None = None, stride: IntPair = 1, padding: IntPair = 1,
                            dilation: IntPair = 1, *, backend: str | None = None) -> torch.Tensor:
    """Modulated deformable convolution; see the module docstring for the layout of offset and mask.

    x (N, Cin, H, W), offset (N, 2*G*kh*kw, Ho, Wo), mask (N, G*kh*kw, Ho, Wo), weight (Cout, Cin, kh, kw).
    `backend` forces "torchvision" or "torch"; None picks deform_conv_backend().
    """
    backend = backend or deform_conv_backend()
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    if backend == "torch":
        return _deform_conv2d_torch(x, offset, mask, weight, bias, stride, padding, dilation)
    return _deform_conv2d_torchvision(x, offset, mask, weight, bias, stride, padding, dilation)


def _deform_conv2d_torchvision(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                               bias: torch.Tensor | None, stride: tuple[int, int], padding: tuple[int, int],
                               dilation: tuple[int, int]) -> torch.Tensor:
    """torchvision's kernel, given float32 for half-precision inputs.

    Its kernel computes sample positions in the input's dtype: in fp16, past column 1024 positions round to
    whole pixels, and it has no bf16 kernel on CUDA. Its autocast wrapper already runs in float32; explicit
    half inputs are widened here the same way, and the result narrowed back.
    """
    deform_conv2d = _torchvision_deform_conv2d()
    if deform_conv2d is None:
        raise RuntimeError("backend='torchvision' asked for, but torchvision.ops.deform_conv2d is not usable here")
    wide = torch.promote_types(x.dtype, torch.float32)
    out = deform_conv2d(x.to(wide), offset.to(wide), weight.to(wide), None if bias is None else bias.to(wide),
                        stride=stride, padding=padding, dilation=dilation, mask=mask.to(wide))
    return out.to(x.dtype)


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer whose offsets and mask come from the caller (BasicVSR++ predicts them from flow and features).

    Parameters are named `weight` (Cout, Cin, k, k) and `bias` (Cout,) as in mmcv's layer, so official
    BasicVSR++ checkpoints load into models built on it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1, deform_groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        if in_channels % deform_groups:
            raise ValueError(f"{in_channels} input channels do not split into {deform_groups} deformable groups")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in +-1/sqrt(fan_in) and zero bias, the initialisation DCNv2 layers are trained from."""
        bound = 1 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if offset.shape[1] != 2 * self.deform_groups * self.kernel_size[0] * self.kernel_size[1]:
            raise ValueError(f"offset has {offset.shape[1]} channels; this layer has {self.deform_groups} "
                             f"deformable groups of {self.kernel_size[0]}x{self.kernel_size[1]} taps")
        return modulated_deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride, self.padding,
                                       self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, deform_groups={self.deform_groups}, "
                f"bias={self.bias is not None}")
