"""Calling any supported model on numpy batches: torch modules or plain callables."""

from __future__ import annotations

import numpy as np


def is_torch_module(model) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


def channels_of(model, channels: str) -> str:
    if channels in ("first", "last"):
        return channels
    if channels != "auto":
        raise ValueError(f"channels must be 'auto', 'first' or 'last', got {channels!r}")
    spec = getattr(model, "nitrain_spec", None)
    if isinstance(spec, dict) and spec.get("channels") in ("first", "last"):
        return spec["channels"]
    return "first" if is_torch_module(model) else "last"


def predictor(model, channels: str = "auto", batch_size: int = 16):
    """``f(batch) -> (N, outputs)`` for a float32 batch of shape ``(N, *spatial)`` (no channel axis)."""
    where = channels_of(model, channels)
    if is_torch_module(model):
        import torch

        device = next(model.parameters(), torch.zeros(0)).device

        def run(batch: np.ndarray) -> np.ndarray:
            model.eval()
            outs = []
            with torch.no_grad():
                for s in range(0, len(batch), batch_size):
                    t = torch.from_numpy(np.ascontiguousarray(batch[s : s + batch_size]))
                    t = t.unsqueeze(1) if where == "first" else t.unsqueeze(-1)
                    outs.append(model(t.to(device)).float().cpu().numpy())
            return np.concatenate(outs).reshape(len(batch), -1)

        return run
    if not callable(model):
        raise TypeError(f"explainer: model must be a torch module or a callable, got {type(model).__name__}")

    def run_callable(batch: np.ndarray) -> np.ndarray:
        outs = []
        for s in range(0, len(batch), batch_size):
            part = batch[s : s + batch_size]
            part = part[:, None] if where == "first" else part[..., None]
            outs.append(np.asarray(model(part), dtype=np.float64).reshape(len(part), -1))
        return np.concatenate(outs)

    return run_callable


def expected_shape(model):
    """The spatial input shape a nitrain-built model declares, if any."""
    spec = getattr(model, "nitrain_spec", None)
    if isinstance(spec, dict) and spec.get("input_image_size"):
        return tuple(spec["input_image_size"][:-1])
    return None
