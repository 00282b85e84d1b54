"""Calling any supported model on numpy batches: torch modules, keras 3 models or plain callables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nitrain._frameworks import framework_of, model_channels
from nitrain._layout import add_channel


def channels_of(model: Any, channels: str) -> str:
    """Where the model wants the channel axis: torch modules ``'first'``, keras models and callables
    ``'last'``, unless ``channels`` or the model's ``nitrain_spec`` says otherwise."""
    return model_channels(model, channels, "explainer")


def predictor(model: Any, channels: str = "auto", batch_size: int = 16) -> Callable[[np.ndarray], np.ndarray]:
    """``f(batch) -> (N, outputs)`` for a float32 batch of shape ``(N, *spatial)`` (no channel axis)."""
    where = channels_of(model, channels)
    framework = framework_of(model)
    if framework == "torch":
        import torch

        device = next(model.parameters(), torch.zeros(0)).device

        def run(batch: np.ndarray) -> np.ndarray:
            model.eval()
            outs = []
            with torch.no_grad():
                for s in range(0, len(batch), batch_size):
                    t = torch.from_numpy(add_channel(batch[s : s + batch_size], where, np.float32))
                    outs.append(model(t.to(device)).float().cpu().numpy())
            return np.concatenate(outs).reshape(len(batch), -1)

        return run
    if framework == "keras":

        def run_keras(batch: np.ndarray) -> np.ndarray:
            # predict_on_batch runs the model's compiled predict step (a tf.function under tensorflow):
            # about twice as fast as an eager call, without model.predict's per-call setup.
            outs = [
                np.asarray(model.predict_on_batch(add_channel(batch[s : s + batch_size], where, np.float32)))
                for s in range(0, len(batch), batch_size)
            ]
            return np.concatenate([o.reshape(len(o), -1) for o in outs]).astype(np.float64)

        return run_keras
    if not callable(model):
        raise TypeError(
            "explainer: model must be a torch module, a keras model or a callable, "
            f"got {type(model).__name__}"
        )

    def run_callable(batch: np.ndarray) -> np.ndarray:
        outs = []
        for s in range(0, len(batch), batch_size):
            part = add_channel(batch[s : s + batch_size], where, np.float32)
            outs.append(np.asarray(model(part), dtype=np.float64).reshape(len(part), -1))
        return np.concatenate(outs)

    return run_callable


def expected_shape(model: object) -> tuple[int, ...] | None:
    """The spatial input shape a nitrain-built model declares, if any."""
    spec = getattr(model, "nitrain_spec", None)
    if isinstance(spec, dict) and spec.get("input_image_size"):
        return tuple(spec["input_image_size"][:-1])
    return None
