"""Spatial transforms on 2-D and 3-D ANTs images: resizing, cropping, padding, flips and affine warps.

Every transform keeps the image's geometry right: a resize changes the spacing, a crop or a pad moves the
origin (along the image's direction) so that every voxel stays at the same physical point, and the affine
warps (``Rotate``, ``Translate``, ``Shear``, ``Zoom``, ``Affine`` and their random counterparts) move the
content around the image centre and resample it onto the input's own grid.

The affine warps are defined in the image's *local frame*: its origin is the centre of the image (in
physical space), its axes are the image axes (the columns of the direction matrix) and its unit is the
millimetre. So ``Rotate(90)`` turns a 2-D image from axis 0 towards axis 1 (``np.rot90`` of the array for
a square image with square voxels), ``Translate((2, 0, 0))`` moves the content 2 mm along axis 0 and
``Zoom(2)`` doubles its size about the centre. ``affine_matrix`` builds that (d+1)x(d+1) matrix from a
rotation, translation, shear and zoom; every affine transform goes through it. Voxels whose source lies
outside the image become 0.

With ``label=True`` (the images after the first in ``t(image, segmentation)``) interpolation is nearest
neighbour, so a label map keeps its exact pixel values and pixel type; ``Pad`` pads a label map with 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nitrain.transforms.base import BaseTransform, RandomTransform

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

# name -> (ANTs transformImage interpolator, ants.resample_image interp_type)
_INTERPOLATIONS = {
    "linear": ("linear", 0),
    "nearestneighbor": ("nearestneighbor", 1),
    "gaussian": ("gaussian", 2),
    "lanczoswindowedsinc": ("lanczoswindowedsinc", 3),
    "bspline": ("bspline", 4),
}
_ALIASES = {
    "nearest": "nearestneighbor",
    "nearest_neighbor": "nearestneighbor",
    "sinc": "lanczoswindowedsinc",
}
_LABEL = "nearestneighbor"


# -- argument checks -------------------------------------------------------------------------------------


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _number(owner: str, name: str, value, *, positive: bool = False) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{owner}: {name} must be positive, got {value!r}")
    return float(value)


def _values(
    owner: str,
    name: str,
    value,
    lengths: Sequence[int],
    *,
    positive: bool = False,
    integer: bool = False,
    scalar: bool = True,
):
    """A number (if ``scalar``) or a sequence of ``lengths`` numbers; returns a number or a tuple."""
    kind = "positive " if positive else ""
    kind += "integer" if integer else "number"
    counts = " or ".join(str(n) for n in lengths)
    what = f"a {kind} or one per axis ({counts} values)" if scalar else f"{counts} {kind}s"
    ok = _is_int if integer else _is_number

    def good(v) -> bool:
        return ok(v) and math.isfinite(v) and (not positive or v > 0)

    if scalar and ok(value):
        if not good(value):
            raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
        return int(value) if integer else float(value)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
    items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
    if len(items) not in lengths or not all(good(v) for v in items):
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
    return tuple(int(v) if integer else float(v) for v in items)


def _expand(owner: str, name: str, value, n: int, ndim: int) -> np.ndarray:
    """``value`` (a number or a tuple) as ``n`` numbers for a ``ndim``-D image."""
    if not isinstance(value, tuple | list | np.ndarray):
        return np.full(n, float(value))
    arr = np.asarray(value, dtype=float).ravel()
    if arr.size != n:
        raise ValueError(f"{owner}: {name} has {arr.size} values but the image is {ndim}-D (expected {n})")
    return arr


def _interpolation(owner: str, value) -> str:
    key = value.lower().replace(" ", "") if isinstance(value, str) else None
    key = _ALIASES.get(key, key)
    if key not in _INTERPOLATIONS:
        raise ValueError(
            f"{owner}: interpolation must be one of {sorted(_INTERPOLATIONS)} (case-insensitive), "
            f"got {value!r}"
        )
    return key


def _axis(owner: str, name: str, value) -> int:
    if not _is_int(value):
        raise ValueError(f"{owner}: {name} must be an integer axis, got {value!r}")
    return int(value)


def _axes(owner: str, value) -> tuple[int, ...]:
    """One axis or a non-empty sequence of distinct axes."""
    if _is_int(value):
        return (int(value),)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{owner}: axis must be an integer or a list of integers, got {value!r}")
    axes = tuple(_axis(owner, "axis", v) for v in value)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{owner}: axis must not repeat an axis, got {value!r}")
    return axes


def _normalise_axes(owner: str, axes, ndim: int) -> tuple[int, ...]:
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{owner}: axis {a} is out of range for a {ndim}-D image")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{owner}: axes {tuple(axes)} name the same axis twice")
    return tuple(out)


def _range(owner: str, lo_name: str, lo, hi_name: str, hi, *, positive: bool = False) -> tuple[float, float]:
    lo = _number(owner, lo_name, lo, positive=positive)
    hi = _number(owner, hi_name, hi, positive=positive)
    if lo > hi:
        raise ValueError(
            f"{owner}: {lo_name} must not exceed {hi_name}, got {lo_name}={lo!r} > {hi_name}={hi!r}"
        )
    return lo, hi


def _unit(owner: str, unit) -> str:
    if unit not in ("mm", "voxel"):
        raise ValueError(f"{owner}: unit must be 'mm' or 'voxel', got {unit!r}")
    return unit


def _check_image(owner: str, image) -> int:
    ndim = int(image.dimension)
    if ndim not in (2, 3):
        raise ValueError(f"{owner}: only 2-D and 3-D images are supported, got a {ndim}-D image")
    if getattr(image, "components", 1) != 1:
        raise ValueError(f"{owner}: multi-channel images are not supported ({image.components} components)")
    return ndim


# -- geometry --------------------------------------------------------------------------------------------


def _geometry(image):
    """(shape, spacing, origin, direction) as numpy arrays."""
    return (
        np.asarray(image.shape, dtype=int),
        np.asarray(image.spacing, dtype=float),
        np.asarray(image.origin, dtype=float),
        np.asarray(image.direction, dtype=float),
    )


def _centre(image) -> np.ndarray:
    """The physical point at the centre of the image's voxel grid."""
    shape, spacing, origin, direction = _geometry(image)
    return origin + direction @ (spacing * (shape - 1) / 2.0)


def _new_image(arr: np.ndarray, pixeltype: str, spacing, origin, direction):
    """A new ANTs image holding ``arr`` (copied exactly, in ``pixeltype``) with the given geometry."""
    import ants

    out = ants.make_image(
        tuple(int(n) for n in arr.shape),
        spacing=tuple(float(v) for v in spacing),
        origin=tuple(float(v) for v in origin),
        direction=np.asarray(direction, dtype=float),
        pixeltype=pixeltype,
    )
    out.view()[...] = arr
    return out


# -- affine matrices -------------------------------------------------------------------------------------


def _plane_rotation(ndim: int, theta: float, a: int, b: int) -> np.ndarray:
    """Rotation by ``theta`` degrees in the plane of axes ``a`` and ``b`` (turning axis a towards b)."""
    r = np.eye(ndim)
    c, s = math.cos(math.radians(theta)), math.sin(math.radians(theta))
    r[a, a] = r[b, b] = c
    r[b, a], r[a, b] = s, -s
    return r


def rotation_matrix(ndim: int, angle, axes=None, owner: str = "rotation_matrix") -> np.ndarray:
    """A ``ndim`` x ``ndim`` rotation matrix, angles in degrees.

    ``angle`` a number: a rotation in the plane of ``axes`` (default ``(0, 1)``, i.e. turning axis 0
    towards axis 1; about the third axis in 3-D). In 3-D ``angle`` may instead be three angles, one about
    each axis (right-handed: about axis 0 turns axis 1 towards 2, about axis 1 turns 2 towards 0, about
    axis 2 turns 0 towards 1), applied in the order axis 0, axis 1, axis 2.
    """
    if _is_number(angle):
        plane = (0, 1) if axes is None else tuple(axes)
        if len(plane) != 2:
            raise ValueError(f"{owner}: axes must be a pair of axes, got {axes!r}")
        a, b = _normalise_axes(owner, plane, ndim)
        return _plane_rotation(ndim, float(angle), a, b)
    angles = np.asarray(angle, dtype=float).ravel()
    if ndim != 3 or angles.size != 3:
        raise ValueError(
            f"{owner}: angle has {angles.size} values but the image is {ndim}-D; give one number "
            f"(a rotation in the plane of axes) or, for a 3-D image, one angle per axis"
        )
    if axes is not None:
        raise ValueError(f"{owner}: axes is for a single angle, not for one angle per axis")
    r = np.eye(3)
    for k in range(3):
        r = _plane_rotation(3, angles[k], (k + 1) % 3, (k + 2) % 3) @ r
    return r


def affine_matrix(
    ndim: int,
    rotation=None,
    axes=None,
    translation=None,
    shear=None,
    zoom=None,
    owner: str = "affine_matrix",
) -> np.ndarray:
    """The (ndim+1) x (ndim+1) matrix that moves an image's content in its local frame (centred on the
    image, along its axes, in mm): zoom first, then shear, then rotation, then translation.

    - ``rotation``: degrees, as in ``rotation_matrix`` (with ``axes``);
    - ``translation``: mm, a number for every axis or one per axis;
    - ``shear``: shear coefficients. A number s shears axis 0 along axis 1 (x0 += s * x1); or one
      coefficient per off-diagonal entry of the shear matrix, row by row (2 in 2-D: (s01, s10); 6 in 3-D:
      (s01, s02, s10, s12, s20, s21)), where x_i += s_ij * x_j;
    - ``zoom``: scale factors, a number for every axis or one per axis (> 1 enlarges the content).
    """
    m = np.eye(ndim + 1)
    lin = np.eye(ndim)
    if zoom is not None:
        factors = _expand(owner, "zoom", zoom, ndim, ndim)
        if not (np.isfinite(factors).all() and (factors > 0).all()):
            raise ValueError(f"{owner}: zoom factors must be positive, got {zoom!r}")
        lin = np.diag(factors) @ lin
    if shear is not None:
        s = np.eye(ndim)
        if _is_number(shear):
            s[0, 1] = float(shear)
        else:
            coeffs = _expand(owner, "shear", shear, ndim * (ndim - 1), ndim)
            s[~np.eye(ndim, dtype=bool)] = coeffs
        lin = s @ lin
    if rotation is not None:
        lin = rotation_matrix(ndim, rotation, axes, owner=owner) @ lin
    m[:ndim, :ndim] = lin
    if translation is not None:
        m[:ndim, ndim] = _expand(owner, "translation", translation, ndim, ndim)
    return m


def _warp(owner: str, image, matrix: np.ndarray, interpolation: str):
    """Resample ``image`` onto its own grid after moving its content by ``matrix`` (local frame)."""
    import ants

    ndim = int(image.dimension)
    direction = np.asarray(image.direction, dtype=float)
    lin, shift = matrix[:ndim, :ndim], matrix[:ndim, ndim]
    if abs(np.linalg.det(lin)) < 1e-12:
        raise ValueError(f"{owner}: the affine matrix is singular")
    # content moves x -> c + D L D^-1 (x - c) + D t; ITK maps each output point back to the input point
    inv_dir = np.linalg.inv(direction)
    back = direction @ np.linalg.inv(lin) @ inv_dir
    tx = ants.create_ants_transform(
        transform_type="AffineTransform",
        dimension=ndim,
        matrix=back,
        center=_centre(image).tolist(),
        translation=(-back @ (direction @ shift)).tolist(),
    )
    return ants.apply_ants_transform_to_image(tx, image, image, interpolation=interpolation)


class _Warp:
    """Shared ``apply`` of the affine transforms: ``_matrix(image, params)`` gives the local-frame matrix."""

    interpolation = "linear"

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        raise NotImplementedError

    def apply(self, image, params: dict, label: bool = False):
        owner = type(self).__name__
        ndim = _check_image(owner, image)
        matrix = self._matrix(image, params, ndim)
        return _warp(owner, image, matrix, _LABEL if label else _INTERPOLATIONS[self.interpolation][0])


def _rotation_args(owner: str, angle, axes):
    if _is_number(angle):
        angle = _number(owner, "angle", angle)
    else:
        try:
            angle = _values(owner, "angle", angle, (3,), scalar=False)
        except ValueError:
            raise ValueError(
                f"{owner}: angle must be a number or one per axis (3 values, 3-D only), got {angle!r}"
            ) from None
    if axes is not None:
        if isinstance(axes, str | bytes) or not isinstance(axes, Sequence) or len(axes) != 2:
            raise ValueError(f"{owner}: axes must be a pair of axes such as (0, 1), got {axes!r}")
        axes = tuple(_axis(owner, "axes", a) for a in axes)
        if not isinstance(angle, float):
            raise ValueError(f"{owner}: axes is for a single angle, not for one angle per axis")
    return angle, axes


def _voxels_to_mm(image, shift: np.ndarray, unit: str) -> np.ndarray:
    return shift * np.asarray(image.spacing, dtype=float) if unit == "voxel" else shift


# -- deterministic transforms ----------------------------------------------------------------------------


class Resize(BaseTransform):
    """Resample to a voxel ``shape`` (one integer per axis, or one for all), keeping the field of view:
    the image's physical extent (shape x spacing, voxel edge to voxel edge) and centre stay, the spacing
    becomes spacing * old_shape / new_shape."""

    def __init__(self, shape, interpolation: str = "linear"):
        self.shape = _values("Resize", "shape", shape, (2, 3), positive=True, integer=True)
        self.interpolation = _interpolation("Resize", interpolation)

    def apply(self, image, params: dict, label: bool = False):
        import ants

        ndim = _check_image("Resize", image)
        new_shape = _expand("Resize", "shape", self.shape, ndim, ndim).astype(int)
        shape, spacing, origin, direction = _geometry(image)
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
        interp = _LABEL if label else _INTERPOLATIONS[self.interpolation][0]
        return ants.apply_ants_transform_to_image(tx, image, reference, interpolation=interp)


class Resample(BaseTransform):
    """``ants.resample_image``: with ``use_spacing=True`` ``params`` is the new spacing in mm (e.g.
    ``Resample((4, 4, 4), use_spacing=True)`` for 4 mm voxels), otherwise it is the new voxel shape. ANTs
    keeps the origin and the extent between the first and last voxel centres."""

    def __init__(self, params, use_spacing: bool = False, interpolation: str = "linear"):
        self.use_spacing = bool(use_spacing)
        self.params = _values(
            "Resample", "params", params, (2, 3), positive=True, integer=not self.use_spacing
        )
        self.interpolation = _interpolation("Resample", interpolation)

    def apply(self, image, params: dict, label: bool = False):
        import ants

        ndim = _check_image("Resample", image)
        values = _expand("Resample", "params", self.params, ndim, ndim)
        values = tuple(values.tolist()) if self.use_spacing else tuple(int(v) for v in values)
        interp = _INTERPOLATIONS[_LABEL if label else self.interpolation][1]
        return ants.resample_image(image, values, use_voxels=not self.use_spacing, interp_type=interp)


def _crop(owner: str, image, lower, upper):
    shape, spacing, origin, direction = _geometry(image)
    lower, upper = np.asarray(lower, dtype=int), np.asarray(upper, dtype=int)
    if lower.size != shape.size:
        raise ValueError(f"{owner}: crop indices are for {lower.size} axes but the image is {shape.size}-D")
    if (lower < 0).any() or (upper > shape).any() or (upper <= lower).any():
        box = [(int(a), int(b)) for a, b in zip(lower, upper, strict=True)]
        raise ValueError(f"{owner}: crop box {box} does not fit in image shape {tuple(shape.tolist())}")
    region = tuple(slice(int(a), int(b)) for a, b in zip(lower, upper, strict=True))
    arr = image.numpy()[region]
    new_origin = origin + direction @ (spacing * lower)  # the physical point of the first kept voxel
    return _new_image(arr, image.pixeltype, spacing, new_origin, direction)


def _foreground_box(owner: str, image, margin) -> tuple[list[int], list[int]]:
    arr = image.numpy()
    nonzero = np.argwhere(arr != 0)
    if nonzero.size == 0:
        raise ValueError(f"{owner}: the image has no non-zero voxels to crop to")
    shape = np.asarray(arr.shape)
    pad = _expand(owner, "margin", margin, arr.ndim, arr.ndim).astype(int)
    lower = np.maximum(nonzero.min(axis=0) - pad, 0)
    upper = np.minimum(nonzero.max(axis=0) + 1 + pad, shape)
    return lower.tolist(), upper.tolist()


class Crop(BaseTransform):
    """Crop to ``indices`` — one ``(start, stop)`` pair of voxel indices per axis (stop exclusive) — or,
    with ``indices='foreground'`` (or ``None``), to the bounding box of the non-zero voxels grown by
    ``margin`` voxels (one for all axes or one per axis). The origin moves so that every kept voxel stays at
    the same physical point. In ``t(image, segmentation)`` the box comes from the first image."""

    def __init__(self, indices="foreground", margin=0):
        if indices is None or (isinstance(indices, str) and indices == "foreground"):
            self.indices = "foreground"
        else:
            bad = ValueError(
                f"Crop: indices must be 'foreground' or one (start, stop) pair per axis with "
                f"0 <= start < stop, got {indices!r}"
            )
            if isinstance(indices, str | bytes) or not isinstance(indices, Sequence | np.ndarray):
                raise bad
            pairs = []
            for pair in indices:
                if (
                    isinstance(pair, str | bytes)
                    or not isinstance(pair, Sequence | np.ndarray)
                    or len(pair) != 2
                ):
                    raise bad
                start, stop = pair
                if not (_is_int(start) and _is_int(stop)) or not 0 <= start < stop:
                    raise bad
                pairs.append((int(start), int(stop)))
            if len(pairs) not in (2, 3):
                raise bad
            self.indices = tuple(pairs)
        self.margin = _values("Crop", "margin", margin, (2, 3), integer=True)
        if min(np.atleast_1d(self.margin)) < 0:
            raise ValueError(f"Crop: margin must not be negative, got {margin!r}")

    def _box(self, image):
        if self.indices == "foreground":
            return _foreground_box("Crop", image, self.margin)
        return [a for a, _ in self.indices], [b for _, b in self.indices]

    def draw(self, rng: np.random.Generator, image) -> dict:
        _check_image("Crop", image)
        lower, upper = self._box(image)
        return {"lower": lower, "upper": upper}

    def apply(self, image, params: dict, label: bool = False):
        _check_image("Crop", image)
        if "lower" in params:
            lower, upper = params["lower"], params["upper"]
        else:
            lower, upper = self._box(image)
        return _crop("Crop", image, lower, upper)


class Pad(BaseTransform):
    """Pad with ``value`` (label maps with 0): ``width`` voxels on both sides of every axis, or one entry
    per axis, each an integer (both sides) or a ``(before, after)`` pair. The origin moves back along the
    image's direction so that every voxel stays at the same physical point."""

    def __init__(self, width, value: float = 0):
        bad = ValueError(
            f"Pad: width must be a non-negative integer or one per axis (an integer or a (before, after) "
            f"pair of non-negative integers), got {width!r}"
        )
        if _is_int(width):
            if width < 0:
                raise bad
            self.width = int(width)
        else:
            if isinstance(width, str | bytes) or not isinstance(width, Sequence | np.ndarray):
                raise bad
            entries = []
            for w in width:
                pair = (w, w) if _is_int(w) else w
                if (
                    isinstance(pair, str | bytes)
                    or not isinstance(pair, Sequence | np.ndarray)
                    or len(pair) != 2
                ):
                    raise bad
                if not all(_is_int(v) and v >= 0 for v in pair):
                    raise bad
                entries.append((int(pair[0]), int(pair[1])))
            if len(entries) not in (2, 3):
                raise bad
            self.width = tuple(entries)
        self.value = _number("Pad", "value", value)

    def apply(self, image, params: dict, label: bool = False):
        ndim = _check_image("Pad", image)
        if isinstance(self.width, int):
            widths = [(self.width, self.width)] * ndim
        elif len(self.width) != ndim:
            raise ValueError(f"Pad: width has {len(self.width)} entries but the image is {ndim}-D")
        else:
            widths = list(self.width)
        shape, spacing, origin, direction = _geometry(image)
        arr = np.pad(image.numpy(), widths, mode="constant", constant_values=0 if label else self.value)
        before = np.asarray([w[0] for w in widths], dtype=float)
        new_origin = origin - direction @ (spacing * before)
        return _new_image(arr, image.pixeltype, spacing, new_origin, direction)


class Slice(BaseTransform):
    """The 2-D slice ``index`` (negative counts from the end) along ``axis`` of a 3-D image
    (``ants.slice_image``). The slice keeps the spacing of the other two axes; its direction is the
    corresponding 2x2 block of the 3-D direction where that is a valid direction, else the identity."""

    def __init__(self, axis: int, index: int):
        if not _is_int(axis) or not 0 <= axis <= 2:
            raise ValueError(f"Slice: axis must be 0, 1 or 2 (a 3-D image's axis), got {axis!r}")
        if not _is_int(index):
            raise ValueError(f"Slice: index must be an integer, got {index!r}")
        self.axis, self.index = int(axis), int(index)

    def apply(self, image, params: dict, label: bool = False):
        import ants

        ndim = _check_image("Slice", image)
        if ndim != 3:
            raise ValueError(f"Slice: expected a 3-D image, got a {ndim}-D image")
        n = image.shape[self.axis]
        if not -n <= self.index < n:
            raise ValueError(f"Slice: index {self.index} is out of range for axis {self.axis} of size {n}")
        return ants.slice_image(image, self.axis, self.index % n, collapse_strategy=2)


def _flip(image, axes: Sequence[int]):
    if not axes:
        return image
    shape, spacing, origin, direction = _geometry(image)
    return _new_image(np.flip(image.numpy(), axis=tuple(axes)), image.pixeltype, spacing, origin, direction)


class Flip(BaseTransform):
    """Reverse the voxel array along ``axis`` (an axis or a list of axes); the geometry is unchanged."""

    def __init__(self, axis=0):
        self.axis = _axes("Flip", axis)

    def apply(self, image, params: dict, label: bool = False):
        ndim = _check_image("Flip", image)
        return _flip(image, _normalise_axes("Flip", self.axis, ndim))


class Reorient(BaseTransform):
    """Reorder and flip the axes of a 3-D image to ``orientation`` (e.g. 'RAS', 'LPI';
    ``ants.reorient_image2``). Exact: no interpolation."""

    def __init__(self, orientation: str = "RAS"):
        ok = isinstance(orientation, str) and len(orientation) == 3
        if ok:
            letters = orientation.upper()
            ok = all(sum(c in pair for c in letters) == 1 for pair in ("RL", "AP", "SI"))
        if not ok:
            raise ValueError(
                f"Reorient: orientation must be three letters, one of each pair R/L, A/P, S/I "
                f"(e.g. 'RAS'), got {orientation!r}"
            )
        self.orientation = letters

    def apply(self, image, params: dict, label: bool = False):
        import ants

        ndim = _check_image("Reorient", image)
        if ndim != 3:
            raise ValueError(f"Reorient: expected a 3-D image, got a {ndim}-D image")
        return ants.reorient_image2(image, self.orientation)


class Rotate(_Warp, BaseTransform):
    """Rotate about the image centre by ``angle`` degrees: a number rotates in the plane of ``axes``
    (default (0, 1), turning axis 0 towards axis 1); in 3-D ``angle`` may be three angles, one about each
    axis (see ``rotation_matrix``)."""

    def __init__(self, angle, axes=None, interpolation: str = "linear"):
        self.angle, self.axes = _rotation_args("Rotate", angle, axes)
        self.interpolation = _interpolation("Rotate", interpolation)

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        return affine_matrix(ndim, rotation=self.angle, axes=self.axes, owner="Rotate")


class Translate(_Warp, BaseTransform):
    """Move the content by ``shift`` (a number for every axis or one per axis) along the image axes, in
    mm or, with ``unit='voxel'``, in voxels."""

    def __init__(self, shift, unit: str = "mm", interpolation: str = "linear"):
        self.shift = _values("Translate", "shift", shift, (2, 3))
        self.unit = _unit("Translate", unit)
        self.interpolation = _interpolation("Translate", interpolation)

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        shift = _voxels_to_mm(image, _expand("Translate", "shift", self.shift, ndim, ndim), self.unit)
        return affine_matrix(ndim, translation=shift, owner="Translate")


class Shear(_Warp, BaseTransform):
    """Shear about the image centre. ``shear`` is a number s (axis 0 sheared along axis 1:
    x0 += s * x1) or one coefficient per off-diagonal entry (2 in 2-D, 6 in 3-D; see ``affine_matrix``)."""

    def __init__(self, shear, interpolation: str = "linear"):
        self.shear = _values("Shear", "shear", shear, (2, 6))
        self.interpolation = _interpolation("Shear", interpolation)

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        return affine_matrix(ndim, shear=self.shear, owner="Shear")


class Zoom(_Warp, BaseTransform):
    """Scale the content about the image centre by ``factor`` (> 0; one for every axis or one per axis;
    > 1 zooms in). The grid is unchanged."""

    def __init__(self, factor, interpolation: str = "linear"):
        self.factor = _values("Zoom", "factor", factor, (2, 3), positive=True)
        self.interpolation = _interpolation("Zoom", interpolation)

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        return affine_matrix(ndim, zoom=self.factor, owner="Zoom")


class Affine(_Warp, BaseTransform):
    """Move the content by a homogeneous ``matrix`` in the image's local frame (centred, along the image
    axes, in mm): 3x3 (or its top 2x3) for 2-D images, 4x4 (or 3x4) for 3-D. ``affine_matrix`` builds
    one from a rotation, translation, shear and zoom."""

    def __init__(self, matrix, interpolation: str = "linear"):
        try:
            m = np.array(matrix, dtype=float)
        except (TypeError, ValueError):
            m = None
        if m is None or m.ndim != 2 or m.shape not in ((2, 3), (3, 3), (3, 4), (4, 4)):
            shape = None if m is None else m.shape
            raise ValueError(
                f"Affine: matrix must be 3x3 or 2x3 (2-D), 4x4 or 3x4 (3-D), got shape {shape}: {matrix!r}"
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

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        if self.matrix.shape[0] != ndim + 1:
            raise ValueError(
                f"Affine: matrix is for a {self.matrix.shape[0] - 1}-D image, got a {ndim}-D image"
            )
        return self.matrix


# -- random transforms -----------------------------------------------------------------------------------


class RandomFlip(RandomTransform):
    """Flip each axis in ``axis`` independently with probability ``p`` (the voxel array is reversed, the
    geometry kept). ``p`` is per axis: unlike other random transforms it does not gate the whole call, so
    with one axis it is the usual probability of applying the transform."""

    def __init__(self, axis=0, p: float = 0.5, seed=None):
        super().__init__(p=p, seed=seed)  # validates p
        self.axis = _axes("RandomFlip", axis)
        self.flip_p, self.p = self.p, 1.0  # the base class's gate is never used: the draw is per axis

    def draw(self, rng: np.random.Generator, image) -> dict:
        ndim = _check_image("RandomFlip", image)
        axes = _normalise_axes("RandomFlip", self.axis, ndim)
        return {"axes": [a for a in axes if rng.random() < self.flip_p]}

    def apply(self, image, params: dict, label: bool = False):
        ndim = _check_image("RandomFlip", image)
        return _flip(image, _normalise_axes("RandomFlip", params["axes"], ndim))


class RandomRotate(_Warp, RandomTransform):
    """Rotate by angles (degrees) drawn uniformly from [``min_angle``, ``max_angle``]: one angle in 2-D or
    in the plane of ``axes``; otherwise, in 3-D, one angle about each axis. ``draw`` gives
    ``{'angle', 'axes'}``, which ``Rotate(angle, axes)`` reproduces."""

    def __init__(
        self,
        min_angle: float = -10.0,
        max_angle: float = 10.0,
        axes=None,
        interpolation: str = "linear",
        p: float = 1.0,
        seed=None,
    ):
        super().__init__(p=p, seed=seed)
        self.min_angle, self.max_angle = _range(
            "RandomRotate", "min_angle", min_angle, "max_angle", max_angle
        )
        self.axes = _rotation_args("RandomRotate", 0.0, axes)[1]
        self.interpolation = _interpolation("RandomRotate", interpolation)

    def draw(self, rng: np.random.Generator, image) -> dict:
        ndim = _check_image("RandomRotate", image)
        if ndim == 2 or self.axes is not None:
            return {"angle": float(rng.uniform(self.min_angle, self.max_angle)), "axes": self.axes}
        return {"angle": rng.uniform(self.min_angle, self.max_angle, size=3).tolist(), "axes": None}

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        return affine_matrix(ndim, rotation=params["angle"], axes=params["axes"], owner="RandomRotate")


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
        seed=None,
    ):
        super().__init__(p=p, seed=seed)
        self.min_shift, self.max_shift = _range(
            "RandomTranslate", "min_shift", min_shift, "max_shift", max_shift
        )
        self.unit = _unit("RandomTranslate", unit)
        self.interpolation = _interpolation("RandomTranslate", interpolation)

    def draw(self, rng: np.random.Generator, image) -> dict:
        ndim = _check_image("RandomTranslate", image)
        return {"shift": rng.uniform(self.min_shift, self.max_shift, size=ndim).tolist()}

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        shift = _voxels_to_mm(
            image, _expand("RandomTranslate", "shift", params["shift"], ndim, ndim), self.unit
        )
        return affine_matrix(ndim, translation=shift, owner="RandomTranslate")


class RandomShear(_Warp, RandomTransform):
    """Shear with every off-diagonal coefficient drawn uniformly from [``min_shear``, ``max_shear``]
    (2 in 2-D, 6 in 3-D). ``draw`` gives ``{'shear'}`` for ``Shear(shear)``."""

    def __init__(
        self,
        min_shear: float = -0.1,
        max_shear: float = 0.1,
        interpolation: str = "linear",
        p: float = 1.0,
        seed=None,
    ):
        super().__init__(p=p, seed=seed)
        self.min_shear, self.max_shear = _range("RandomShear", "min_shear", min_shear, "max_shear", max_shear)
        self.interpolation = _interpolation("RandomShear", interpolation)

    def draw(self, rng: np.random.Generator, image) -> dict:
        ndim = _check_image("RandomShear", image)
        return {"shear": rng.uniform(self.min_shear, self.max_shear, size=ndim * (ndim - 1)).tolist()}

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        return affine_matrix(ndim, shear=list(params["shear"]), owner="RandomShear")


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
        seed=None,
    ):
        super().__init__(p=p, seed=seed)
        self.min_factor, self.max_factor = _range(
            "RandomZoom", "min_factor", min_factor, "max_factor", max_factor, positive=True
        )
        self.isotropic = bool(isotropic)
        self.interpolation = _interpolation("RandomZoom", interpolation)

    def draw(self, rng: np.random.Generator, image) -> dict:
        ndim = _check_image("RandomZoom", image)
        if self.isotropic:
            return {"factor": float(rng.uniform(self.min_factor, self.max_factor))}
        return {"factor": rng.uniform(self.min_factor, self.max_factor, size=ndim).tolist()}

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        factor = params["factor"]
        return affine_matrix(ndim, zoom=factor if _is_number(factor) else list(factor), owner="RandomZoom")


def _affine_range(name: str, value, *, zoom: bool = False) -> tuple[float, float]:
    owner = "RandomAffine"
    if _is_number(value):
        r = _number(owner, name, value)
        if r < 0 or (zoom and r >= 1):
            limit = "in [0, 1)" if zoom else ">= 0"
            raise ValueError(f"{owner}: {name} as one number must be {limit}, got {value!r}")
        return (1.0 - r, 1.0 + r) if zoom else (0.0 - r, r)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray) or len(value) != 2:
        raise ValueError(f"{owner}: {name} must be a number or a (min, max) pair, got {value!r}")
    return _range(owner, f"{name} min", value[0], f"{name} max", value[1], positive=zoom)


class RandomAffine(_Warp, RandomTransform):
    """Rotation, translation, shear and zoom drawn together and applied in one resampling.

    Each range is a number r — rotation (degrees), translation (mm, or voxels with ``unit='voxel'``) and
    shear: uniform in [-r, r]; zoom: uniform in [1 - r, 1 + r] — or a ``(min, max)`` pair. Rotation draws
    one angle in 2-D and one per axis in 3-D, translation and zoom one per axis (zoom one for all axes with
    ``isotropic_zoom=True``), shear one per off-diagonal coefficient. ``draw`` gives ``{'rotation',
    'translation', 'shear', 'zoom'}``; ``affine_matrix(ndim, **params)`` (translation in mm) is the matrix
    that ``Affine`` would apply.
    """

    def __init__(
        self,
        rotation=0.0,
        translation=0.0,
        shear=0.0,
        zoom=0.0,
        unit: str = "mm",
        isotropic_zoom: bool = False,
        interpolation: str = "linear",
        p: float = 1.0,
        seed=None,
    ):
        super().__init__(p=p, seed=seed)
        self.rotation = _affine_range("rotation", rotation)
        self.translation = _affine_range("translation", translation)
        self.shear = _affine_range("shear", shear)
        self.zoom = _affine_range("zoom", zoom, zoom=True)
        self.unit = _unit("RandomAffine", unit)
        self.isotropic_zoom = bool(isotropic_zoom)
        self.interpolation = _interpolation("RandomAffine", interpolation)

    def draw(self, rng: np.random.Generator, image) -> dict:
        ndim = _check_image("RandomAffine", image)
        rotation = rng.uniform(*self.rotation, size=1 if ndim == 2 else 3).tolist()
        zoom = rng.uniform(*self.zoom, size=1 if self.isotropic_zoom else ndim).tolist()
        return {
            "rotation": rotation[0] if ndim == 2 else rotation,
            "translation": rng.uniform(*self.translation, size=ndim).tolist(),
            "shear": rng.uniform(*self.shear, size=ndim * (ndim - 1)).tolist(),
            "zoom": zoom[0] if self.isotropic_zoom else zoom,
        }

    def _matrix(self, image, params: dict, ndim: int) -> np.ndarray:
        shift = _expand("RandomAffine", "translation", params["translation"], ndim, ndim)
        return affine_matrix(
            ndim,
            rotation=params["rotation"],
            translation=_voxels_to_mm(image, shift, self.unit),
            shear=list(params["shear"]),
            zoom=params["zoom"],
            owner="RandomAffine",
        )


class RandomCrop(RandomTransform):
    """Crop a ``shape`` (one positive integer per axis, or one for all) at a uniformly random position
    where it fits. ``draw`` gives ``{'lower', 'upper'}``: ``Crop(list(zip(lower, upper)))`` reproduces it."""

    def __init__(self, shape, p: float = 1.0, seed=None):
        super().__init__(p=p, seed=seed)
        self.shape = _values("RandomCrop", "shape", shape, (2, 3), positive=True, integer=True)

    def draw(self, rng: np.random.Generator, image) -> dict:
        ndim = _check_image("RandomCrop", image)
        crop = _expand("RandomCrop", "shape", self.shape, ndim, ndim).astype(int)
        shape = np.asarray(image.shape, dtype=int)
        if (crop > shape).any():
            raise ValueError(
                f"RandomCrop: crop shape {tuple(crop.tolist())} does not fit in image shape "
                f"{tuple(shape.tolist())}"
            )
        lower = [int(rng.integers(0, n - c + 1)) for n, c in zip(shape, crop, strict=True)]
        return {"lower": lower, "upper": [a + int(c) for a, c in zip(lower, crop, strict=True)]}

    def apply(self, image, params: dict, label: bool = False):
        _check_image("RandomCrop", image)
        return _crop("RandomCrop", image, params["lower"], params["upper"])
