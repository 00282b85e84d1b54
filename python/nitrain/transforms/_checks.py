"""Argument checks shared by every transform.

One policy: a value of the wrong type raises ``TypeError``, a value of the right type that is out of range
(or the wrong length) raises ``ValueError``. Every message names the transform (``owner``) and the
parameter and shows what was given: ``Rotate: angle must be a number ..., got 'x'``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, TypeGuard, overload

import numpy as np

from nitrain._images import is_image as is_image  # the one image test (defined where any module can use it)

# name -> (ANTs transformImage interpolator, ants.resample_image interp_type)
INTERPOLATIONS = {
    "linear": ("linear", 0),
    "nearestneighbor": ("nearestneighbor", 1),
    "gaussian": ("gaussian", 2),
    "lanczoswindowedsinc": ("lanczoswindowedsinc", 3),
    "bspline": ("bspline", 4),
}
_INTERPOLATION_ALIASES = {
    "nearest": "nearestneighbor",
    "nearest_neighbor": "nearestneighbor",
    "sinc": "lanczoswindowedsinc",
}
#: the interpolation of label maps
LABEL = "nearestneighbor"


# -- kinds of values -------------------------------------------------------------------------------------


def is_number(value) -> bool:
    """A real number (numpy scalars included), not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def is_int(value: object) -> TypeGuard[int | np.integer]:
    """An integer (numpy integers included), not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_sequence(value) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes)


# -- numbers ---------------------------------------------------------------------------------------------


@overload
def number(
    owner: str,
    name: str,
    value: object,
    *,
    positive: bool = ...,
    optional: Literal[False] = ...,
    allow_inf: bool = ...,
    allow_nan: bool = ...,
) -> float: ...
@overload
def number(
    owner: str,
    name: str,
    value: object,
    *,
    positive: bool = ...,
    optional: bool,
    allow_inf: bool = ...,
    allow_nan: bool = ...,
) -> float | None: ...
def number(
    owner: str,
    name: str,
    value: Any,
    *,
    positive: bool = False,
    optional: bool = False,
    allow_inf: bool = False,
    allow_nan: bool = False,
) -> float | None:
    """A real number as a float: finite unless ``allow_inf`` / ``allow_nan``, > 0 with ``positive``, or
    ``None`` with ``optional``."""
    if value is None and optional:
        return None
    if not is_number(value):
        kind = "a number or None" if optional else "a number"
        raise TypeError(f"{owner}: {name} must be {kind}, got {value!r}")
    if math.isnan(value) and not allow_nan:
        raise ValueError(
            f"{owner}: {name} must not be NaN"
            if allow_inf
            else f"{owner}: {name} must be finite, got {value!r}"
        )
    if math.isinf(value) and not allow_inf:
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{owner}: {name} must be positive, got {value!r}")
    return float(value)


def integer(owner: str, name: str, value, minimum: int | None = None) -> int:
    """An integer, ``>= minimum`` when given."""
    what = "an integer" if minimum is None else f"an integer >= {minimum}"
    if not is_int(value):
        raise TypeError(f"{owner}: {name} must be {what}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
    return int(value)


def probability(owner: str, name: str, value) -> float:
    """A probability in [0, 1]."""
    if not is_number(value):
        raise TypeError(f"{owner}: {name} must be a probability in [0, 1], got {value!r}")
    if not 0 <= value <= 1:
        raise ValueError(f"{owner}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def bounds(owner: str, lo_name: str, lo, hi_name: str, hi, **kinds) -> tuple:
    """Two numbers (checked as ``number(**kinds)``) with ``lo <= hi`` when both are given."""
    low = number(owner, lo_name, lo, **kinds)
    high = number(owner, hi_name, hi, **kinds)
    if low is not None and high is not None and low > high:
        raise ValueError(
            f"{owner}: {lo_name} must not exceed {hi_name}, got {lo_name}={lo!r} > {hi_name}={hi!r}"
        )
    return low, high


def span(
    owner: str, name: str, value, *, minimum: float = -math.inf, positive: bool = False
) -> tuple[float, float]:
    """A number ``x`` (meaning ``(x, x)``) or a ``(min, max)`` pair, finite, with ``minimum <= min <= max``
    (``0 < min`` with ``positive``); returns ``(min, max)`` as floats."""
    what = f"{owner}: {name} must be a number or a (min, max) pair, got {value!r}"
    if is_number(value):
        items = [value, value]
    elif _is_sequence(value) and all(is_number(v) for v in value):
        items = list(value)
    else:
        raise TypeError(what)
    if len(items) != 2:
        raise ValueError(what)
    lower = "0 <" if positive else f"{minimum} <="
    if (
        not all(math.isfinite(v) for v in items)
        or items[0] > items[1]
        or items[0] < minimum
        or (positive and items[0] <= 0)
    ):
        raise ValueError(f"{owner}: {name} must satisfy {lower} min <= max (finite), got {value!r}")
    return float(items[0]), float(items[1])


def symmetric_span(
    owner: str, name: str, value, *, centre: float = 0.0, below: float = math.inf, **kinds: Any
) -> tuple[float, float]:
    """A number ``r`` in [0, ``below``) meaning ``(centre - r, centre + r)``, or a ``(min, max)`` pair taken
    as it is (checked as ``span(**kinds)``)."""
    if not is_number(value):
        return span(owner, name, value, **kinds)
    if not (math.isfinite(value) and 0 <= value < below):
        limit = ">= 0" if below == math.inf else f"in [0, {below:g})"
        raise ValueError(
            f"{owner}: {name} must be a finite number {limit} or a (min, max) pair, got {value!r}"
        )
    return centre - float(value), centre + float(value)


def per_axis(
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
    right_type = is_int if integer else is_number

    def good(v) -> bool:
        return math.isfinite(v) and (not positive or v > 0)

    if scalar and is_number(value):
        if not right_type(value):
            raise TypeError(f"{owner}: {name} must be {what}, got {value!r}")
        if not good(value):
            raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
        return int(value) if integer else float(value)
    if not _is_sequence(value):
        raise TypeError(f"{owner}: {name} must be {what}, got {value!r}")
    items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
    if not all(right_type(v) for v in items):
        raise TypeError(f"{owner}: {name} must be {what}, got {value!r}")
    if len(items) not in lengths or not all(good(v) for v in items):
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
    return tuple(int(v) if integer else float(v) for v in items)


def int_pairs(
    owner: str, name: str, value, what: str, *, single: bool = False
) -> tuple[tuple[int, int], ...]:
    """One ``(a, b)`` pair of integers per axis (2 or 3 of them); with ``single`` an integer ``n`` may
    stand for ``(n, n)``. Types are checked here, values by the caller."""
    if not isinstance(value, list | tuple | np.ndarray):
        raise TypeError(f"{owner}: {name} must be {what}, got {value!r}")
    pairs = []
    for entry in value:
        pair = (entry, entry) if single and is_int(entry) else entry
        if not isinstance(pair, list | tuple | np.ndarray) or not all(is_int(v) for v in pair):
            raise TypeError(f"{owner}: {name} must be {what}, got {value!r}")
        if len(pair) != 2:
            raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
        pairs.append((int(pair[0]), int(pair[1])))
    if len(pairs) not in (2, 3):
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
    return tuple(pairs)


def rotation_args(owner: str, angle, axes_):
    """``Rotate``'s ``angle`` (a number, or three in 3-D) and ``axes`` (None or a pair of axes)."""
    if is_number(angle):
        angle = number(owner, "angle", angle)
    else:
        what = f"{owner}: angle must be a number or one per axis (3 values, 3-D only), got {angle!r}"
        try:
            angle = per_axis(owner, "angle", angle, (3,), scalar=False)
        except TypeError:
            raise TypeError(what) from None
        except ValueError:
            raise ValueError(what) from None
    if axes_ is not None:
        what = f"{owner}: axes must be a pair of axes such as (0, 1), got {axes_!r}"
        if not isinstance(axes_, list | tuple) or not all(is_int(a) for a in axes_):
            raise TypeError(what)
        if len(axes_) != 2:
            raise ValueError(what)
        axes_ = tuple(int(a) for a in axes_)
        if not isinstance(angle, float):
            raise ValueError(f"{owner}: axes is for a single angle, not for one angle per axis")
    return angle, axes_


def expand(owner: str, name: str, value, n: int, ndim: int) -> np.ndarray:
    """``value`` (a number or a sequence) as ``n`` numbers for a ``ndim``-D image."""
    if not isinstance(value, tuple | list | np.ndarray):
        return np.full(n, float(value))
    arr = np.asarray(value, dtype=float).ravel()
    if arr.size != n:
        raise ValueError(f"{owner}: {name} has {arr.size} values but the image is {ndim}-D (expected {n})")
    return arr


# -- names and axes --------------------------------------------------------------------------------------


def choice(owner: str, name: str, value, options: Sequence[str]) -> str:
    """One of ``options`` (strings)."""
    names = [repr(o) for o in options]
    listed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
    what = f"{owner}: {name} must be {listed}"
    if not isinstance(value, str):
        raise TypeError(f"{what}, got {value!r}")
    if value not in options:
        raise ValueError(f"{what}, got {value!r}")
    return value


def interpolation(owner: str, value) -> str:
    """An interpolation name (case-insensitive, with aliases) as a key of ``INTERPOLATIONS``."""
    what = f"{owner}: interpolation must be one of {sorted(INTERPOLATIONS)} (case-insensitive), got {value!r}"
    if not isinstance(value, str):
        raise TypeError(what)
    key = value.lower().replace(" ", "")
    key = _INTERPOLATION_ALIASES.get(key, key)
    if key not in INTERPOLATIONS:
        raise ValueError(what)
    return key


def length_unit(owner: str, value) -> str:
    """'mm' or 'voxel'."""
    return choice(owner, "unit", value, ("mm", "voxel"))


def axes(owner: str, value) -> tuple[int, ...]:
    """One axis or a non-empty sequence of distinct axes (not yet checked against an image)."""
    what = f"{owner}: axis must be an integer or a list of integers, got {value!r}"
    if is_int(value):
        return (int(value),)
    if not _is_sequence(value) or not all(is_int(v) for v in value):
        raise TypeError(what)
    if len(value) == 0:
        raise ValueError(what)
    out = tuple(int(v) for v in value)
    if len(set(out)) != len(out):
        raise ValueError(f"{owner}: axis must not repeat an axis, got {value!r}")
    return out


def normalise_axes(owner: str, axes_, ndim: int) -> tuple[int, ...]:
    """Axes (negative counting from the end) as non-negative axes of a ``ndim``-D image."""
    out = []
    for a in axes_:
        if not -ndim <= a < ndim:
            raise ValueError(f"{owner}: axis {a} is out of range for a {ndim}-D image")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{owner}: axes {tuple(axes_)} name the same axis twice")
    return tuple(out)


# -- images ----------------------------------------------------------------------------------------------


def check_images(owner: str, images: tuple) -> None:
    """At least one image, all ANTs images."""
    if not images:
        raise TypeError(f"{owner}: expected at least one image")
    for i, img in enumerate(images):
        if not is_image(img):
            raise TypeError(f"{owner}: image {i} must be an ants.ANTsImage, got {type(img).__name__}")


def check_image(owner: str, image) -> int:
    """A single-channel 2-D or 3-D image; returns its dimension."""
    ndim = int(image.dimension)
    if ndim not in (2, 3):
        raise ValueError(f"{owner}: only 2-D and 3-D images are supported, got a {ndim}-D image")
    if getattr(image, "components", 1) != 1:
        raise ValueError(f"{owner}: multi-channel images are not supported ({image.components} components)")
    return ndim
