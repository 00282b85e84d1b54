"""Private wrappers over the Rust sampling kernels.

Every function reads images in place (an ANTs ``image.view()`` is a Fortran-ordered view; C order,
transposed and negative-stride views work the same) and writes one preallocated batch. No per-slice Python
objects, no contiguous copies of the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from nitrain import _core
from nitrain._images import is_image
from nitrain._typing import Image

#: an image, or several: ANTs images or numpy arrays
Images = Image | np.ndarray | Sequence[Image | np.ndarray]
#: a size: one length for every axis, or one per axis
Size = int | np.integer[Any] | Sequence[int | np.integer[Any]]

Channel = Literal["first", "last"] | None

_DTYPES = {
    np.dtype(t) for t in (np.float32, np.float64, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32)
}
_OUT_DTYPES = {np.dtype(np.float32), np.dtype(np.float64)}


def image_array(image: Image | np.ndarray, name: str = "image") -> np.ndarray:
    """The pixel array of an ANTs image (a zero-copy view) or a numpy array, unchanged."""
    if isinstance(image, np.ndarray):
        arr = image
    elif is_image(image):
        arr = image.view()
    else:
        raise TypeError(f"{name}: expected an ANTsImage or a numpy array, got {type(image).__name__}")
    if arr.dtype not in _DTYPES:
        raise TypeError(
            f"{name} has dtype {arr.dtype}; expected one of " + ", ".join(sorted(str(d) for d in _DTYPES))
        )
    return arr


def _arrays(images: Images, op: str) -> list[np.ndarray]:
    if isinstance(images, np.ndarray) or is_image(images):
        images = [images]
    if not isinstance(images, Sequence) or len(images) == 0:
        raise ValueError(f"{op}: expected a non-empty list of images, got {images!r:.80}")
    arrays = [image_array(img, f"{op}: images[{i}]") for i, img in enumerate(images)]
    ndims = {a.ndim for a in arrays}
    if not ndims <= {2, 3}:
        bad = next(i for i, a in enumerate(arrays) if a.ndim not in (2, 3))
        raise ValueError(f"{op}: images[{bad}] must be 2-D or 3-D, got shape {arrays[bad].shape}")
    return arrays


def _table(table: npt.ArrayLike, cols: int, op: str, name: str, what: str) -> np.ndarray:
    arr = np.asarray(table)
    if arr.size == 0:
        raise ValueError(f"{op}: {name} is empty; expected at least one row of {what}")
    if arr.ndim == 1 and arr.shape[0] == cols:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != cols:
        raise ValueError(f"{op}: {name} must have shape (N, {cols}) as rows of {what}, got {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _batch(
    shape: tuple[int, ...], dtype: npt.DTypeLike, channel: Channel, out: np.ndarray | None, op: str
) -> tuple[np.ndarray, np.ndarray]:
    """Allocate (or check) the batch array; return it and the channel-free view the kernel writes."""
    dtype = np.dtype(dtype)
    if dtype not in _OUT_DTYPES:
        raise TypeError(f"{op}: dtype must be float32 or float64, got {dtype}")
    if channel is None:
        full = shape
    elif channel == "last":
        full = (*shape, 1)
    elif channel == "first":
        full = (shape[0], 1, *shape[1:])
    else:
        raise ValueError(f"{op}: channel must be None, 'first' or 'last', got {channel!r}")
    if out is None:
        out = _core.empty_array(list(full), dtype.name, False)  # a recycled buffer when one is free
    elif out.shape != full:
        raise ValueError(f"{op}: out has shape {out.shape}, expected {full}")
    if channel == "last":
        return out, out[..., 0]
    if channel == "first":
        return out, out[:, 0]
    return out, out


def _plane(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return tuple(d for a, d in enumerate(shape) if a != axis)


def extract_slices(
    images: Images,
    index: npt.ArrayLike,
    axis: int,
    *,
    channel: Channel = None,
    dtype: npt.DTypeLike = np.float32,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gather slices ``index[n] = (image, slice)`` along ``axis`` into a ``(N, H, W)`` batch.

    ``channel`` adds a length-1 channel axis first (``(N, 1, H, W)``) or last (``(N, H, W, 1)``).
    """
    arrays = _arrays(images, "slices")
    ndim = arrays[0].ndim
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or not -ndim <= axis < ndim:
        raise ValueError(f"slices: axis must be an integer in [{-ndim}, {ndim - 1}], got {axis!r}")
    axis = int(axis) % ndim
    table = _table(index, 2, "slices", "index", "(image index, slice index)")
    batch, view = _batch((len(table), *_plane(arrays[0].shape, axis)), dtype, channel, out, "slices")
    _core.gather_slices(arrays, table, axis, view)
    return batch


def extract_blocks(
    images: Images,
    origins: npt.ArrayLike,
    size: Size,
    *,
    channel: Channel = None,
    dtype: npt.DTypeLike = np.float32,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gather blocks (3-D images) or patches (2-D images) of ``size`` at ``origins[n] = (image, *corner)``."""
    arrays = _arrays(images, "blocks")
    ndim = arrays[0].ndim
    size = _size(size, ndim, "blocks")
    table = _table(origins, ndim + 1, "blocks", "origins", f"(image index, {ndim} corner coordinates)")
    batch, view = _batch((len(table), *size), dtype, channel, out, "blocks")
    _core.gather_blocks(arrays, table, list(size), view)
    return batch


def extract_slice_patches(
    images: Images,
    origins: npt.ArrayLike,
    axis: int,
    size: Size,
    *,
    channel: Channel = None,
    dtype: npt.DTypeLike = np.float32,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gather 2-D patches of ``size`` from slices of 3-D images.

    ``origins[n] = (image, slice index, corner_0, corner_1)``, the corner in the slice's plane.
    """
    arrays = _arrays(images, "slice patches")
    if arrays[0].ndim != 3:
        raise ValueError(f"slice patches: images must be 3-D, got shape {arrays[0].shape}")
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or not -3 <= axis < 3:
        raise ValueError(f"slice patches: axis must be an integer in [-3, 2], got {axis!r}")
    axis = int(axis) % 3
    size = _size(size, 2, "slice patches")
    table = _table(origins, 4, "slice patches", "origins", "(image index, slice index, corner_0, corner_1)")
    # A patch of a slice is a 3-D block of length 1 along the slice axis.
    block = list(size)
    block.insert(axis, 1)
    corners = np.insert(table[:, 2:], axis, table[:, 1], axis=1)
    table3 = np.ascontiguousarray(np.column_stack([table[:, 0], corners]))
    batch, view = _batch((len(table), *size), dtype, channel, out, "slice patches")
    _core.gather_blocks(arrays, table3, block, np.expand_dims(view, axis + 1))
    return batch


def _size(size: Size, ndim: int, op: str) -> tuple[int, ...]:
    if isinstance(size, int | np.integer):
        size = (int(size),) * ndim
    size = tuple(size)
    if len(size) != ndim or not all(isinstance(s, int | np.integer) and s > 0 for s in size):
        raise ValueError(f"{op}: size must be {ndim} positive integers, got {size!r}")
    return tuple(int(s) for s in size)


def _fit(shape: Sequence[int], size: Size, op: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = tuple(int(d) for d in shape)
    size = _size(size, len(shape), op)
    if any(s > d for s, d in zip(size, shape, strict=True)):
        raise ValueError(f"{op}: size {size} does not fit in image shape {shape}")
    return shape, size


def grid_positions(d: int, s: int, step: int) -> np.ndarray:
    """Starts of blocks of length ``s`` along an axis of length ``d``: every ``step`` from 0, plus one
    flush with the far end when those leave voxels uncovered, so the blocks cover the whole axis."""
    starts = np.arange(0, d - s + 1, step, dtype=np.int64)
    if starts[-1] + s < d:
        starts = np.append(starts, d - s)
    return starts


def grid_origins(shape: Sequence[int], size: Size, stride: Size | None = None) -> np.ndarray:
    """Corners of the blocks of ``size`` on a grid with step ``stride`` (default: ``size``, no overlap;
    1: every position). On each axis the last block is flush with the far border (overlapping its
    neighbour) when the steps would leave the end out, so a grid with ``stride <= size`` covers every
    voxel. Rows in C order (last axis fastest),
    shape ``(M, len(shape))``."""
    shape, size = _fit(shape, size, "grid origins")
    stride = size if stride is None else _size(stride, len(shape), "grid origins (stride)")
    axes = [grid_positions(d, s, st) for d, s, st in zip(shape, size, stride, strict=True)]
    grid = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1).astype(np.int64)


def random_origins(
    shape: Sequence[int], size: Size, n: int, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """``n`` corners drawn uniformly among all positions where a block of ``size`` fits, from ``rng``
    (a ``numpy.random.Generator`` or a seed). Shape ``(n, len(shape))``."""
    shape, size = _fit(shape, size, "random origins")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"random origins: n must be a positive integer, got {n!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    high = np.array([d - s + 1 for d, s in zip(shape, size, strict=True)])
    return rng.integers(0, high, size=(int(n), len(shape)), dtype=np.int64)
