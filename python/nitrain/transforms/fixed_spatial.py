"""Deterministic spatial transforms on 2-D and 3-D ANTs images: resizing, cropping, padding, flips and
affine warps. Each ``Random*`` spatial transform (``random_spatial``) applies one of these with the
parameters it draws.

Every transform keeps the image's geometry right: a resize changes the spacing, a crop or a pad moves the
origin (along the image's direction) so that every voxel stays at the same physical point, and the affine
warps (``Rotate``, ``Translate``, ``Shear``, ``Zoom``, ``Affine``) move the content around the image centre
and resample it onto the input's own grid, in the image's local frame (see ``_geometry``). So
``Rotate(90)`` turns a 2-D image from axis 0 towards axis 1 (``np.rot90`` of the array for a square image
with square voxels), ``Translate((2, 0, 0))`` moves the content 2 mm along axis 0 and ``Zoom(2)`` doubles
its size about the centre.

With ``label=True`` (the images after the first in ``t(image, segmentation)``) interpolation is nearest
neighbour, so a label map keeps its exact pixel values and pixel type; ``Pad`` pads a label map with 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nitrain._typing import Image
from nitrain.transforms import _geometry as geo
from nitrain.transforms._checks import (
    INTERPOLATIONS,
    LABEL,
    axes,
    check_image,
    expand,
    int_pairs,
    integer,
    is_int,
    normalise_axes,
    number,
    per_axis,
    rotation_args,
)
from nitrain.transforms._checks import interpolation as _interpolation
from nitrain.transforms._checks import length_unit as _unit
from nitrain.transforms.base import BaseTransform

__all__ = [
    "Affine",
    "Crop",
    "Flip",
    "Pad",
    "Reorient",
    "Resample",
    "Resize",
    "Rotate",
    "Shear",
    "Slice",
    "Translate",
    "Zoom",
]


# -- resampling ------------------------------------------------------------------------------------------


class Resize(BaseTransform):
    """Resample to a voxel ``shape`` (one integer per axis, or one for all), keeping the field of view:
    the image's physical extent (shape x spacing, voxel edge to voxel edge) and centre stay, the spacing
    becomes spacing * old_shape / new_shape."""

    def __init__(self, shape: Sequence[int], interpolation: str = "linear") -> None:
        self.shape = per_axis("Resize", "shape", shape, (2, 3), positive=True, integer=True)
        self.interpolation = _interpolation("Resize", interpolation)

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        import ants

        ndim = check_image("Resize", image)
        new_shape = expand("Resize", "shape", self.shape, ndim, ndim).astype(int)
        shape, spacing, origin, direction = geo.geometry(image)
        new_spacing = spacing * shape / new_shape
        new_origin = origin + direction @ ((new_spacing - spacing) / 2.0)  # the grid's corner stays put
        reference = ants.make_image(
            tuple(int(n) for n in new_shape),
            spacing=tuple(new_spacing.tolist()),
            origin=tuple(new_origin.tolist()),
            direction=direction,
            pixeltype=image.pixeltype,
        )
        tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=ndim)
        interp = LABEL if label else INTERPOLATIONS[self.interpolation][0]
        return ants.apply_ants_transform_to_image(tx, image, reference, interpolation=interp)


class Resample(BaseTransform):
    """``ants.resample_image``: with ``use_spacing=True`` ``params`` is the new spacing in mm (e.g.
    ``Resample((4, 4, 4), use_spacing=True)`` for 4 mm voxels), otherwise it is the new voxel shape. ANTs
    keeps the origin and the extent between the first and last voxel centres."""

    def __init__(self, params: Any, use_spacing: bool = False, interpolation: str = "linear") -> None:
        self.use_spacing = bool(use_spacing)
        self.params = per_axis(
            "Resample", "params", params, (2, 3), positive=True, integer=not self.use_spacing
        )
        self.interpolation = _interpolation("Resample", interpolation)

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        import ants

        ndim = check_image("Resample", image)
        per_axis_params = expand("Resample", "params", self.params, ndim, ndim)
        values = (
            tuple(per_axis_params.tolist()) if self.use_spacing else tuple(int(v) for v in per_axis_params)
        )
        interp = INTERPOLATIONS[LABEL if label else self.interpolation][1]
        return ants.resample_image(image, values, use_voxels=not self.use_spacing, interp_type=interp)


# -- crop, pad, slice, flip, reorient --------------------------------------------------------------------


class Crop(BaseTransform):
    """Crop to ``indices`` — one ``(start, stop)`` pair of voxel indices per axis (stop exclusive) — or,
    with ``indices='foreground'`` (or ``None``), to the bounding box of the non-zero voxels grown by
    ``margin`` voxels (one for all axes or one per axis). The origin moves so that every kept voxel stays at
    the same physical point. In ``t(image, segmentation)`` the box comes from the first image."""

    def __init__(
        self, indices: str | Sequence[Sequence[int]] | None = "foreground", margin: int | Sequence[int] = 0
    ) -> None:
        self.indices: str | tuple[tuple[int, int], ...]
        if indices is None or (isinstance(indices, str) and indices == "foreground"):
            self.indices = "foreground"
        else:
            what = "'foreground' or one (start, stop) pair per axis with 0 <= start < stop"
            self.indices = int_pairs("Crop", "indices", indices, what)
            if not all(0 <= start < stop for start, stop in self.indices):
                raise ValueError(f"Crop: indices must be {what}, got {indices!r}")
        self.margin = per_axis("Crop", "margin", margin, (2, 3), integer=True)
        if min(np.atleast_1d(self.margin)) < 0:
            raise ValueError(f"Crop: margin must not be negative, got {margin!r}")

    def _box(self, image: Image) -> tuple[Sequence[int], Sequence[int]]:
        if isinstance(self.indices, str):  # "foreground"
            return geo.foreground_box("Crop", image, self.margin)
        return [a for a, _ in self.indices], [b for _, b in self.indices]

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        check_image("Crop", image)
        lower, upper = self._box(image)
        return {"lower": lower, "upper": upper}

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        check_image("Crop", image)
        if "lower" in params:
            lower, upper = params["lower"], params["upper"]
        else:
            lower, upper = self._box(image)
        return geo.crop("Crop", image, lower, upper)


class Pad(BaseTransform):
    """Pad with ``value`` (label maps with 0): ``width`` voxels on both sides of every axis, or one entry
    per axis, each an integer (both sides) or a ``(before, after)`` pair. The origin moves back along the
    image's direction so that every voxel stays at the same physical point."""

    def __init__(self, width: int | Sequence[int | Sequence[int]], value: float = 0) -> None:
        what = (
            "a non-negative integer or one per axis (an integer or a (before, after) pair of non-negative "
            "integers)"
        )
        self.width: int | tuple[tuple[int, int], ...]
        if is_int(width):
            if width < 0:
                raise ValueError(f"Pad: width must be {what}, got {width!r}")
            self.width = int(width)
        else:
            self.width = int_pairs("Pad", "width", width, what, single=True)
            if not all(v >= 0 for pair in self.width for v in pair):
                raise ValueError(f"Pad: width must be {what}, got {width!r}")
        self.value = number("Pad", "value", value)

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        ndim = check_image("Pad", image)
        if isinstance(self.width, int):
            widths = [(self.width, self.width)] * ndim
        elif len(self.width) != ndim:
            raise ValueError(f"Pad: width has {len(self.width)} entries but the image is {ndim}-D")
        else:
            widths = list(self.width)
        return geo.pad(image, widths, 0 if label else self.value)


class Slice(BaseTransform):
    """The 2-D slice ``index`` (negative counts from the end) along ``axis`` of a 3-D image
    (``ants.slice_image``). The slice keeps the spacing of the other two axes; its direction is the
    corresponding 2x2 block of the 3-D direction where that is a valid direction, else the identity."""

    def __init__(self, axis: int, index: int) -> None:
        if not is_int(axis):
            raise TypeError(f"Slice: axis must be 0, 1 or 2 (a 3-D image's axis), got {axis!r}")
        if not 0 <= axis <= 2:
            raise ValueError(f"Slice: axis must be 0, 1 or 2 (a 3-D image's axis), got {axis!r}")
        self.axis, self.index = int(axis), integer("Slice", "index", index)

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        import ants

        ndim = check_image("Slice", image)
        if ndim != 3:
            raise ValueError(f"Slice: expected a 3-D image, got a {ndim}-D image")
        n = image.shape[self.axis]
        if not -n <= self.index < n:
            raise ValueError(f"Slice: index {self.index} is out of range for axis {self.axis} of size {n}")
        return ants.slice_image(image, self.axis, self.index % n, collapse_strategy=2)


class Flip(BaseTransform):
    """Reverse the voxel array along ``axis`` (an axis or a list of axes); the geometry is unchanged."""

    keeps_shape = True

    def __init__(self, axis: int | Sequence[int] = 0) -> None:
        self.axis = axes("Flip", axis)

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        ndim = check_image("Flip", image)
        return geo.flip(image, normalise_axes("Flip", self.axis, ndim))


class Reorient(BaseTransform):
    """Reorder and flip the axes of a 3-D image to ``orientation`` (e.g. 'RAS', 'LPI';
    ``ants.reorient_image2``). Exact: no interpolation."""

    def __init__(self, orientation: str = "RAS") -> None:
        what = f"three letters, one of each pair R/L, A/P, S/I (e.g. 'RAS'), got {orientation!r}"
        if not isinstance(orientation, str):
            raise TypeError(f"Reorient: orientation must be {what}")
        letters = orientation.upper()
        if len(letters) != 3 or not all(sum(c in pair for c in letters) == 1 for pair in ("RL", "AP", "SI")):
            raise ValueError(f"Reorient: orientation must be {what}")
        self.orientation = letters

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        import ants

        ndim = check_image("Reorient", image)
        if ndim != 3:
            raise ValueError(f"Reorient: expected a 3-D image, got a {ndim}-D image")
        return ants.reorient_image2(image, self.orientation)


# -- affine warps ----------------------------------------------------------------------------------------


class _Warp:
    """What the affine warps share: ``_matrix(image, ndim)`` gives the local-frame matrix, and the content
    is resampled onto the image's own grid, so the shape is kept (``nitrain.loaders`` relies on that for
    every subclass that keeps this ``apply``). A random warp applies its deterministic twin's matrix.

    ``apply`` is one resampling by ``index_matrix(image, params)`` with ``interpolation_for(params, label)``:
    ``base.run_transforms`` (and so ``Compose``) merges consecutive warps into one resampling by the
    product of their index matrices. A subclass that overrides ``apply`` is not merged.
    """

    keeps_shape = True

    interpolation = "linear"
    if TYPE_CHECKING:  # from BaseTransform, which every warp also derives from
        random: bool

        def twin(self, params: dict) -> Any: ...

    def _matrix(self, image: Image, ndim: int) -> np.ndarray:
        raise NotImplementedError

    def _fixed(self, params: dict) -> Any:
        return self.twin(params) if self.random else self

    def index_matrix(self, image: Image, params: dict) -> np.ndarray:
        """The (d+1)x(d+1) matrix mapping an output voxel index to the input voxel index that ``apply``
        samples for draw ``params`` (``_geometry.index_matrix``). Warps applied one after the other
        (``first``, then ``second``) sample at ``first.index_matrix(...) @ second.index_matrix(...)``."""
        fixed = self._fixed(params)
        owner = type(fixed).__name__
        ndim = check_image(owner, image)
        return geo.index_matrix(owner, image, fixed._matrix(image, ndim))

    def interpolation_for(self, params: dict, label: bool = False) -> str:
        """The ANTs interpolation ``apply`` uses: nearest neighbour for a label map."""
        return LABEL if label else INTERPOLATIONS[self._fixed(params).interpolation][0]

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        fixed = self._fixed(params)  # deterministic: its own draw is {}
        matrix = fixed.index_matrix(image, {})
        return geo.resample(type(fixed).__name__, image, matrix, fixed.interpolation_for({}, label))

    #: ``base.run_transforms`` merges a warp only while its class keeps this ``apply``
    _merged_apply = apply


class Rotate(_Warp, BaseTransform):
    """Rotate about the image centre by ``angle`` degrees: a number rotates in the plane of ``axes``
    (default (0, 1), turning axis 0 towards axis 1); in 3-D ``angle`` may be three angles, one about each
    axis (see ``rotation_matrix``)."""

    def __init__(
        self, angle: float | Sequence[float], axes: Sequence[int] | None = None, interpolation: str = "linear"
    ) -> None:
        self.angle, self.axes = rotation_args("Rotate", angle, axes)
        self.interpolation = _interpolation("Rotate", interpolation)

    def _matrix(self, image: Image, ndim: int) -> np.ndarray:
        return geo.affine_matrix(ndim, rotation=self.angle, axes=self.axes, owner="Rotate")


class Translate(_Warp, BaseTransform):
    """Move the content by ``shift`` (a number for every axis or one per axis) along the image axes, in
    mm or, with ``unit='voxel'``, in voxels."""

    def __init__(
        self, shift: float | Sequence[float], unit: str = "mm", interpolation: str = "linear"
    ) -> None:
        self.shift = per_axis("Translate", "shift", shift, (2, 3))
        self.unit = _unit("Translate", unit)
        self.interpolation = _interpolation("Translate", interpolation)

    def _matrix(self, image: Image, ndim: int) -> np.ndarray:
        shift = geo.voxels_to_mm(image, expand("Translate", "shift", self.shift, ndim, ndim), self.unit)
        return geo.affine_matrix(ndim, translation=shift, owner="Translate")


class Shear(_Warp, BaseTransform):
    """Shear about the image centre. ``shear`` is a number s (axis 0 sheared along axis 1:
    x0 += s * x1) or one coefficient per off-diagonal entry (2 in 2-D, 6 in 3-D; see ``affine_matrix``)."""

    def __init__(self, shear: Any, interpolation: str = "linear") -> None:
        self.shear = per_axis("Shear", "shear", shear, (2, 6))
        self.interpolation = _interpolation("Shear", interpolation)

    def _matrix(self, image: Image, ndim: int) -> np.ndarray:
        return geo.affine_matrix(ndim, shear=self.shear, owner="Shear")


class Zoom(_Warp, BaseTransform):
    """Scale the content about the image centre by ``factor`` (> 0; one for every axis or one per axis;
    > 1 zooms in). The grid is unchanged."""

    def __init__(self, factor: float | Sequence[float], interpolation: str = "linear") -> None:
        self.factor = per_axis("Zoom", "factor", factor, (2, 3), positive=True)
        self.interpolation = _interpolation("Zoom", interpolation)

    def _matrix(self, image: Image, ndim: int) -> np.ndarray:
        return geo.affine_matrix(ndim, zoom=self.factor, owner="Zoom")


class Affine(_Warp, BaseTransform):
    """Move the content by a homogeneous ``matrix`` in the image's local frame (centred, along the image
    axes): 3x3 (or its top 2x3) for 2-D images, 4x4 (or 3x4) for 3-D. Its translation column is in mm or,
    with ``unit='voxel'``, in voxels. ``affine_matrix`` builds one from a rotation, translation, shear and
    zoom."""

    def __init__(self, matrix: Any, interpolation: str = "linear", unit: str = "mm") -> None:
        try:
            m = np.array(matrix, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"Affine: matrix must be a 2-D array of numbers, got {matrix!r}") from None
        if m.ndim != 2 or m.shape not in ((2, 3), (3, 3), (3, 4), (4, 4)):
            raise ValueError(
                f"Affine: matrix must be 3x3 or 2x3 (2-D), 4x4 or 3x4 (3-D), got shape {m.shape}: {matrix!r}"
            )
        ndim = m.shape[1] - 1
        if m.shape[0] == ndim:
            m = np.vstack([m, np.eye(ndim + 1)[ndim]])
        if not np.isfinite(m).all():
            raise ValueError(f"Affine: matrix must be finite, got {matrix!r}")
        if not np.allclose(m[ndim], np.eye(ndim + 1)[ndim]):
            raise ValueError(f"Affine: the last row of the matrix must be (0, ..., 0, 1), got {m[ndim]!r}")
        if abs(np.linalg.det(m[:ndim, :ndim])) < 1e-12:
            raise ValueError(f"Affine: matrix must be invertible, got {matrix!r}")
        self.matrix = m
        self.interpolation = _interpolation("Affine", interpolation)
        self.unit = _unit("Affine", unit)

    def _matrix(self, image: Image, ndim: int) -> np.ndarray:
        if self.matrix.shape[0] != ndim + 1:
            raise ValueError(
                f"Affine: matrix is for a {self.matrix.shape[0] - 1}-D image, got a {ndim}-D image"
            )
        if self.unit == "mm":
            return self.matrix
        m = self.matrix.copy()
        m[:ndim, ndim] = geo.voxels_to_mm(image, m[:ndim, ndim], self.unit)
        return m
