"""Random spatial transforms: each draws its parameters from the generator it is given and applies its
deterministic twin from ``fixed_spatial`` (``twin(params)``: ``RandomRotate`` -> ``Rotate``, ``RandomAffine``
-> ``Affine``, ``RandomCrop`` -> ``Crop``, ...), so a draw replayed through the twin gives the same image,
bit for bit. Label maps (the images after the first in ``t(image, segmentation)``) are moved by the same
draw, with nearest-neighbour interpolation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from nitrain._typing import Image
from nitrain.transforms._checks import (
    axes,
    bounds,
    check_image,
    expand,
    normalise_axes,
    per_axis,
    probability,
    rotation_args,
    symmetric_span,
)
from nitrain.transforms._checks import interpolation as _interpolation
from nitrain.transforms._checks import length_unit as _unit
from nitrain.transforms._geometry import affine_matrix
from nitrain.transforms.base import RandomTransform
from nitrain.transforms.fixed_spatial import (
    Affine,
    Crop,
    Flip,
    Rotate,
    Shear,
    Translate,
    Zoom,
    _Warp,
)

__all__ = [
    "RandomAffine",
    "RandomCrop",
    "RandomFlip",
    "RandomRotate",
    "RandomShear",
    "RandomTranslate",
    "RandomZoom",
]


class RandomFlip(RandomTransform):
    """Flip the voxel array along ``axis`` (an axis or a list of axes; the geometry is kept), with
    probability ``p``. Once applied, each axis is flipped independently with probability ``axis_p``
    (default: every axis given). ``draw`` gives ``{'axes'}``: ``Flip(axes)`` reproduces it.

    Deprecated: with several axes and no ``axis_p``, ``p`` is the probability of flipping each axis (as it
    was); pass ``axis_p=`` (and ``p=1`` for that behaviour).
    """

    keeps_shape = True

    def __init__(
        self,
        axis: int | Sequence[int] = 0,
        p: float = 0.5,
        seed: np.random.Generator | int | None = None,
        *,
        axis_p: float | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.axis = axes("RandomFlip", axis)
        self.axis_p = None if axis_p is None else probability("RandomFlip", "axis_p", axis_p)
        if axis_p is None and len(self.axis) > 1:
            warnings.warn(
                "RandomFlip: with several axes, p is the probability of flipping each axis; that meaning "
                "is deprecated: pass axis_p=p, p=1 to keep it (p will be the probability of applying the "
                "transform, as for every other random transform)",
                DeprecationWarning,
                stacklevel=2,
            )
            self.p, self.axis_p = 1.0, self.p

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        ndim = check_image("RandomFlip", image)
        flip = normalise_axes("RandomFlip", self.axis, ndim)
        return {"axes": [a for a in flip if self.axis_p is None or rng.random() < self.axis_p]}

    def twin(self, params: dict) -> Flip | None:
        return Flip(list(params["axes"])) if params["axes"] else None


class RandomRotate(_Warp, RandomTransform):
    """Rotate by angles (degrees) drawn uniformly from [``min_angle``, ``max_angle``]: one angle in 2-D or
    in the plane of ``axes``; otherwise, in 3-D, one angle about each axis. ``draw`` gives
    ``{'angle', 'axes'}``, which ``Rotate(angle, axes)`` reproduces."""

    def __init__(
        self,
        min_angle: float = -10.0,
        max_angle: float = 10.0,
        axes: Sequence[int] | None = None,
        interpolation: str = "linear",
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.min_angle, self.max_angle = bounds(
            "RandomRotate", "min_angle", min_angle, "max_angle", max_angle
        )
        self.axes = rotation_args("RandomRotate", 0.0, axes)[1]
        self.interpolation = _interpolation("RandomRotate", interpolation)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        ndim = check_image("RandomRotate", image)
        if ndim == 2 or self.axes is not None:
            return {"angle": float(rng.uniform(self.min_angle, self.max_angle)), "axes": self.axes}
        return {"angle": rng.uniform(self.min_angle, self.max_angle, size=3).tolist(), "axes": None}

    def twin(self, params: dict) -> Rotate:
        return Rotate(params["angle"], axes=params["axes"], interpolation=self.interpolation)


class RandomTranslate(_Warp, RandomTransform):
    """Move the content by a shift drawn uniformly from [``min_shift``, ``max_shift``] on each axis (mm,
    or voxels with ``unit='voxel'``). ``draw`` gives ``{'shift'}`` for ``Translate(shift, unit)``."""

    def __init__(
        self,
        min_shift: float = -5.0,
        max_shift: float = 5.0,
        unit: str = "mm",
        interpolation: str = "linear",
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.min_shift, self.max_shift = bounds(
            "RandomTranslate", "min_shift", min_shift, "max_shift", max_shift
        )
        self.unit = _unit("RandomTranslate", unit)
        self.interpolation = _interpolation("RandomTranslate", interpolation)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        ndim = check_image("RandomTranslate", image)
        return {"shift": rng.uniform(self.min_shift, self.max_shift, size=ndim).tolist()}

    def twin(self, params: dict) -> Translate:
        return Translate(params["shift"], unit=self.unit, interpolation=self.interpolation)


class RandomShear(_Warp, RandomTransform):
    """Shear with every off-diagonal coefficient drawn uniformly from [``min_shear``, ``max_shear``]
    (2 in 2-D, 6 in 3-D). ``draw`` gives ``{'shear'}`` for ``Shear(shear)``."""

    def __init__(
        self,
        min_shear: float = -0.1,
        max_shear: float = 0.1,
        interpolation: str = "linear",
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.min_shear, self.max_shear = bounds("RandomShear", "min_shear", min_shear, "max_shear", max_shear)
        self.interpolation = _interpolation("RandomShear", interpolation)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        ndim = check_image("RandomShear", image)
        return {"shear": rng.uniform(self.min_shear, self.max_shear, size=ndim * (ndim - 1)).tolist()}

    def twin(self, params: dict) -> Shear:
        return Shear(params["shear"], interpolation=self.interpolation)


class RandomZoom(_Warp, RandomTransform):
    """Zoom about the centre by a factor drawn uniformly from [``min_factor``, ``max_factor``] (both > 0):
    the same on every axis, or one per axis with ``isotropic=False``. ``draw`` gives ``{'factor'}`` for
    ``Zoom(factor)``."""

    def __init__(
        self,
        min_factor: float = 0.9,
        max_factor: float = 1.1,
        isotropic: bool = True,
        interpolation: str = "linear",
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.min_factor, self.max_factor = bounds(
            "RandomZoom", "min_factor", min_factor, "max_factor", max_factor, positive=True
        )
        self.isotropic = bool(isotropic)
        self.interpolation = _interpolation("RandomZoom", interpolation)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        ndim = check_image("RandomZoom", image)
        if self.isotropic:
            return {"factor": float(rng.uniform(self.min_factor, self.max_factor))}
        return {"factor": rng.uniform(self.min_factor, self.max_factor, size=ndim).tolist()}

    def twin(self, params: dict) -> Zoom:
        return Zoom(params["factor"], interpolation=self.interpolation)


class RandomAffine(_Warp, RandomTransform):
    """Rotation, translation, shear and zoom drawn together and applied in one resampling.

    Each range is a number r — rotation (degrees), translation (mm, or voxels with ``unit='voxel'``) and
    shear: uniform in [-r, r]; zoom: uniform in [1 - r, 1 + r] — or a ``(min, max)`` pair. Rotation draws
    one angle in 2-D and one per axis in 3-D, translation and zoom one per axis (zoom one for all axes with
    ``isotropic_zoom=True``), shear one per off-diagonal coefficient. ``draw`` gives ``{'rotation',
    'translation', 'shear', 'zoom'}``; ``Affine(affine_matrix(ndim, **params), unit=unit)`` applies it.
    """

    def __init__(
        self,
        rotation: Any = 0.0,
        translation: Any = 0.0,
        shear: Any = 0.0,
        zoom: Any = 0.0,
        unit: str = "mm",
        isotropic_zoom: bool = False,
        interpolation: str = "linear",
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.rotation = symmetric_span("RandomAffine", "rotation", rotation)
        self.translation = symmetric_span("RandomAffine", "translation", translation)
        self.shear = symmetric_span("RandomAffine", "shear", shear)
        self.zoom = symmetric_span("RandomAffine", "zoom", zoom, centre=1.0, below=1.0, positive=True)
        self.unit = _unit("RandomAffine", unit)
        self.isotropic_zoom = bool(isotropic_zoom)
        self.interpolation = _interpolation("RandomAffine", interpolation)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        ndim = check_image("RandomAffine", image)
        rotation = rng.uniform(*self.rotation, size=1 if ndim == 2 else 3).tolist()
        zoom = rng.uniform(*self.zoom, size=1 if self.isotropic_zoom else ndim).tolist()
        return {
            "rotation": rotation[0] if ndim == 2 else rotation,
            "translation": rng.uniform(*self.translation, size=ndim).tolist(),
            "shear": rng.uniform(*self.shear, size=ndim * (ndim - 1)).tolist(),
            "zoom": zoom[0] if self.isotropic_zoom else zoom,
        }

    def twin(self, params: dict) -> Affine:
        ndim = len(params["translation"])
        matrix = affine_matrix(ndim, **{k: params[k] for k in ("rotation", "translation", "shear", "zoom")})
        return Affine(matrix, interpolation=self.interpolation, unit=self.unit)


class RandomCrop(RandomTransform):
    """Crop a ``shape`` (one positive integer per axis, or one for all) at a uniformly random position
    where it fits. ``draw`` gives ``{'lower', 'upper'}``: ``Crop(list(zip(lower, upper)))`` reproduces it."""

    def __init__(
        self, shape: Sequence[int], p: float = 1.0, seed: np.random.Generator | int | None = None
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.shape = per_axis("RandomCrop", "shape", shape, (2, 3), positive=True, integer=True)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        ndim = check_image("RandomCrop", image)
        crop = expand("RandomCrop", "shape", self.shape, ndim, ndim).astype(int)
        shape = np.asarray(image.shape, dtype=int)
        if (crop > shape).any():
            raise ValueError(
                f"RandomCrop: crop shape {tuple(crop.tolist())} does not fit in image shape "
                f"{tuple(shape.tolist())}"
            )
        lower = [int(rng.integers(0, n - c + 1)) for n, c in zip(shape, crop, strict=True)]
        return {"lower": lower, "upper": [a + int(c) for a, c in zip(lower, crop, strict=True)]}

    def twin(self, params: dict) -> Crop:
        return Crop(list(zip(params["lower"], params["upper"], strict=True)))
