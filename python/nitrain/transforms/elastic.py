"""Elastic deformation: every voxel displaced by a smooth field (TorchIO's ``RandomElasticDeformation``,
MONAI's ``Rand3DElastic``).

A grid of control points spans the image (as ITK's ``BSplineTransform`` mesh does: ``m - 3`` intervals
between the first and the last voxel centre along an axis of ``m`` control points, one point beyond each
end). Each control point holds a displacement in mm along the image axes; the cubic B-spline through them
gives every voxel x its displacement d(x), and the output at x takes the input's value at x + d(x) (ITK's
and TorchIO's convention). The resampling is nitrain's kernel (``_core.bspline_warp``), with the affine
warps' rules: linear interpolation, nearest neighbour for label maps, 0 outside the image. The field is
evaluated row by row inside the kernel, so no dense displacement field is ever allocated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nitrain._typing import Image
from nitrain.transforms._checks import LABEL, check_image, choice, expand, integer, per_axis
from nitrain.transforms.base import BaseTransform, RandomTransform

__all__ = ["ElasticDeformation", "RandomElasticDeformation"]

#: the kernel's interpolations, by the names ``interpolation`` accepts
_INTERPOLATIONS = {"linear": "linear", "nearest": "nearest", "nearestneighbor": "nearest"}


def _interpolation(owner: str, value: Any) -> str:
    name = value.lower() if isinstance(value, str) else value
    return _INTERPOLATIONS[choice(owner, "interpolation", name, sorted(_INTERPOLATIONS))]


class ElasticDeformation(BaseTransform):
    """Displace the voxels by the cubic B-spline through control-point ``displacements``: an array of
    shape ``(m0, m1, 2)`` for 2-D images or ``(m0, m1, m2, 3)`` for 3-D ones (at least 4 control points per
    axis), in mm along the image axes. The output at voxel x is the input at x + d(x). ``interpolation``:
    'linear' or 'nearest' (label maps always use nearest)."""

    keeps_shape = True

    def __init__(self, displacements: Any, interpolation: str = "linear") -> None:
        try:
            grid = np.array(displacements, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"ElasticDeformation: displacements must be an array of numbers, got {type(displacements)}"
            ) from None
        ndim = grid.ndim - 1
        if ndim not in (2, 3) or grid.shape[-1] != ndim or min(grid.shape[:-1]) < 4:
            raise ValueError(
                "ElasticDeformation: displacements must have shape (m0, m1, 2) or (m0, m1, m2, 3) with at "
                f"least 4 control points per axis, got shape {grid.shape}"
            )
        if not np.isfinite(grid).all():
            raise ValueError("ElasticDeformation: displacements must be finite")
        self.displacements = grid
        self.interpolation = _interpolation("ElasticDeformation", interpolation)

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        from nitrain import _core
        from nitrain.transforms._ants import empty_like_image

        ndim = check_image("ElasticDeformation", image)
        if self.displacements.shape[-1] != ndim:
            raise ValueError(
                f"ElasticDeformation: displacements are for a {self.displacements.shape[-1]}-D image, got a "
                f"{ndim}-D image"
            )
        arr = image.view()
        out, buf = empty_like_image(image, arr.dtype)
        voxels = self.displacements / np.asarray(image.spacing, dtype=np.float64)  # mm -> voxels, per axis
        kind = LABEL if label else self.interpolation
        _core.bspline_warp(arr, buf, np.ascontiguousarray(voxels), _INTERPOLATIONS[kind])
        return out

    def __repr__(self) -> str:
        return (
            f"ElasticDeformation(<control grid {self.displacements.shape}>, "
            f"interpolation={self.interpolation!r})"
        )


class RandomElasticDeformation(RandomTransform):
    """Elastic deformation with random control-point displacements (TorchIO's defaults).

    ``num_control_points``: control points per axis (at least 4; one number or one per axis);
    ``max_displacement``: each control point moves uniformly in [-max, max] mm along each image axis (one
    number or one per axis); ``locked_borders``: 0, 1 or 2 outer layers of control points that do not move
    (2, the default, keeps the image's edges nearly still). ``draw`` gives ``{'displacements'}`` (a nested
    list of shape ``(*num_control_points, ndim)``, mm); ``ElasticDeformation(displacements)`` applies it.
    """

    keeps_shape = True

    def __init__(
        self,
        num_control_points: int | Sequence[int] = 7,
        max_displacement: float | Sequence[float] = 7.5,
        locked_borders: int = 2,
        interpolation: str = "linear",
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        owner = "RandomElasticDeformation"
        self.num_control_points = per_axis(
            owner, "num_control_points", num_control_points, (2, 3), integer=True
        )
        if min(np.atleast_1d(self.num_control_points)) < 4:
            raise ValueError(
                f"{owner}: num_control_points must be at least 4 per axis (a cubic B-spline), got "
                f"{num_control_points!r}"
            )
        self.max_displacement = per_axis(owner, "max_displacement", max_displacement, (2, 3))
        if min(np.atleast_1d(self.max_displacement)) < 0:
            raise ValueError(f"{owner}: max_displacement must not be negative, got {max_displacement!r}")
        self.locked_borders = integer(owner, "locked_borders", locked_borders, minimum=0)
        if self.locked_borders > 2:
            raise ValueError(f"{owner}: locked_borders must be 0, 1 or 2, got {locked_borders!r}")
        if self.locked_borders == 2 and min(np.atleast_1d(self.num_control_points)) == 4:
            raise ValueError(
                f"{owner}: with locked_borders=2 and 4 control points along an axis every control point is "
                "locked; use more control points or fewer locked borders"
            )
        self.interpolation = _interpolation(owner, interpolation)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        owner = "RandomElasticDeformation"
        ndim = check_image(owner, image)
        grid = tuple(int(v) for v in expand(owner, "num_control_points", self.num_control_points, ndim, ndim))
        limit = expand(owner, "max_displacement", self.max_displacement, ndim, ndim)
        moves = rng.uniform(-1.0, 1.0, size=(*grid, ndim)) * limit
        lock = self.locked_borders
        if lock:
            inner = tuple(slice(lock, -lock) for _ in grid)
            kept = np.zeros_like(moves)
            kept[inner] = moves[inner]
            moves = kept
        return {"displacements": moves.tolist()}

    def twin(self, params: dict) -> ElasticDeformation:
        return ElasticDeformation(params["displacements"], interpolation=self.interpolation)
