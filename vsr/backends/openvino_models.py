"""Models on OpenVINO, with the contract the pipeline expects (`scale`, `step` or `forward`, the attributes).

FRVSR is cut in two: the motion part (flow, warping of the previous output) always runs in fp32, because
bf16 coordinates move pixels by whole pixels at 1280 wide (43.5 dB against fp32 measured on a real clip,
with 48-level errors); the reconstruction network, nearly all of the cost, may run in bf16 (60 dB against
fp32, at most 2 levels). With DIS motion (`frvsr`) the flow is OpenCV's and the warp runs in torch, so only
the reconstruction network is compiled. Per-frame networks run whole.

BasicVSR++ keeps its propagation (the loops over frames, the flow warps, the window carry) and its deformable
alignments in torch and runs its convolution stacks on OpenVINO: SPyNet's coarse-to-fine part in fp32 (its
resizes to multiples of 32 stay in torch, where they match the reference), the feature extraction, backbones
and reconstruction in the precision asked.
"""

from __future__ import annotations

import torch
from torch import nn

from vsr.backends.choice import cpu_computes_bf16
from vsr.backends.frame_graphs import SingleFrame
from vsr.backends.int8 import int8_ir_for
from vsr.backends.openvino_parts import CompiledPart
from vsr.models.basicvsrpp import BRANCHES, BasicVSRPlusPlus
from vsr.models.frvsr import FRVSR, FRVSRState, space_to_depth
from vsr.models.rrdb import RRDBNet
from vsr.models.spynet import flow_at_any_size
from vsr.models.srvgg import SRVGGNetCompact


class _History(nn.Module):
    """FRVSR's warped_history as a module of its own, for export."""

    def __init__(self, model: FRVSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, previous_lr: torch.Tensor, previous_sr: torch.Tensor) -> torch.Tensor:
        return self.model.warped_history(frame, previous_lr, previous_sr)


class OpenVinoFRVSR(nn.Module):
    """A trained FRVSR (frvsr, frvsr-real, tecogan) stepping on OpenVINO; state stays plain tensors."""

    streams = True
    own_precision = True  # chosen here, per part: the pipeline must not wrap it in torch autocast

    def __init__(self, model: FRVSR, precision: str) -> None:
        super().__init__()
        self.model = model.eval()
        self.scale, self.context_frames, self.size_multiple = model.scale, model.context_frames, model.size_multiple
        self.weights_file = getattr(model, "weights_file", None)
        self.precision = precision
        h, w = 2 * model.size_multiple, 2 * model.size_multiple
        frame, sr = torch.rand(1, 3, h, w), torch.rand(1, 3, model.scale * h, model.scale * w)
        kind = f"frvsr-{model.degradation}"
        # DIS flow is OpenCV's, not a graph: then the warp alone stays in torch (fp32, 30 ms at 1280x720).
        self.history = (CompiledPart(_History(self.model), (frame, frame, sr), f"{kind}-history", "fp32")
                        if model.fnet is not None else self.model.warped_history)
        folded = space_to_depth(sr, model.scale)
        if precision == "int8":  # calibrated IR shipped beside the weights; the rest of it in the CPU's best
            self.reconstruct = CompiledPart.from_ir(int8_ir_for(self.weights_file, kind), f"{kind}-srnet-int8",
                                                    "bf16" if cpu_computes_bf16() else "fp32")
        else:
            self.reconstruct = CompiledPart(model.srnet, (frame, folded), f"{kind}-srnet", precision)

    def folded_history(self, frame: torch.Tensor, state: FRVSRState | None) -> torch.Tensor:
        """The reconstruction network's second input: the previous output warped onto `frame`, folded to its
        size (zeros at a stream's start)."""
        if state is None:
            n, c, h, w = frame.shape
            return frame.new_zeros(n, c * self.scale**2, h, w)
        return space_to_depth(self.history(frame, state.lr, state.sr), self.scale)

    def step(self, frame: torch.Tensor, state: FRVSRState | None) -> tuple[torch.Tensor, FRVSRState]:
        frame = frame.float()
        return self.step_from(frame, self.folded_history(frame, state))

    def step_from(self, frame: torch.Tensor, folded: torch.Tensor) -> tuple[torch.Tensor, FRVSRState]:
        sr = self.reconstruct(frame, folded) + self.model.upsample(frame)
        return sr, FRVSRState(frame, sr)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """(N, T, 3, H, W) -> (N, T, 3, sH, sW), step by step from no history."""
        state, outputs = None, []
        for index in range(lr.shape[1]):
            sr, state = self.step(lr[:, index], state)
            outputs.append(sr)
        return torch.stack(outputs, dim=1)


class OpenVinoPerFrame(nn.Module):
    """A per-frame network (realesr-animevideov3, realsr) on OpenVINO: every frame on its own."""

    streams = True
    context_frames = 0
    own_precision = True

    def __init__(self, model: nn.Module, precision: str) -> None:
        super().__init__()
        self.model = model.eval()
        self.scale, self.size_multiple = model.scale, getattr(model, "size_multiple", 1)
        self.weights_file = getattr(model, "weights_file", None)
        self.precision = precision
        example = torch.rand(1, 3, 16, 16)
        self.network = CompiledPart(SingleFrame(model), (example,), f"{type(model).__name__}-x{model.scale}", precision)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        n, t = lr.shape[:2]
        frames = lr.float().flatten(0, 1)
        outputs = [self.network(frames[i:i + 1]) for i in range(frames.shape[0])]
        return torch.cat(outputs).view(n, t, *outputs[0].shape[1:])


class OnOpenVino(nn.Module):
    """A compiled piece in the place of the torch module it was made from; compiled for a batch of one, so a
    batch runs item by item."""

    def __init__(self, part: CompiledPart) -> None:
        super().__init__()
        self.part = part

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        items = zip(*(tensor.float().split(1) for tensor in inputs))
        return torch.cat([self.part(*item) for item in items])


class _CoarseToFine(nn.Module):
    """SPyNet's flow on sides that are multiples of 32, as a module of its own, for export."""

    def __init__(self, spynet: nn.Module) -> None:
        super().__init__()
        self.spynet = spynet

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        return self.spynet.coarse_to_fine(ref, supp)


class OpenVinoSPyNet(nn.Module):
    """SPyNet with coarse_to_fine on OpenVINO and the resizes around it in torch."""

    def __init__(self, spynet: nn.Module, name: str) -> None:
        super().__init__()
        image = torch.rand(1, 3, 64, 64)
        self.coarse_to_fine = OnOpenVino(CompiledPart(_CoarseToFine(spynet), (image, image), name, "fp32"))

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        return flow_at_any_size(self.coarse_to_fine, ref, supp)


class Reconstruction(nn.Module):
    """BasicVSR++'s reconstruction of one frame from its five feature sets, concatenated, as one module."""

    def __init__(self, model: BasicVSRPlusPlus) -> None:
        super().__init__()
        self.model = model

    def forward(self, lr_frame: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        spatial, *branches = features.split(self.model.mid_channels, dim=1)
        return self.model.reconstruct(lr_frame, spatial, branches)


class OpenVinoBasicVSRPlusPlus(BasicVSRPlusPlus):
    """A trained BasicVSR++ whose convolution stacks run on OpenVINO; the propagation code (and the alignment
    modules) are torch's, inherited as they are.

    The pipeline plans a window's memory on `torch_model`: the features every frame keeps between the
    branches are torch tensors here too, and OpenVINO's own buffers last one call.
    """

    own_precision = True

    def __init__(self, model: BasicVSRPlusPlus, precision: str) -> None:
        nn.Module.__init__(self)  # not BasicVSRPlusPlus's: that would build fresh layers, and these are compiled
        self.torch_model = model.eval()
        self.mid_channels, self.context_frames = model.mid_channels, model.context_frames
        self.weights_file = getattr(model, "weights_file", None)
        self.precision = precision
        c, size = model.mid_channels, (16, 16)
        features = lambda sets: torch.rand(1, sets * c, *size)  # noqa: E731
        frame, flow = torch.rand(1, 3, *size), torch.rand(1, 2, *size)

        def compiled(module: nn.Module, examples: tuple[torch.Tensor, ...], name: str, part_precision: str):
            return OnOpenVino(CompiledPart(module, examples, f"basicvsrpp-{name}", part_precision))

        self.spynet = OpenVinoSPyNet(model.spynet, "basicvsrpp-spynet")
        self.feat_extract = compiled(model.feat_extract, (frame,), "features", precision)
        # The alignments stay torch: on OpenVINO they ran only 1.2x faster, while each compiled graph kept its
        # own sampling buffers (four of them: 1.6 GB more peak memory at 320x180, outside the window plan).
        self.deform_align = model.deform_align
        self.backbone = nn.ModuleDict({
            name: compiled(model.backbone[name], (features(2 + i),), f"backbone-{name}", precision)
            for i, name in enumerate(BRANCHES)})
        self.head = compiled(Reconstruction(model), (frame, features(5)), "reconstruction", precision)

    def reconstruct(self, lr_frame: torch.Tensor, spatial: torch.Tensor, branch_features: list[torch.Tensor]):
        return self.head(lr_frame, torch.cat([spatial, *branch_features], dim=1))


def openvino_version_of(model: nn.Module, precision: str) -> nn.Module | None:
    """The model on OpenVINO, or None for models that have no OpenVINO form yet."""
    if isinstance(model, FRVSR):
        return OpenVinoFRVSR(model, precision)
    if isinstance(model, (SRVGGNetCompact, RRDBNet)):
        return OpenVinoPerFrame(model, precision)
    if isinstance(model, BasicVSRPlusPlus):
        return OpenVinoBasicVSRPlusPlus(model, precision)
    return None
