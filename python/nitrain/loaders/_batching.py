"""Helpers of the loader: stacking whole records into a batch, the ranks a loader shards over, and which
transforms a sampler can apply to gathered items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nitrain import _core
from nitrain._images import is_image
from nitrain._layout import add_channel
from nitrain.samplers._extract import image_array
from nitrain.transforms.base import takes_rng


def deferrable(t: Any) -> bool:
    """Whether a sampler can apply ``t`` to gathered items (``t.apply_to_items``) instead of the image."""
    return takes_rng(t) and callable(getattr(type(t), "apply_to_items", None))


def stack_values(values: Sequence[Any], channel: str | None, what: str) -> np.ndarray:
    """Whole images -> one float32 batch (shapes must agree); scalars -> a float32 vector."""
    if is_image(values[0]) or isinstance(values[0], np.ndarray):
        arrays = [image_array(v) if is_image(v) else v for v in values]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(
                f"DatasetLoader: {what} images in one batch have different shapes {sorted(shapes)}; "
                "resize them with a fixed transform (e.g. tx.Resize) or use a sampler"
            )
        out = _core.empty_array([len(arrays), *arrays[0].shape], "float32", False)  # recycled if free
        for i, a in enumerate(arrays):
            out[i] = a
        return add_channel(out, channel)
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TypeError(f"DatasetLoader: {what} values must be numbers or images, got {values[:3]!r}") from e


def distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Rank and world size: as given, else from an initialised torch.distributed, else (0, 1)."""
    if rank is None and world_size is None:
        try:
            import sys

            dist = sys.modules.get("torch.distributed")
            if dist is not None and dist.is_available() and dist.is_initialized():
                return dist.get_rank(), dist.get_world_size()
        except Exception:
            pass
        return 0, 1
    rank, world_size = int(rank or 0), int(world_size or 1)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"DatasetLoader: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
        )
    return rank, world_size
