"""Intensity transforms, computed by the Rust kernels straight into a new ANTs image's buffer.

NaN voxels are ignored by the statistics and stay NaN. A constant image (no spread) maps to the target's
lower bound (``RangeNormalize``) or to the target mean (``NormalizeIntensity``): nothing is divided by zero.
"""

from __future__ import annotations

import math

import numpy as np

from nitrain import _core
from nitrain._typing import Image
from nitrain.samplers._extract import image_array
from nitrain.transforms._ants import empty_like_image
from nitrain.transforms._checks import bounds, number
from nitrain.transforms.base import BaseTransform


def _apply(image: Image, src: np.ndarray, scale: float, offset: float) -> Image:
    """``src * scale + offset`` into a new image with ``image``'s geometry (``src`` is its pixel array)."""
    out, buf = empty_like_image(image)
    _core.rescale(src, buf, scale, offset)
    return out


class IntensityTransform(BaseTransform):
    """An intensity transform: label maps pass through unchanged."""

    keeps_shape = True

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        return image if label else self._apply(image, params)

    def _apply(self, image: Image, params: dict) -> Image:
        raise NotImplementedError


class RangeNormalize(IntensityTransform):
    """Linearly map the image's [min, max] onto [``min``, ``max``] (default [0, 1])."""

    def __init__(self, min: float = 0, max: float = 1) -> None:  # noqa: A002 - the seed's parameter names
        self.min, self.max = bounds("RangeNormalize", "min", min, "max", max)

    def _apply(self, image: Image, params: dict) -> Image:
        src = image_array(image, "RangeNormalize: image")
        lo, hi = _core.intensity_range(src)
        if math.isnan(lo) or hi == lo:
            return _apply(image, src, 0.0, self.min)
        scale = (self.max - self.min) / (hi - lo)
        return _apply(image, src, scale, self.min - lo * scale)


class NormalizeIntensity(IntensityTransform):
    """Z-score the image, then give it mean ``mean`` and standard deviation ``sd`` (population sd)."""

    def __init__(self, mean: float = 0, sd: float = 1) -> None:
        self.mean = number("NormalizeIntensity", "mean", mean)
        self.sd = number("NormalizeIntensity", "sd", sd)
        if self.sd < 0:
            raise ValueError(f"NormalizeIntensity: sd must be >= 0, got {sd!r}")

    def _apply(self, image: Image, params: dict) -> Image:
        src = image_array(image, "NormalizeIntensity: image")
        _, _, mu, sigma, count = _core.intensity_stats(src)
        if count == 0 or sigma == 0:
            return _apply(image, src, 0.0, self.mean)
        scale = self.sd / sigma
        return _apply(image, src, scale, self.mean - mu * scale)


class StandardNormalize(NormalizeIntensity):
    """Z-score to mean 0, sd 1."""

    def __init__(self) -> None:
        super().__init__(0, 1)


class Clip(IntensityTransform):
    """Limit intensities to [``low``, ``high``] (either may be ``None`` for no bound). NaN stays NaN."""

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        self.low, self.high = bounds("Clip", "low", low, "high", high, optional=True)

    def _apply(self, image: Image, params: dict) -> Image:
        src = image_array(image, "Clip: image")
        out, buf = empty_like_image(image)
        lo = -math.inf if self.low is None else self.low
        hi = math.inf if self.high is None else self.high
        _core.clip(src, buf, lo, hi)
        return out


class QuantileClip(IntensityTransform):
    """Limit intensities to the image's own [``lower``, ``upper``] quantiles (default 1% and 99%),
    computed exactly over the non-NaN voxels (numpy's 'linear' method)."""

    def __init__(self, lower: float = 0.01, upper: float = 0.99) -> None:
        self.lower = number("QuantileClip", "lower", lower)
        self.upper = number("QuantileClip", "upper", upper)
        if not 0 <= self.lower <= self.upper <= 1:
            raise ValueError(
                f"QuantileClip: expected 0 <= lower <= upper <= 1, got lower={lower!r}, upper={upper!r}"
            )

    def _apply(self, image: Image, params: dict) -> Image:
        src = image_array(image, "QuantileClip: image")
        lo, hi = _core.quantiles(src, [self.lower, self.upper])
        out, buf = empty_like_image(image)
        if math.isnan(lo):  # every voxel is NaN
            buf[...] = src
        else:
            _core.clip(src, buf, lo, hi)
        return out
