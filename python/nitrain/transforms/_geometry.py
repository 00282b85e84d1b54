"""Geometry of 2-D and 3-D ANTs images: affine matrices in an image's local frame, the warp that applies
them, and crops, pads and flips that keep every voxel at its physical point.

The *local frame* of an image: its origin is the centre of the image (in physical space), its axes are the
image axes (the columns of the direction matrix) and its unit is the millimetre. ``affine_matrix`` builds a
(d+1)x(d+1) matrix in that frame from a rotation, translation, shear and zoom; ``warp`` moves an image's
content by such a matrix and resamples it onto the image's own grid (voxels whose source lies outside the
image become 0). ``index_matrix`` turns the move into the map from output to input voxel indices that
``resample`` (nitrain's kernel, ITK's rules) applies; maps of consecutive warps compose by multiplication.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nitrain.transforms._checks import expand, is_number, normalise_axes


def geometry(image):
    """(shape, spacing, origin, direction) as numpy arrays."""
    return (
        np.asarray(image.shape, dtype=int),
        np.asarray(image.spacing, dtype=float),
        np.asarray(image.origin, dtype=float),
        np.asarray(image.direction, dtype=float),
    )


def centre(image) -> np.ndarray:
    """The physical point at the centre of the image's voxel grid."""
    shape, spacing, origin, direction = geometry(image)
    return origin + direction @ (spacing * (shape - 1) / 2.0)


def new_image(arr: np.ndarray, pixeltype: str, spacing, origin, direction):
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


def voxels_to_mm(image, shift: np.ndarray, unit: str) -> np.ndarray:
    """A shift along the image axes in ``unit`` ('mm' or 'voxel') as millimetres."""
    return shift * np.asarray(image.spacing, dtype=float) if unit == "voxel" else shift


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
    if is_number(angle):
        plane = (0, 1) if axes is None else tuple(axes)
        if len(plane) != 2:
            raise ValueError(f"{owner}: axes must be a pair of axes, got {axes!r}")
        a, b = normalise_axes(owner, plane, ndim)
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
        factors = expand(owner, "zoom", zoom, ndim, ndim)
        if not (np.isfinite(factors).all() and (factors > 0).all()):
            raise ValueError(f"{owner}: zoom factors must be positive, got {zoom!r}")
        lin = np.diag(factors) @ lin
    if shear is not None:
        s = np.eye(ndim)
        if is_number(shear):
            s[0, 1] = float(shear)
        else:
            coeffs = expand(owner, "shear", shear, ndim * (ndim - 1), ndim)
            s[~np.eye(ndim, dtype=bool)] = coeffs
        lin = s @ lin
    if rotation is not None:
        lin = rotation_matrix(ndim, rotation, axes, owner=owner) @ lin
    m[:ndim, :ndim] = lin
    if translation is not None:
        m[:ndim, ndim] = expand(owner, "translation", translation, ndim, ndim)
    return m


def index_matrix(owner: str, image, matrix: np.ndarray) -> np.ndarray:
    """The (d+1)x(d+1) homogeneous matrix that maps an output voxel index to the continuous input voxel
    index that ``warp`` samples when it moves ``image``'s content by ``matrix`` (local frame).

    The content moves x -> c + D L D^-1 (x - c) + D t (c the centre, D the direction, L and t the linear
    part and the translation of ``matrix``), so output point x samples the input at c + D L^-1 (D^-1 (x - c)
    - t). In voxel indices (x = origin + D S i, S the spacing, m = (shape - 1) / 2 the centre's index) the
    origin and the direction cancel: i -> m + S^-1 L^-1 (S (i - m) - t). Warps applied one after the other
    (first ``A1``, then ``A2``) sample the input at ``A1 @ A2``.
    """
    ndim = int(image.dimension)
    lin, shift = matrix[:ndim, :ndim], matrix[:ndim, ndim]
    if abs(np.linalg.det(lin)) < 1e-12:
        raise ValueError(f"{owner}: the affine matrix is singular")
    spacing = np.asarray(image.spacing, dtype=float)
    mid = (np.asarray(image.shape, dtype=float) - 1.0) / 2.0
    inv_lin = np.linalg.inv(lin)
    out = np.eye(ndim + 1)
    out[:ndim, :ndim] = (inv_lin * spacing) / spacing[:, None]  # S^-1 L^-1 S
    out[:ndim, ndim] = mid - out[:ndim, :ndim] @ mid - (inv_lin @ shift) / spacing
    return out


def warp(owner: str, image, matrix: np.ndarray, interpolation: str):
    """Resample ``image`` onto its own grid after moving its content by ``matrix`` (local frame)."""
    return resample(owner, image, index_matrix(owner, image, matrix), interpolation)


#: interpolations the Rust kernel does itself (ANTs' names -> the kernel's)
_KERNEL_INTERPOLATIONS = {"linear": "linear", "nearestneighbor": "nearest"}


def resample(owner: str, image, index: np.ndarray, interpolation: str):
    """``image`` resampled onto its own grid: output voxel i takes the input's value at the continuous voxel
    index ``index @ (i, 1)`` (``index``: a (d+1)x(d+1) matrix from ``index_matrix``), 0 outside.

    Linear and nearest-neighbour interpolation of single-channel images of ANTs' pixel types run in
    nitrain's kernel (``_core.affine_warp``), without the GIL, into a new image that shares the kernel's
    output buffer; it follows ITK's rules, so the result is what ``ants.apply_ants_transform_to_image``
    gives (to single-precision rounding of the position: ANTs' transforms are single precision). Other
    interpolations (and multi-channel images) go to ANTs.
    """
    from nitrain import _core
    from nitrain.transforms._ants import PIXEL_TYPES, empty_like_image

    ndim = int(image.dimension)
    kind = _KERNEL_INTERPOLATIONS.get(interpolation)
    if kind is not None and getattr(image, "components", 1) == 1:
        arr = image.view()
        if arr.dtype in PIXEL_TYPES:
            out, buf = empty_like_image(image, arr.dtype)
            _core.affine_warp(arr, buf, np.ascontiguousarray(index[:ndim], dtype=np.float64), kind)
            return out
    return _ants_resample(image, index, interpolation)


def _ants_resample(image, index: np.ndarray, interpolation: str):
    """``resample`` by ``ants.apply_ants_transform_to_image``: the index map as ITK's physical-point map
    (output point -> input point), centred on the image centre."""
    import ants

    shape, spacing, origin, direction = geometry(image)
    ndim = shape.size
    to_point = direction * spacing  # D S: voxel index -> physical offset from the origin
    to_index = np.linalg.inv(to_point)
    lin, shift = index[:ndim, :ndim], index[:ndim, ndim]
    c = centre(image)
    # T(x) = origin + D S (A (D S)^-1 (x - origin) + a): T(c) - c is the translation about the centre
    moved = origin + to_point @ (lin @ (to_index @ (c - origin)) + shift)
    tx = ants.create_ants_transform(
        transform_type="AffineTransform",
        dimension=ndim,
        matrix=to_point @ lin @ to_index,
        center=c.tolist(),
        translation=(moved - c).tolist(),
    )
    return ants.apply_ants_transform_to_image(tx, image, image, interpolation=interpolation)


# -- crop, pad, flip -------------------------------------------------------------------------------------


def crop(owner: str, image, lower, upper):
    """The voxels ``lower <= index < upper``, the origin moved so that each stays at its physical point."""
    shape, spacing, origin, direction = geometry(image)
    lower, upper = np.asarray(lower, dtype=int), np.asarray(upper, dtype=int)
    if lower.size != shape.size:
        raise ValueError(f"{owner}: crop indices are for {lower.size} axes but the image is {shape.size}-D")
    if (lower < 0).any() or (upper > shape).any() or (upper <= lower).any():
        box = [(int(a), int(b)) for a, b in zip(lower, upper, strict=True)]
        raise ValueError(f"{owner}: crop box {box} does not fit in image shape {tuple(shape.tolist())}")
    region = tuple(slice(int(a), int(b)) for a, b in zip(lower, upper, strict=True))
    arr = image.numpy()[region]
    new_origin = origin + direction @ (spacing * lower)  # the physical point of the first kept voxel
    return new_image(arr, image.pixeltype, spacing, new_origin, direction)


def foreground_box(owner: str, image, margin) -> tuple[list[int], list[int]]:
    """(lower, upper) of the non-zero voxels' bounding box grown by ``margin`` voxels, within the image."""
    arr = image.numpy()
    nonzero = np.argwhere(arr != 0)
    if nonzero.size == 0:
        raise ValueError(f"{owner}: the image has no non-zero voxels to crop to")
    shape = np.asarray(arr.shape)
    pad_ = expand(owner, "margin", margin, arr.ndim, arr.ndim).astype(int)
    lower = np.maximum(nonzero.min(axis=0) - pad_, 0)
    upper = np.minimum(nonzero.max(axis=0) + 1 + pad_, shape)
    return lower.tolist(), upper.tolist()


def pad(image, widths: Sequence[tuple[int, int]], value: float):
    """Pad with ``value``, ``(before, after)`` voxels per axis, the origin moved back along the direction."""
    shape, spacing, origin, direction = geometry(image)
    arr = np.pad(image.numpy(), widths, mode="constant", constant_values=value)
    before = np.asarray([w[0] for w in widths], dtype=float)
    new_origin = origin - direction @ (spacing * before)
    return new_image(arr, image.pixeltype, spacing, new_origin, direction)


def flip(image, axes: Sequence[int]):
    """The voxel array reversed along ``axes`` (the image itself when there are none); geometry kept."""
    if not axes:
        return image
    shape, spacing, origin, direction = geometry(image)
    return new_image(np.flip(image.numpy(), axis=tuple(axes)), image.pixeltype, spacing, origin, direction)
