"""Spatial transforms on 2-D and 3-D ANTs images, gathered from the modules that define them:

- ``fixed_spatial``: the deterministic ones (``Resize``, ``Resample``, ``Crop``, ``Pad``, ``Slice``, ``Flip``,
  ``Reorient`` and the affine warps ``Rotate``, ``Translate``, ``Shear``, ``Zoom``, ``Affine``);
- ``random_spatial``: the random ones, each applying its deterministic twin with the parameters it draws;
- ``_geometry``: ``affine_matrix``, ``rotation_matrix`` and the warp, crop, pad and flip they use.

Import them from ``nitrain.transforms``; this module keeps ``nitrain.transforms.spatial.X`` working.
"""

from nitrain.transforms._checks import expand as _expand  # noqa: F401  (nitrain.loaders uses it)
from nitrain.transforms._geometry import affine_matrix, rotation_matrix
from nitrain.transforms.fixed_spatial import (  # noqa: F401  (_Warp: nitrain.loaders uses it)
    Affine,
    Crop,
    Flip,
    Pad,
    Reorient,
    Resample,
    Resize,
    Rotate,
    Shear,
    Slice,
    Translate,
    Zoom,
    _Warp,
)
from nitrain.transforms.random_spatial import (
    RandomAffine,
    RandomCrop,
    RandomFlip,
    RandomRotate,
    RandomShear,
    RandomTranslate,
    RandomZoom,
)

__all__ = [
    "Affine",
    "Crop",
    "Flip",
    "Pad",
    "RandomAffine",
    "RandomCrop",
    "RandomFlip",
    "RandomRotate",
    "RandomShear",
    "RandomTranslate",
    "RandomZoom",
    "Reorient",
    "Resample",
    "Resize",
    "Rotate",
    "Shear",
    "Slice",
    "Translate",
    "Zoom",
    "affine_matrix",
    "rotation_matrix",
]
