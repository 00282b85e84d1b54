"""Whole-volume inference with a model trained on blocks: overlapping blocks on a grid that covers the
volume, predicted in batches, blended back into one volume in the input's space.

The blocks are cut by the Rust gather kernel and the model's outputs summed into the volume, each block
weighted by a blending window, by the Rust aggregation kernel (``nitrain._core.accumulate_blocks``);
the result is the weighted mean of the outputs of every block covering a voxel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from nitrain import _core
from nitrain._frameworks import framework_of, model_channels
from nitrain.samplers._extract import extract_blocks, grid_origins, image_array

OUTPUTS = ("labels", "probabilities", "logits")
BLENDS = ("gaussian", "constant")


def blend_window(block: Sequence[int], blend: str = "gaussian", sigma_scale: float = 0.125) -> np.ndarray:
    """The weight of each voxel of a block: 'constant' (all 1) or 'gaussian' (a Gaussian centred on the
    block, sigma ``sigma_scale`` times the block length on each axis, as MONAI's; floored at 1e-3 of its
    peak so that every voxel keeps some weight)."""
    if blend not in BLENDS:
        raise ValueError(f"sliding_window: blend must be one of {BLENDS}, got {blend!r}")
    if blend == "constant":
        return np.ones(tuple(block), np.float32)
    w = np.ones((), np.float64)
    for n in block:
        x = np.arange(n) - (n - 1) / 2.0
        g = np.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2)
        w = np.multiply.outer(w, g)
    return np.maximum(w / w.max(), 1e-3).astype(np.float32)


def _runner(model: Any, channels: str) -> tuple[Any, Literal["first", "last"]]:
    """``f(batch) -> outputs`` for a float32 batch laid out with the model's channel axis, and that
    layout ('first' or 'last')."""
    framework = framework_of(model)
    where = model_channels(model, channels, "sliding_window")
    if framework == "torch":
        import torch

        device = next(model.parameters(), torch.zeros(0)).device

        def run_torch(batch: np.ndarray) -> np.ndarray:
            model.eval()
            with torch.no_grad():
                out = model(torch.from_numpy(batch).to(device))
            return out.float().cpu().numpy()

        return run_torch, where
    if framework == "keras":

        def run_keras(batch: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict_on_batch(batch), dtype=np.float32)

        return run_keras, where
    if not callable(model):
        raise TypeError(
            "sliding_window: model must be a torch module, a keras model or a callable, got "
            f"{type(model).__name__}"
        )
    return (lambda batch: np.asarray(model(batch), dtype=np.float32)), where


def sliding_window(
    model: Any,
    image: Any,
    block_size: int | Sequence[int],
    overlap: float = 0.5,
    blend: str = "gaussian",
    batch_size: int = 4,
    output: str = "labels",
    channels: str = "auto",
) -> Any:
    """Predict a whole image of any size with a model that maps a block to per-voxel outputs (a
    segmentation network trained on blocks), returning an ANTs image in ``image``'s space.

    - ``image``: an ANTs image, or a list of them (several inputs of one shape, stacked as channels in
      that order, as ``DatasetLoader(stack_inputs=True)`` serves them);
    - ``block_size``: the block the model takes (one number for every axis, or one per axis);
    - ``overlap``: the fraction by which neighbouring blocks overlap (0 <= overlap < 1); the grid's last
      block on each axis is flush with the border, so every voxel is covered. An image smaller than a
      block is padded with zeros and cropped back;
    - ``blend``: how overlapping outputs are averaged: 'gaussian' (blocks weigh most at their centre) or
      'constant';
    - ``output``: 'labels' (the argmax over the output channels; for one channel, output > 0), a float32
      label map; 'probabilities' (softmax over the channels, sigmoid for one), an image with one component
      per channel; or 'logits' (the blended raw outputs), likewise;
    - ``channels``: where the model takes its channel axis ('auto': from the model's ``nitrain_spec``,
      else torch channels-first and keras channels-last).
    """
    import ants

    if output not in OUTPUTS:
        raise ValueError(f"sliding_window: output must be one of {OUTPUTS}, got {output!r}")
    if not (isinstance(overlap, int | float) and 0 <= overlap < 1):
        raise ValueError(f"sliding_window: overlap must be a number in [0, 1), got {overlap!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"sliding_window: batch_size must be a positive integer, got {batch_size!r}")
    images = list(image) if isinstance(image, list | tuple) else [image]
    arrays = [image_array(img, f"sliding_window: image {k}") for k, img in enumerate(images)]
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays):
        raise ValueError(
            f"sliding_window: the input images have different shapes {[a.shape for a in arrays]}"
        )
    dims = len(shape)
    block = (int(block_size),) * dims if isinstance(block_size, int | np.integer) else tuple(block_size)
    if len(block) != dims or any(int(b) < 1 for b in block):
        raise ValueError(f"sliding_window: block_size {block_size!r} does not fit a {dims}-D image")
    padded = tuple(max(s, b) for s, b in zip(shape, block, strict=True))
    if padded != shape:
        pads = [(0, p - s) for p, s in zip(padded, shape, strict=True)]
        arrays = [np.asfortranarray(np.pad(a, pads)) for a in arrays]
    stride = tuple(max(1, int(round(b * (1 - overlap)))) for b in block)
    corners = grid_origins(padded, block, stride)
    window = blend_window(block, blend)
    run, where = _runner(model, channels)
    out: np.ndarray | None = None
    weights = np.zeros(padded, np.float32, order="F")
    for s in range(0, len(corners), batch_size):
        part = corners[s : s + batch_size]
        table = np.column_stack([np.zeros(len(part), np.int64), part])
        parts = [extract_blocks([a], table, block, channel=where) for a in arrays]
        batch = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1 if where == "first" else -1)
        pred = run(np.ascontiguousarray(batch, dtype=np.float32))
        if pred.ndim == dims + 1:  # one output channel, none kept
            pred = pred[:, None] if where == "first" else pred[..., None]
        pred = pred if where == "first" else np.moveaxis(pred, -1, 1)  # (n, C, *block), a view
        if pred.shape[0] != len(part) or tuple(pred.shape[2:]) != block:
            raise ValueError(
                f"sliding_window: the model maps a batch of {len(part)} blocks of {block} to outputs of "
                f"shape {tuple(pred.shape)}; it needs one output per voxel (a segmentation model)"
            )
        if pred.dtype != np.float32:
            pred = pred.astype(np.float32)
        if out is None:
            out = np.zeros((*padded, pred.shape[1]), np.float32, order="F")  # channel c: Fortran-contiguous
        _core.accumulate_blocks(pred, part, window, np.moveaxis(out, -1, 0), weights)
    assert out is not None
    crop = tuple(slice(0, s) for s in shape)
    blended = out[crop] / weights[crop][..., None]
    geometry = {
        "spacing": tuple(images[0].spacing),
        "origin": tuple(images[0].origin),
        "direction": np.asarray(images[0].direction),
    }
    if output == "labels":
        labels = (blended[..., 0] > 0) if blended.shape[-1] == 1 else np.argmax(blended, axis=-1)
        return ants.from_numpy(np.asfortranarray(labels.astype(np.float32)), **geometry)
    if output == "probabilities":
        if blended.shape[-1] == 1:
            blended = 1.0 / (1.0 + np.exp(-blended))
        else:
            blended = np.exp(blended - blended.max(axis=-1, keepdims=True))
            blended /= blended.sum(axis=-1, keepdims=True)
    return ants.from_numpy(np.ascontiguousarray(blended, dtype=np.float32), has_components=True, **geometry)
