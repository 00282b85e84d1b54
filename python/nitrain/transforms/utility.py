"""Utility transforms: pixel types, channel axes, one-hot label maps and user functions.

``Astype``, ``CustomFunction`` and ``NumpyFunction`` return ANTs images and can sit anywhere in a pipeline.
``AddChannel`` and ``LabelsToChannels`` return **numpy arrays** (an ANTs image cannot hold a channel axis
next to its spatial axes), so they end the ANTs part of a pipeline and must come last.

None of these transforms is intensity-only: in a co-transform ``t(image, segmentation)`` they are applied to
every image, label maps included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nitrain._typing import Image
from nitrain.transforms._ants import empty_like_image
from nitrain.transforms._checks import integer, is_image
from nitrain.transforms.base import BaseTransform

# user-facing name -> (ANTs pixel type, numpy dtype)
_PIXEL_TYPES: dict[str, tuple[str, Any]] = {
    "float32": ("float", np.float32),
    "float64": ("double", np.float64),
    "uint8": ("unsigned char", np.uint8),
    "uint32": ("unsigned int", np.uint32),
}
_ALIASES = {"float": "float32", "double": "float64", "unsigned char": "uint8", "unsigned int": "uint32"}


def _fn_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


class Astype(BaseTransform):
    """Convert the image to another pixel type: ``'float32'``, ``'float64'``, ``'uint8'`` or ``'uint32'``
    (the ANTs names ``'float'``, ``'double'``, ``'unsigned char'``, ``'unsigned int'`` and numpy dtypes are
    accepted too).

    For the integer types, values are rounded to the nearest integer and clipped to the type's range
    (NaN becomes 0) before the cast, instead of wrapping around as a plain C cast would. Applied to every
    image of a co-transform, label maps included.
    """

    keeps_shape = True

    def __init__(self, dtype: Any) -> None:
        key = dtype
        if key is not None and not isinstance(key, str):  # np.dtype(None) would be float64
            try:
                key = np.dtype(dtype).name
            except TypeError:
                key = None
        key = _ALIASES.get(key, key)
        if key not in _PIXEL_TYPES:
            raise ValueError(
                f"Astype: dtype must be one of {sorted(_PIXEL_TYPES)} (or an ANTs pixel type name), "
                f"got {dtype!r}"
            )
        self.dtype = key

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        pixeltype, np_dtype = _PIXEL_TYPES[self.dtype]
        if image.pixeltype == pixeltype:
            return image.clone()
        if np.issubdtype(np_dtype, np.integer) and not np.issubdtype(image.view().dtype, np.integer):
            work = image.clone("double")
            arr = work.view()
            info = np.iinfo(np_dtype)
            np.nan_to_num(arr, copy=False, nan=0.0)
            np.rint(arr, out=arr)
            np.clip(arr, info.min, info.max, out=arr)
            return work.clone(pixeltype)
        if np.issubdtype(np_dtype, np.integer):
            arr = image.view()
            info = np.iinfo(np_dtype)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                work = image.clone("double")
                np.clip(work.view(), info.min, info.max, out=work.view())
                return work.clone(pixeltype)
        return image.clone(pixeltype)


class AddChannel(BaseTransform):
    """Add a channel axis of length 1 at ``axis`` (default last), returning a **float32 numpy array**.

    ANTs images cannot hold a channel axis, so this transform ends the ANTs part of a pipeline: it must come
    last (a transform after it would receive a numpy array). Label maps get the channel axis too.
    """

    def __init__(self, axis: int = -1) -> None:
        self.axis = integer("AddChannel", "axis", axis)

    def apply(self, image: Image, params: dict, label: bool = False) -> np.ndarray:
        arr = np.asarray(image.numpy(), dtype=np.float32)
        if not -arr.ndim - 1 <= self.axis <= arr.ndim:
            raise ValueError(
                f"AddChannel: axis={self.axis} is out of range for a {arr.ndim}-D image "
                f"(valid: {-arr.ndim - 1} to {arr.ndim})"
            )
        return np.expand_dims(arr, self.axis)


class LabelsToChannels(BaseTransform):
    """One-hot encode a label map into a **float32 numpy array** of shape ``image.shape + (n_labels,)``
    (channels last), channel ``k`` being 1 where the image equals the ``k``-th label.

    ``labels``: the label values to encode, in any order (channels follow their sorted order). ``None``
    takes the distinct values present in each image, which must then be integers. The background (0) gets
    a channel only with ``keep_background=True`` (it is then added if ``labels`` does not list it); voxels
    whose value is not encoded are 0 in every channel, so the channels sum to 1 only when every value is
    encoded. Returns numpy, so it must be the last transform; it is applied to every image given.
    """

    def __init__(self, labels: Sequence[int] | None = None, keep_background: bool = False) -> None:
        self.keep_background = bool(keep_background)
        if labels is None:
            self.labels = None
            return
        try:
            values = np.asarray(list(labels), dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"LabelsToChannels: labels must be a sequence of numbers, got {labels!r}"
            ) from None
        if values.ndim != 1 or not np.isfinite(values).all():
            raise ValueError(f"LabelsToChannels: labels must be finite numbers, got {labels!r}")
        if len(np.unique(values)) != len(values):
            raise ValueError(f"LabelsToChannels: labels contains duplicates: {labels!r}")
        if self.keep_background and 0 not in values:
            values = np.append(values, 0.0)
        if not self.keep_background:
            values = values[values != 0]
        if values.size == 0:
            raise ValueError(f"LabelsToChannels: no label to encode (labels={labels!r})")
        values = np.sort(values)
        self.labels = [int(v) if float(v).is_integer() else float(v) for v in values]

    def _labels_of(self, arr: np.ndarray) -> np.ndarray:
        if self.labels is not None:
            return np.asarray(self.labels, dtype=np.float64)
        values = np.unique(arr)
        values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
        if values.dtype.kind == "f" and not np.all(values == np.round(values)):
            raise ValueError(
                "LabelsToChannels: the image has non-integer values, so it does not look like a label map; "
                "pass labels=[...] explicitly"
            )
        if not self.keep_background:
            values = values[values != 0]
        return values.astype(np.float64)

    def apply(self, image: Image, params: dict, label: bool = False) -> np.ndarray:
        arr = image.numpy()
        values = self._labels_of(arr)
        out = np.zeros(arr.shape + (len(values),), dtype=np.float32)
        for k, v in enumerate(values):
            out[..., k] = arr == v
        return out


class _FunctionTransform(BaseTransform):
    """What ``CustomFunction`` and ``NumpyFunction`` share: the function, its keyword arguments and a cache
    key that is the same in every process."""

    def __init__(self, fn: Callable[..., Any], cache_key: str | None = None, **kwargs: Any) -> None:
        name = type(self).__name__
        if not callable(fn):
            raise TypeError(f"{name}: fn must be callable, got {fn!r}")
        if cache_key is not None and (not isinstance(cache_key, str) or not cache_key):
            raise TypeError(f"{name}: cache_key must be a non-empty string or None, got {cache_key!r}")
        self.fn = fn
        self.kwargs = kwargs
        self._cache_key = cache_key

    def cache_key(self) -> str:
        """What dataset caches key this transform by: ``cache_key`` when given, else the function's module,
        qualified name and a hash of its code, defaults, closure values and the globals it reads (see
        ``nitrain.transforms._keys``); plus the keyword arguments. A function or argument without a stable
        key (e.g. one that reads a global model object) gets a key private to this transform and process:
        cached entries are then not shared with other processes (pass ``cache_key`` to share them)."""
        from nitrain.transforms._keys import Unkeyable, callable_key, process_local_key, value_key

        try:
            fn = repr(self._cache_key) if self._cache_key is not None else callable_key(self.fn)
            return f"fn={fn}, kwargs={value_key(self.kwargs)}"
        except Unkeyable:
            return process_local_key(self)

    def __repr__(self) -> str:
        shown = f"fn={_fn_name(self.fn)}"
        if self.kwargs:
            shown += ", " + ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        if self._cache_key is not None:
            shown += f", cache_key={self._cache_key!r}"
        return f"{type(self).__name__}({shown})"


class CustomFunction(_FunctionTransform):
    """Apply ``fn(image, **kwargs)``, which must return an ``ants.ANTsImage`` (a ``TypeError`` names ``fn``
    otherwise). Applied to every image of a co-transform, label maps included.

    ``cache_key``: a name for what ``fn`` computes, for dataset caches; change it when ``fn`` changes.
    Without it the key is made from ``fn``'s code and the values it uses (see ``cache_key()``).
    """

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        out = self.fn(image, **self.kwargs)
        if not is_image(out):
            raise TypeError(
                f"CustomFunction: {_fn_name(self.fn)} must return an ants.ANTsImage, got {type(out).__name__}"
            )
        return out


class NumpyFunction(_FunctionTransform):
    """Apply ``fn(array, **kwargs)`` to a copy of the image's pixel array and wrap the result, which must
    have the same shape, in a new image with the input's spacing, origin and direction.

    Results of dtype float32, float64 or uint8 keep it (bool becomes uint8); any other dtype becomes
    float32. Applied to every image of a co-transform, label maps included.

    ``cache_key``: a name for what ``fn`` computes, for dataset caches; change it when ``fn`` changes.
    Without it the key is made from ``fn``'s code and the values it uses (see ``cache_key()``).
    """

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        src = image.numpy()
        result = self.fn(src, **self.kwargs)
        if not isinstance(result, np.ndarray | np.generic):
            raise TypeError(
                f"NumpyFunction: {_fn_name(self.fn)} must return a numpy array, got {type(result).__name__}"
            )
        result = np.asarray(result)
        if result.shape != src.shape:
            raise ValueError(
                f"NumpyFunction: {_fn_name(self.fn)} changed the shape from {src.shape} to {result.shape}; "
                "it must return an array of the image's shape"
            )
        dtype: np.dtype | type[np.generic]
        if result.dtype == np.bool_:
            dtype = np.uint8
        elif result.dtype in (np.float32, np.float64, np.uint8):
            dtype = result.dtype
        else:
            dtype = np.float32
        out, buf = empty_like_image(image, dtype=dtype)
        buf[...] = result
        return out
