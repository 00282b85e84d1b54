"""Co-transforms of whole records: every input image and every image target moved by one draw, scalar
targets passed through; and the check that spatial transforms are not applied to inputs alone when the
targets are images."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from nitrain.transforms._checks import is_image
from nitrain.transforms.base import BaseTransform, call_transform, takes_rng

#: modules whose transforms move voxels (resample, flip, crop, pad, reorient)
_SPATIAL_MODULES = ("nitrain.transforms.fixed_spatial", "nitrain.transforms.random_spatial")


def _images(v: Any) -> list | None:
    """``v`` as a list of images (one image, or a list/tuple of them), or None when it holds none."""
    if is_image(v):
        return [v]
    if isinstance(v, list | tuple) and v and all(is_image(u) for u in v):
        return list(v)
    return None


def co_transform(
    t: Any, x: Any, y: Any, rng: np.random.Generator | None = None, owner: str = "co_transforms"
) -> tuple[Any, Any]:
    """``t`` applied to a record ``(x, y)`` as a co-transform.

    ``x``: an image or a list of images (several inputs); ``y``: an image or a list of images (label
    maps), or any other target (a number, a vector), which passes through unchanged. A library transform
    draws once (from ``rng``) and moves every image with that draw, the inputs as images and the image
    targets as label maps (nearest neighbour). A ``BaseTransform`` with its own ``__call__(image)`` is
    applied to each image on its own. Any other callable is called as ``t(x, y)``."""
    if not isinstance(t, BaseTransform) and not takes_rng(t):
        return t(x, y)
    xs = _images(x)
    if xs is None:
        raise TypeError(
            f"{owner}: {type(t).__name__} needs x to be an image or a list of images, got {type(x).__name__}"
        )
    ys = _images(y) or []
    flags = [False] * len(xs) + [True] * len(ys)
    out = call_transform(t, (*xs, *ys), rng=rng, labels=flags)
    new_x: Any = list(out[: len(xs)]) if isinstance(x, list | tuple) else out[0]
    if not ys:
        return new_x, y
    new_y: Any = list(out[len(xs) :]) if isinstance(y, list | tuple) else out[len(xs)]
    return new_x, new_y


def is_spatial(t: Any) -> bool:
    """Whether ``t`` moves voxels (a transform of the library's spatial families, or a ``Compose`` /
    ``RandomChoice`` holding one)."""
    members = getattr(t, "transforms", None)
    if isinstance(members, list | tuple):
        return any(is_spatial(m) for m in members)
    return type(t).__module__ in _SPATIAL_MODULES


def warn_unpaired_spatial(
    owner: str, x_transforms: Sequence[Any], y: Any, y_transforms: Sequence[Any]
) -> bool:
    """Warn (and return True) when ``x_transforms`` hold a spatial transform while the target ``y`` is an
    image that ``y_transforms`` do not move the same way: inputs and label maps would no longer line up."""
    if _images(y) is None:
        return False
    paired = {type(t) for t in y_transforms}  # e.g. Resample on x, and on y with nearest interpolation
    spatial = [t for t in x_transforms if is_spatial(t) and type(t) not in paired]
    if not spatial:
        return False
    warnings.warn(
        f"{owner}: {spatial[0]!r} is in x_transforms but the targets are images: it moves the inputs and "
        "not the label maps, which then no longer line up. Put spatial transforms in co_transforms (one "
        "draw moves inputs and label maps together; label maps by nearest neighbour)",
        stacklevel=3,
    )
    return True
