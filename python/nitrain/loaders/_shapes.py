"""The shape of a record after transforms whose effect on shapes is known, worked out without running
them (what ``len(loader)`` counts items from)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: a transform's output shape depends on its random draws
VARIES = object()


def _keeps_shape(t: Any) -> bool:
    """``t.keeps_shape``, trusted for library classes and for a class that defines ``apply`` and declares
    ``keeps_shape`` itself (a user subclass that overrides ``apply`` may change shapes)."""
    cls = type(t)
    if not getattr(cls, "keeps_shape", False):
        return False
    owner = next((c for c in cls.__mro__ if "apply" in vars(c)), None)
    return owner is None or owner.__module__.startswith("nitrain.") or "keeps_shape" in vars(owner)


def shape_effect(t: Any, shape: tuple[int, ...]) -> Any:  # a shape, VARIES or None
    """The shape of an image of ``shape`` after transform ``t``: a tuple, ``VARIES`` when it depends on
    ``t``'s random draws, or None when ``t``'s effect on shapes is not known (then it has to be run). Known:
    transforms that declare ``keeps_shape`` (intensity, noise, artefacts, flips, affine and elastic warps,
    type casts), ``Resize``, ``RandomCrop``, and ``Compose`` / ``RandomChoice`` of known ones."""
    from nitrain.transforms._checks import expand
    from nitrain.transforms.base import Compose, RandomChoice, takes_rng
    from nitrain.transforms.fixed_spatial import Resize
    from nitrain.transforms.random_spatial import RandomCrop

    if type(t) is Compose:
        for member in t.transforms:
            shape = shape_effect(member, shape)
            if shape is None or shape is VARIES:
                return shape
        return shape
    if type(t) is RandomChoice:
        outs = [shape_effect(member, shape) for member in t.transforms]
        if any(o is None for o in outs):
            return None
        return outs[0] if all(o == outs[0] for o in outs) else VARIES
    if not takes_rng(t):
        return None  # a user transform with its own __call__
    if _keeps_shape(t):
        return shape
    if type(t) in (Resize, RandomCrop):
        try:
            out = tuple(int(v) for v in expand("", "shape", t.shape, len(shape), len(shape)))
        except (ValueError, TypeError):
            return None
        if type(t) is Resize or out == shape:
            return out
        if any(o > d for o, d in zip(out, shape, strict=True)):
            return None  # running it raises its own error
        return out if t.p == 1 else VARIES
    return None


def shape_through(transforms: Sequence[Any], shape: tuple[int, ...], varies: list) -> tuple[int, ...] | None:
    """``shape`` after ``transforms`` by their known effects, or None when one is not known or varies
    (those are appended to ``varies``)."""
    for t in transforms:
        out = shape_effect(t, tuple(shape))
        if out is VARIES:
            varies.append(t)
            return None
        if out is None:
            return None
        shape = out
    return tuple(shape)
