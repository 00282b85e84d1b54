"""Transforms on ANTs images: each takes ``ants.ANTsImage`` objects and returns new ones.

Import as ``from nitrain import transforms as tx``.
"""

from nitrain.transforms.base import BaseTransform, Compose, OneOf, RandomChoice, RandomTransform
from nitrain.transforms.intensity import NormalizeIntensity, RangeNormalize, StandardNormalize

__all__ = [
    "BaseTransform",
    "Compose",
    "NormalizeIntensity",
    "OneOf",
    "RandomChoice",
    "RandomTransform",
    "RangeNormalize",
    "StandardNormalize",
]
