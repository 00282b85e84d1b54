"""ANTs images: the one test of what is an image (``is_image``, used by every module that tells images
from other values), and model outputs as ANTs images, shared by ``nitrain.torch``, ``nitrain.keras`` and
``nitrain.tensorflow`` (no framework is imported here: tensors are recognised by their methods). Imports
no nitrain module but the leaf ``nitrain._layout``, so any module can use it without an import cycle."""

from __future__ import annotations

from typing import Any

import numpy as np

from nitrain._layout import move_axis
from nitrain._typing import Image


def is_image(obj: object) -> bool:
    """Whether ``obj`` is an ANTs image (duck-typed: what the transforms use of an ``ants.ANTsImage``)."""
    return callable(getattr(obj, "view", None)) and hasattr(obj, "spacing") and hasattr(obj, "pixeltype")


def prediction_to_image(pred_array: Any, reference: Image) -> Image:
    """An ANTs image holding ``pred_array`` with ``reference``'s origin, spacing and direction.

    ``pred_array`` (numpy, or a torch / tensorflow tensor) may have the reference's shape, with leading
    length-1 axes (a batch of one); or a channel axis first ``(C, *shape)`` (torch layout) or last
    ``(*shape, C)`` (keras layout), which gives a multi-component image (components last).
    """
    import ants

    if hasattr(pred_array, "detach"):  # a torch tensor
        pred_array = pred_array.detach().cpu().numpy()
    elif hasattr(pred_array, "numpy") and not isinstance(pred_array, np.ndarray):  # a tf / keras tensor
        pred_array = pred_array.numpy()
    arr = np.asarray(pred_array, dtype=np.float32)
    shape = tuple(reference.shape)
    while arr.ndim > len(shape) and arr.shape[0] == 1 and arr.shape[1:] != shape:
        arr = arr[0]
    components = False
    if arr.shape == shape:
        pass
    elif arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
        arr, components = move_axis(arr, "first", "last", batched=False), True
    elif arr.ndim == len(shape) + 1 and arr.shape[:-1] == shape:
        components = True
    else:
        raise ValueError(
            f"prediction_to_image: a prediction of shape {tuple(np.shape(pred_array))} does not match the "
            f"reference image's shape {shape} (allowed: the shape itself, with leading 1s, or one channel "
            "axis first or last)"
        )
    if components and arr.shape[-1] == 1:
        arr, components = arr[..., 0], False
    return ants.from_numpy(
        np.ascontiguousarray(arr),
        origin=tuple(reference.origin),
        spacing=tuple(reference.spacing),
        direction=np.asarray(reference.direction),
        has_components=components,
    )
