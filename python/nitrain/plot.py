"""Quick-look figures of ANTs images: a grid of slices, and a map overlaid on an anatomical image.

Needs matplotlib (``pip install nitrain[plot]``). Figures are drawn on matplotlib's Agg canvas without
touching pyplot's global state, so they work headless and inside notebooks alike.

Slices are shown in voxel order with the first remaining array axis horizontal and the second vertical,
origin at the lower left (the image's voxel array transposed, ``origin='lower'``); the pixel aspect ratio
follows the image's spacing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import numpy as np

from nitrain._images import is_image


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "nitrain.plot needs matplotlib: install it with `pip install nitrain[plot]`"
        ) from err
    return Figure, FigureCanvasAgg


def _as_array(image, name: str) -> tuple[np.ndarray, tuple[float, ...]]:
    """The pixel array (float64) and spacing of an ANTs image or a numpy array (spacing 1)."""
    if isinstance(image, np.ndarray):
        arr, spacing = image, (1.0,) * image.ndim
    elif is_image(image):
        if getattr(image, "components", 1) != 1:
            raise ValueError(f"{name} has {image.components} components; only scalar images can be shown")
        arr, spacing = image.numpy(), tuple(float(s) for s in image.spacing)
    else:
        raise TypeError(f"{name} must be an ants.ANTsImage or a numpy array, got {type(image).__name__}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2-D or 3-D, got shape {arr.shape}")
    return np.asarray(arr, dtype=np.float64), spacing


def _check_axis(axis) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or not -3 <= axis <= 2:
        raise ValueError(f"axis must be 0, 1 or 2 (or -3..-1), got {axis!r}")
    return int(axis) % 3


def _slice(arr: np.ndarray, spacing, axis: int, index: int) -> tuple[np.ndarray, float]:
    """The 2-D slice to draw (already transposed for ``imshow(origin='lower')``) and its pixel aspect."""
    if arr.ndim == 2:
        plane, (sh, sv) = arr, spacing
    else:
        keep = [a for a in range(3) if a != axis]
        plane = np.take(arr, index, axis=axis)
        sh, sv = spacing[keep[0]], spacing[keep[1]]
    return plane.T, sv / sh


def _limits(values: np.ndarray, low: float = 0.0, high: float = 100.0) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [low, high]))
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _save(fig, path) -> None:
    if path is not None:
        fig.savefig(os.fspath(path), format="png", dpi=100)


def grid(images, path=None, ncols=None, slice_index=None, axis=2, titles=None, cmap="gray"):
    """Draw one slice of each image in a grid and return the matplotlib ``Figure``.

    ``images``: ANTs images (or numpy arrays), 2-D ones shown whole; for 3-D ones the slice ``slice_index``
    along ``axis`` (default the middle slice of each image). ``ncols`` defaults to a near-square grid.
    ``titles``: one per image. With ``path``, the figure is also written there as a PNG.
    """
    Figure, FigureCanvasAgg = _matplotlib()
    if isinstance(images, np.ndarray) or is_image(images):
        images = [images]
    images = list(images)
    if not images:
        raise ValueError("grid: expected at least one image, got an empty list")
    axis = _check_axis(axis)
    arrays = [_as_array(img, f"grid: images[{i}]") for i, img in enumerate(images)]
    n = len(arrays)
    if ncols is None:
        ncols = math.ceil(math.sqrt(n))
    if isinstance(ncols, bool) or not isinstance(ncols, int | np.integer) or ncols < 1:
        raise ValueError(f"grid: ncols must be a positive integer, got {ncols!r}")
    ncols = min(int(ncols), n)
    nrows = math.ceil(n / ncols)
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != n:
            raise ValueError(f"grid: got {len(titles)} titles for {n} images")
    if slice_index is not None and (
        isinstance(slice_index, bool) or not isinstance(slice_index, int | np.integer)
    ):
        raise TypeError(f"grid: slice_index must be an integer or None, got {slice_index!r}")

    fig = Figure(figsize=(3.0 * ncols, 3.0 * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, (arr, spacing) in enumerate(arrays):
        index = 0
        if arr.ndim == 3:
            size = arr.shape[axis]
            index = size // 2 if slice_index is None else int(slice_index)
            if not -size <= index < size:
                raise IndexError(
                    f"grid: slice_index {slice_index} is out of range for images[{i}] "
                    f"({size} slices along axis {axis})"
                )
            index %= size
        plane, aspect = _slice(arr, spacing, axis, index)
        vmin, vmax = _limits(plane)
        ax = axes[i]
        ax.imshow(
            plane, origin="lower", cmap=cmap, aspect=aspect, vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    for ax in axes[n:]:
        fig.delaxes(ax)
    fig.tight_layout()
    _save(fig, path)
    return fig


def _slice_strength(ov: np.ndarray, axis: int) -> np.ndarray:
    """The total |map| of each slice along ``axis`` (NaN and infinite voxels count 0)."""
    other = tuple(a for a in range(ov.ndim) if a != axis)
    return np.where(np.isfinite(ov), np.abs(ov), 0.0).sum(axis=other)


def _strongest_slices(ov: np.ndarray, axis: int, n_slices: int) -> list[int]:
    """Up to ``n_slices`` slice indices along ``axis`` where the map is strongest, in increasing order.

    Slices are taken by their total |map|, strongest first, each at least ``size // (2 * n_slices)``
    slices (and at least 1) from those already taken, so a strong region does not fill every panel with
    neighbouring slices; when that spacing leaves too few, the strongest remaining slices fill in. Slices
    where the map is zero are not taken, unless it is zero everywhere: then ``n_slices`` evenly spaced
    slices over the whole axis.
    """
    size = ov.shape[axis]
    n_slices = min(n_slices, size)
    strength = _slice_strength(ov, axis)
    if not strength.any():
        if n_slices == 1:
            return [(size - 1) // 2]
        return [int(math.floor(x + 0.5)) for x in np.linspace(0, size - 1, n_slices)]
    gap = max(1, size // (2 * n_slices))
    order = [int(k) for k in np.argsort(-strength, kind="stable") if strength[k] > 0]
    n_slices = min(n_slices, len(order))
    chosen: list[int] = []
    for k in order:
        if len(chosen) < n_slices and all(abs(k - c) >= gap for c in chosen):
            chosen.append(k)
    for k in order:
        if len(chosen) < n_slices and k not in chosen:
            chosen.append(k)
    return sorted(chosen)


def _check_slices(slices, size: int, axis: int) -> list[int]:
    """``slices`` (one index or a list of them, negative ones from the end) as indices in ``[0, size)``."""
    if isinstance(slices, int | np.integer) and not isinstance(slices, bool):
        slices = [slices]
    if isinstance(slices, str | bytes) or not isinstance(slices, Iterable):
        raise TypeError(f"overlay: slices must be a list of slice indices, got {slices!r}")
    indices = list(slices)
    if not indices:
        raise ValueError("overlay: slices must name at least one slice, got an empty list")
    out = []
    for k in indices:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"overlay: slices must be integers, got {k!r} in {slices!r}")
        if not -size <= k < size:
            raise IndexError(f"overlay: slice {k} is out of range ({size} slices along axis {axis})")
        out.append(int(k) % size)
    return out


def overlay(image, overlay, path=None, axis=2, n_slices=9, cmap="hot", alpha=0.5, colorbar=True, slices=None):
    """Draw ``overlay`` (e.g. a saliency map) over ``image`` (grey) on a grid of slices and return the
    matplotlib ``Figure``.

    Both must have the same shape. For 3-D images, the slices along ``axis`` (0, 1 or 2) are ``slices``
    (a list of indices, negative ones counting from the end), or by default the ``n_slices`` slices where
    the overlay is strongest (the largest total |overlay|, kept apart so that one region does not fill
    every panel; fewer when fewer slices hold any of the overlay), shown in increasing order and titled
    ``slice <index>``; a 2-D image is one panel.
    Overlay voxels that are 0 or NaN are transparent; the colour scale (shared by all panels, with a colour
    bar unless ``colorbar=False``) spans the overlay's other values. With ``path``, the figure is also
    written there as a PNG.
    """
    Figure, FigureCanvasAgg = _matplotlib()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    anat, spacing = _as_array(image, "overlay: image")
    ov, _ = _as_array(overlay, "overlay: overlay")
    if anat.shape != ov.shape:
        raise ValueError(f"overlay: image shape {anat.shape} and overlay shape {ov.shape} differ")
    axis = _check_axis(axis)
    if isinstance(n_slices, bool) or not isinstance(n_slices, int | np.integer) or n_slices < 1:
        raise ValueError(f"overlay: n_slices must be a positive integer, got {n_slices!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise ValueError(f"overlay: alpha must be in [0, 1], got {alpha!r}")

    if anat.ndim == 2:
        if slices is not None:
            raise ValueError(f"overlay: slices= applies to 3-D images; this one is 2-D, shape {anat.shape}")
        indices = [0]
    elif slices is not None:
        indices = _check_slices(slices, anat.shape[axis], axis)
    else:
        indices = _strongest_slices(ov, axis, int(n_slices))
    n = len(indices)
    ncols = math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    shown = np.isfinite(ov) & (ov != 0)
    a_lo, a_hi = _limits(anat, 0.5, 99.5)
    o_lo, o_hi = _limits(ov[shown]) if shown.any() else (0.0, 1.0)
    norm = Normalize(vmin=o_lo, vmax=o_hi)
    masked = np.ma.masked_where(~shown, ov)

    fig = Figure(figsize=(3.0 * ncols + (1.0 if colorbar else 0.0), 3.0 * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, index in zip(axes, indices, strict=False):
        plane, aspect = _slice(anat, spacing, axis, index)
        over, _ = _slice(masked, spacing, axis, index)
        ax.imshow(plane, origin="lower", cmap="gray", aspect=aspect, vmin=a_lo, vmax=a_hi)
        ax.imshow(
            over, origin="lower", cmap=cmap, norm=norm, alpha=alpha, aspect=aspect, interpolation="nearest"
        )
        ax.set_axis_off()
        if anat.ndim == 3:
            ax.set_title(f"slice {index}", fontsize=8)
    for ax in axes[n:]:
        fig.delaxes(ax)
    if colorbar:
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes[:n]), shrink=0.8)
    _save(fig, path)
    return fig
