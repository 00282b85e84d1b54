"""Transforms on ANTs images: each takes an ``ants.ANTsImage`` and returns a new one of the same geometry."""

from nitrain.transforms.base import BaseTransform
from nitrain.transforms.intensity import NormalizeIntensity, RangeNormalize, StandardNormalize

__all__ = ["BaseTransform", "NormalizeIntensity", "RangeNormalize", "StandardNormalize"]
