"""`vsr convert`: other formats' weights (ncnn, PyTorch checkpoints, an installed package) to our safetensors.

A converted file loads with `--weights` without the original package, and without unpickling anything.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vsr.errors import VsrError
from vsr.io.destination import check_destination, commit, discard, start_partial
from vsr.models import ncnn, rrdb, srvgg
from vsr.models.weights import load_state_dict
from vsr.models.zoo import ZOO, build_model, load_into


def converted_weights(source: Path | None, model_name: str | None, scale: int | None) -> dict[str, torch.Tensor]:
    """Weights under our names, checked by loading them into the model they are for.

    source: an ncnn `.param` (its `.bin` beside it), or a checkpoint of `model_name`; None takes the weights
    of `model_name` from the package that provides them.
    """
    if source is not None and source.suffix == ".param":
        network = _ncnn_network(source)
        network.build()  # proves the weights fit
        return network.state
    if model_name is None:
        raise VsrError(source, "say which model these weights are for with --model (see `vsr models`)")
    if model_name not in ZOO:
        raise VsrError(None, f"unknown model '{model_name}'; `vsr models` lists them: {', '.join(ZOO)}")
    entry = ZOO[model_name]
    if source is None:
        if entry.package_weights is None:
            raise VsrError(None, f"model {model_name} takes its weights from no package; give a SOURCE file")
        return build_model(model_name, scale).state_dict()
    state = load_state_dict(source)
    if entry.convert_checkpoint:
        state = entry.convert_checkpoint(state)
    load_into(entry.build(scale or entry.scales[-1]), state, source)
    return state


def _ncnn_network(param: Path) -> srvgg.NcnnCompact | rrdb.NcnnRRDB:
    """The ncnn files read as the network they hold: an RRDBNet has Eltwise sums, the compact network none."""
    if any(layer.type == "Eltwise" for layer in ncnn.read_param(param)):
        return rrdb.read_ncnn(param)
    return srvgg.read_ncnn(param)


def save_weights(state: dict[str, torch.Tensor], target: Path, overwrite: bool,
                 reads: tuple[Path | None, ...] = ()) -> None:
    """Writes safetensors atomically: the target appears complete or not at all, and replaces no source."""
    from safetensors.torch import save

    if target.suffix != ".safetensors":
        raise VsrError(target, "the output must end in .safetensors")
    check_destination(target, overwrite, reads=reads)
    temporary = start_partial(target)
    try:
        # Written by us, not by save_file, which creates its files readable by their owner alone (0600).
        temporary.write_bytes(save({key: value.detach().clone().contiguous() for key, value in state.items()}))
        commit(temporary, target)
    finally:
        discard(temporary)
