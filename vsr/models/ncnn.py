"""Reading ncnn models (`.param` layer list + `.bin` weights) into tensors, without the ncnn runtime.

Only what per-frame SR networks use is supported: layers without weights, Convolution (fp32 or fp16
weights, optional bias, optionally with a fused ReLU or LeakyReLU, which the caller checks) and PReLU. Anything else is refused by name rather than misread, because a `.bin`
file has no index: every layer's weights must be consumed in order for the next layer's to be found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vsr.errors import VsrError

PARAM_MAGIC = "7767517"
# The 4-byte tag in front of a weight blob stored with type 0 ("auto"): it says how the values are stored.
TAG_FP32, TAG_FP16 = 0x00000000, 0x01306B47
WEIGHTLESS_TYPES = {"Input", "Split", "PixelShuffle", "Interp", "BinaryOp", "Eltwise", "ReLU", "Sigmoid", "Crop",
                    "Concat"}
ARRAY_KEY_BASE = -23300  # an array parameter k is written as key -23300 - k, its value "count,v1,v2,..."
ACTIVATIONS = {0: None, 1: "relu", 2: "leakyrelu"}  # a Convolution's fused activation (parameter 9)


@dataclass(frozen=True)
class NcnnLayer:
    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, str]  # raw values as written; int() or float() them where used

    def int_param(self, key: int, default: int = 0) -> int:
        return int(self.params.get(key, default))

    def float_param(self, key: int, default: float = 0.0) -> float:
        return float(self.params.get(key, default))

    def float_array(self, key: int) -> list[float]:
        """An array parameter's values (empty when absent); the count written in front is dropped."""
        raw = self.params.get(ARRAY_KEY_BASE - key)
        return [float(value) for value in raw.split(",")[1:]] if raw else []

    def activation(self) -> tuple[str, float] | None:
        """A Convolution's fused activation: None, ("relu", 0.0) or ("leakyrelu", slope)."""
        kind = ACTIVATIONS.get(self.int_param(9), f"type {self.int_param(9)}")
        if kind is None:
            return None
        slope = self.float_array(10)
        return kind, slope[0] if slope else 0.0


def read_param(path: str | Path) -> list[NcnnLayer]:
    """The layers of a plain-text `.param` file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise VsrError(path, "no such ncnn .param file")
    lines = [line.split() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if not lines or lines[0] != [PARAM_MAGIC]:
        raise VsrError(path, f"not an ncnn .param file (first line should be {PARAM_MAGIC})")
    try:
        layer_count = int(lines[1][0])
        layers = [_parse_layer(fields) for fields in lines[2:]]
    except (IndexError, ValueError):
        raise VsrError(path, "malformed ncnn .param file") from None
    if len(layers) != layer_count:
        raise VsrError(path, f"declares {layer_count} layers but lists {len(layers)}")
    return layers


def _parse_layer(fields: list[str]) -> NcnnLayer:
    layer_type, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
    blobs = fields[4:4 + n_in + n_out]
    if len(blobs) != n_in + n_out:
        raise ValueError(name)
    params = {}
    for item in fields[4 + n_in + n_out:]:
        key, _, value = item.partition("=")
        params[int(key)] = value
    return NcnnLayer(layer_type, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params)


def read_weights(layers: list[NcnnLayer], bin_path: str | Path) -> dict[str, list[torch.Tensor]]:
    """Each weighted layer's tensors in ncnn's order (Convolution: weight, bias; PReLU: slopes), as fp32."""
    bin_path = Path(bin_path)
    if not bin_path.is_file():
        raise VsrError(bin_path, "no such ncnn .bin file")
    reader = _BlobReader(bin_path.read_bytes(), bin_path)
    weights = {}
    for layer in layers:
        if layer.type == "Convolution":
            weights[layer.name] = _convolution_weights(layer, reader)
        elif layer.type == "PReLU":
            weights[layer.name] = [reader.raw_fp32(max(layer.int_param(0, 1), 1))]
        elif layer.type not in WEIGHTLESS_TYPES:
            raise VsrError(bin_path, f"layer {layer.name}: ncnn layer type {layer.type} is not supported")
    if reader.offset != len(reader.data):
        raise VsrError(bin_path, f"{len(reader.data) - reader.offset} bytes left over after the last layer; "
                                 "the .bin does not belong to this .param")
    return weights


def _convolution_weights(layer: NcnnLayer, reader: _BlobReader) -> list[torch.Tensor]:
    out_channels, kernel_w = layer.int_param(0), layer.int_param(1)
    kernel_h = layer.int_param(11, kernel_w)
    size = layer.int_param(6)
    if layer.int_param(8) or layer.int_param(7, 1) != 1 or layer.int_param(9) not in ACTIVATIONS:
        raise VsrError(reader.path, f"layer {layer.name}: int8 or grouped convolutions, and fused activations "
                                    "other than ReLU and LeakyReLU, are not supported")
    if not out_channels or size % (out_channels * kernel_h * kernel_w):
        raise VsrError(reader.path, f"layer {layer.name}: weight size {size} does not fit its shape")
    in_channels = size // (out_channels * kernel_h * kernel_w)
    weight = reader.tagged(size).reshape(out_channels, in_channels, kernel_h, kernel_w)
    tensors = [weight]
    if layer.int_param(5):
        tensors.append(reader.raw_fp32(out_channels))
    return tensors


class _BlobReader:
    """Walks a `.bin` file front to back."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.offset = data, path, 0

    def _take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise VsrError(self.path, "ncnn .bin file ends early; it does not belong to this .param")
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def raw_fp32(self, count: int) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(self._take(4 * count), dtype="<f4").copy())

    def tagged(self, count: int) -> torch.Tensor:
        tag = int.from_bytes(self._take(4), "little")
        if tag == TAG_FP16:
            values = np.frombuffer(self._take(2 * count), dtype="<f2").astype(np.float32)
            self._take((-2 * count) % 4)  # fp16 blobs are padded to a multiple of 4 bytes
            return torch.from_numpy(values)
        if tag == TAG_FP32:
            return self.raw_fp32(count)
        raise VsrError(self.path, f"weight storage tag {tag:#010x} (quantised weights) is not supported")
