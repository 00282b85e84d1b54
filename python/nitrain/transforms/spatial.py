"""Spatial transforms on 2-D and 3-D ANTs images, gathered from the modules that define them:

- ``fixed_spatial``: the deterministic ones (``Resize``, ``Resample``, ``Crop``, ``Pad``, ``Slice``, ``Flip``,
  ``Reorient`` and the affine warps ``Rotate``, ``Translate``, ``Shear``, ``Zoom``, ``Affine``);
- ``random_spatial``: the random ones, each applying its deterministic twin with the parameters it draws;
- ``_geometry``: ``affine_matrix``, ``rotation_matrix`` and the warp, crop, pad and flip they use.

Import them from ``nitrain.transforms``; this module keeps ``nitrain.transforms.spatial.X`` working. Its
names are the ``__all__`` of ``fixed_spatial`` and ``random_spatial`` (written there only), and the two
matrix helpers of ``_geometry``.
"""

from nitrain.transforms import fixed_spatial, random_spatial
from nitrain.transforms._geometry import affine_matrix, rotation_matrix
from nitrain.transforms.fixed_spatial import *  # noqa: F403
from nitrain.transforms.random_spatial import *  # noqa: F403

__all__ = [*fixed_spatial.__all__, *random_spatial.__all__, "affine_matrix", "rotation_matrix"]
