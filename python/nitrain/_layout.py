"""Channel layouts, in one place: what a layout is, checking a ``channels`` argument, moving a batch's channel
axis, and reading the layout a loader (or an adapter over one) serves.

A layout is ``'first'`` (``(N, C, *spatial)``, torch), ``'last'`` (``(N, *spatial, C)``, keras) or None (no
channel axis: ``(N, *spatial)``). Only numpy is imported here: loaders, adapters, explainers and trainers
all build on this module, and it on none of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

LAYOUTS = ("first", "last", None)

#: ``DatasetLoader(expand_dims=...)`` -> the layout it serves.
EXPAND_DIMS = {-1: "last", 0: "first", 1: "first", None: None}


def check_channels(owner: str, channels: Any) -> str | None:
    """An adapter's ``channels`` argument: 'first', 'last' or None."""
    if channels not in LAYOUTS:
        raise ValueError(f"{owner}: channels must be 'first', 'last' or None, got {channels!r}")
    return channels


def from_data_format(data_format: Any, default: str | None = None) -> str | None:
    """A keras ``data_format`` ('channels_first' / 'channels_last') as a layout; ``default`` otherwise."""
    return {"channels_first": "first", "channels_last": "last"}.get(data_format, default)


def layout_of(loader: Any, default: str | None = "last") -> str | None:
    """The layout ``loader`` serves: its ``channel`` (a DatasetLoader, a TorchLoader or KerasLoader), that of
    its ``dataset`` (a torch ``DataLoader`` over ``loader.to_torch()``), else ``default`` (channels-last:
    what a plain iterable of numpy batches is taken to serve)."""
    holder = loader if hasattr(loader, "channel") else getattr(loader, "dataset", None)
    return getattr(holder, "channel", default)


def first_batch(loader: Any) -> Any:
    """The first ``(x, y)`` batch of ``loader``'s next epoch, or None when it serves none: ``loader.peek()``
    when it has one (the epoch is not used up), else the first item of a fresh iteration (lists and other
    re-iterables). For shapes."""
    if hasattr(loader, "peek"):
        return loader.peek()
    for batch in loader:
        return batch
    return None


def add_channel(batch: npt.ArrayLike, where: str | None, dtype: npt.DTypeLike = None) -> np.ndarray:
    """``(N, *spatial)`` -> ``(N, 1, *spatial)`` ('first'), ``(N, *spatial, 1)`` ('last') or as it is (None),
    C-contiguous (converted to ``dtype`` when given)."""
    if where not in LAYOUTS:
        raise ValueError(f"add_channel: where must be 'first', 'last' or None, got {where!r}")
    a = np.ascontiguousarray(batch, dtype=dtype)
    if where == "first":
        return a[:, None]
    return a[..., None] if where == "last" else a


def drop_channel(batch: np.ndarray, where: str | None) -> np.ndarray:
    """The single channel of ``batch`` taken out: ``(N, 1, *spatial)`` or ``(N, *spatial, 1)`` ->
    ``(N, *spatial)`` (a view); None leaves it as it is."""
    if where == "first":
        return batch[:, 0]
    return batch[..., 0] if where == "last" else batch


def move_axis(a: np.ndarray, src: str | None, dst: str | None, batched: bool = True) -> np.ndarray:
    """One array from layout ``src`` to ``dst``: the channel axis moved, or a length-1 one added when
    ``src`` is None. ``batched``: ``a`` has a leading batch axis (else 'first' is axis 0, as in an image's
    ``(C, *spatial)``). ``dst`` None, or equal to ``src``, leaves it as it is; a moved array is a
    C-contiguous copy (what a convolution wants)."""
    if src not in LAYOUTS or dst not in LAYOUTS:
        raise ValueError(f"move_axis: layouts must be 'first', 'last' or None, got {src!r} -> {dst!r}")
    if dst is None or src == dst:
        return a
    first = 1 if batched else 0
    a = np.asarray(a)
    if src is None:
        a = np.expand_dims(a, first if dst == "first" else -1)
    else:
        a = np.moveaxis(a, -1, first) if dst == "first" else np.moveaxis(a, first, -1)
    return np.ascontiguousarray(a)


def move_channels(x: Any, y: Any, src: str | None, dst: str | None) -> tuple[Any, Any]:
    """Numpy ``(x, y)`` from channel layout ``src`` to ``dst`` (see ``move_axis``). x (an array, or a
    list/tuple of arrays for several inputs) always moves; y moves too when it has as many axes as x (image
    targets), so scalar and vector targets stay as they are. ``dst`` None, or equal to ``src``, leaves the
    batch as it is."""
    if src not in LAYOUTS or dst not in LAYOUTS:
        raise ValueError(f"move_channels: layouts must be 'first', 'last' or None, got {src!r} -> {dst!r}")
    if dst is None or src == dst:
        return x, y
    many = isinstance(x, list | tuple)
    ref_ndim = np.ndim(x[0] if many else x)
    moved = type(x)(move_axis(v, src, dst) for v in x) if many else move_axis(x, src, dst)
    if y is not None and np.ndim(y) == ref_ndim and ref_ndim >= 3:
        y = move_axis(y, src, dst)
    return moved, y
