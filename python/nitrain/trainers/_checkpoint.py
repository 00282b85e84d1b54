"""Checkpoints: one ``torch.save`` file with the model and optimizer states, the epoch and the history."""

from __future__ import annotations

import os

FORMAT = "nitrain-checkpoint"


def _unwrap(model):
    return getattr(model, "module", model) if type(model).__name__ == "DistributedDataParallel" else model


def save_checkpoint(path, model, optimizer=None, epoch: int = 0, **extra) -> str:
    """Write ``model`` (its ``state_dict``), ``optimizer`` state and ``epoch`` (epochs completed) to
    ``path``, with any ``extra`` entries (plain python values or tensors). The folder is created; the file
    is written to a temporary name first and then renamed, so a crash never leaves half a checkpoint."""
    import torch

    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    state = {
        "format": FORMAT,
        "version": 1,
        "epoch": int(epoch),
        "model": _unwrap(model).state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        **extra,
    }
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, model=None, optimizer=None, map_location="cpu") -> dict:
    """Read a checkpoint; load its states into ``model`` and ``optimizer`` when given. Returns the dict
    (keys ``epoch``, ``model``, ``optimizer`` and whatever else was saved)."""
    import torch

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"load_checkpoint: {path} is not a nitrain checkpoint (use save_checkpoint)")
    if model is not None:
        _unwrap(model).load_state_dict(state["model"])
    if optimizer is not None:
        if state.get("optimizer") is None:
            raise ValueError(f"load_checkpoint: {path} holds no optimizer state")
        optimizer.load_state_dict(state["optimizer"])
    return state
