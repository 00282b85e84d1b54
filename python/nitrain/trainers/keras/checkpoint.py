"""keras checkpoints: one ``.weights.h5`` file (``model.save_weights``) with the optimizer's variables, the
epoch and JSON-able extras (history, loader epochs, seed) in a ``nitrain`` group."""

from __future__ import annotations

import json
import os

import numpy as np

FORMAT = "nitrain-checkpoint"
SUFFIX = ".weights.h5"


def _check_suffix(owner: str, path) -> str:
    path = os.fspath(path)
    if not path.endswith(SUFFIX):
        raise ValueError(f"{owner}: a keras checkpoint path must end in {SUFFIX!r}, got {path!r}")
    return path


def save_checkpoint(path, model, optimizer=None, epoch: int = 0, **extra) -> str:
    """Write ``model``'s weights (``model.save_weights``, a ``.weights.h5`` file) with the optimizer's
    variables, ``epoch`` and ``extra`` (JSON-able values) in a ``nitrain`` group of the same file. The folder
    is created; a temporary file is renamed into place, so a crash never leaves half a checkpoint."""
    import h5py

    path = _check_suffix("save_checkpoint", path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = f"{path[: -len(SUFFIX)]}.tmp{os.getpid()}{SUFFIX}"
    model.save_weights(tmp)
    with h5py.File(tmp, "a") as f:
        g = f.create_group("nitrain")
        g.attrs["format"] = FORMAT
        g.attrs["version"] = 1
        g.attrs["epoch"] = int(epoch)
        g.attrs["extra"] = json.dumps(extra)
        if optimizer is not None:
            store: dict = {}
            optimizer.save_own_variables(store)
            og = g.create_group("optimizer")
            for k, v in store.items():
                og.create_dataset(k, data=np.asarray(v))
    os.replace(tmp, path)
    return path


def load_checkpoint(path, model=None, optimizer=None) -> dict:
    """Read a keras checkpoint; load the weights into ``model`` and the optimizer's variables into
    ``optimizer`` (built on ``model``'s trainable variables if it is not yet) when given. Returns a dict
    with ``epoch``, ``optimizer`` (the saved variables, or None) and the saved extras."""
    import h5py

    path = _check_suffix("load_checkpoint", path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    with h5py.File(path, "r") as f:
        g = f.get("nitrain")
        if g is None or g.attrs.get("format") != FORMAT:
            raise ValueError(f"load_checkpoint: {path} is not a nitrain checkpoint (use save_checkpoint)")
        state = {"format": FORMAT, "epoch": int(g.attrs["epoch"]), **json.loads(g.attrs["extra"])}
        og = g.get("optimizer")
        state["optimizer"] = None if og is None else {k: np.array(og[k]) for k in og}
    if model is not None:
        model.load_weights(path)
    if optimizer is not None:
        saved = state["optimizer"]
        if saved is None:
            raise ValueError(f"load_checkpoint: {path} holds no optimizer state")
        if not optimizer.built:
            if model is None:
                raise ValueError("load_checkpoint: an optimizer that is not built needs the model too")
            optimizer.build(model.trainable_variables)
        if len(saved) != len(optimizer.variables):
            raise ValueError(
                f"load_checkpoint: {path} holds {len(saved)} optimizer variables, the optimizer has "
                f"{len(optimizer.variables)} (a different optimizer or model?)"
            )
        optimizer.load_own_variables(saved)
    return state
