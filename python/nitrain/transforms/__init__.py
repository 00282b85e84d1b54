"""Transforms on ANTs images: each takes ``ants.ANTsImage`` objects and returns new ones.

Import as ``from nitrain import transforms as tx``.
"""

from nitrain.transforms.base import BaseTransform, Compose, OneOf, RandomChoice, RandomTransform
from nitrain.transforms.intensity import (
    Clip,
    NormalizeIntensity,
    QuantileClip,
    RangeNormalize,
    StandardNormalize,
)
from nitrain.transforms.random_intensity import RandomNoise, RandomSmoothing, smooth

__all__ = [
    "BaseTransform",
    "Clip",
    "QuantileClip",
    "RandomNoise",
    "RandomSmoothing",
    "smooth",
    "Compose",
    "NormalizeIntensity",
    "OneOf",
    "RandomChoice",
    "RandomTransform",
    "RangeNormalize",
    "StandardNormalize",
]
