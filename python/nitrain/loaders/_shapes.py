"""The shape of a record after transforms whose effect on shapes is known, worked out without running
them (what ``len(loader)`` counts items from)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: a transform's output shape depends on its random draws
VARIES = object()


def shape_effect(t: Any, shape: tuple[int, ...]) -> Any:  # a shape, VARIES or None
    """The shape of an image of ``shape`` after transform ``t``: a tuple, ``VARIES`` when it depends on
    ``t``'s random draws, or None when ``t``'s effect on shapes is not known (then it has to be run). Known:
    the library's intensity, noise, artefact, flip, affine-warp and type transforms (shape kept),
    ``Resize``, ``RandomCrop``, and ``Compose`` / ``RandomChoice`` of known ones."""
    from nitrain.transforms import artefacts, random_intensity, spatial, utility
    from nitrain.transforms.base import Compose, RandomChoice, takes_rng
    from nitrain.transforms.intensity import IntensityTransform

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
    keep = (
        random_intensity.RandomNoise,
        random_intensity.RandomSmoothing,
        artefacts.RandomGamma,
        artefacts.RandomBiasField,
        artefacts.RandomMotion,
        spatial.Flip,
        spatial.RandomFlip,
        utility.Astype,
    )
    if type(t) in keep or isinstance(t, IntensityTransform):
        return shape
    if isinstance(t, spatial._Warp) and type(t).apply is spatial._Warp.apply:
        return shape  # resampled onto the image's own grid
    if type(t) in (spatial.Resize, spatial.RandomCrop):
        try:
            out = tuple(int(v) for v in spatial._expand("", "shape", t.shape, len(shape), len(shape)))
        except (ValueError, TypeError):
            return None
        if type(t) is spatial.Resize or out == shape:
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
