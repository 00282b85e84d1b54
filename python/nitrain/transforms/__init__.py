"""Transforms on ANTs images: each takes ``ants.ANTsImage`` objects and returns new ones.

Import as ``from nitrain import transforms as tx``.
"""

from nitrain.transforms.artefacts import (
    BiasCorrection,
    HistogramMatch,
    RandomBiasField,
    RandomGamma,
    RandomMotion,
    Threshold,
)
from nitrain.transforms.base import BaseTransform, Compose, OneOf, RandomChoice, RandomTransform
from nitrain.transforms.elastic import ElasticDeformation, RandomElasticDeformation
from nitrain.transforms.fixed_spatial import (
    Affine,
    Crop,
    Flip,
    Pad,
    Reorient,
    Resample,
    Resize,
    Rotate,
    Shear,
    Slice,
    Translate,
    Zoom,
)
from nitrain.transforms.intensity import (
    Clip,
    NormalizeIntensity,
    QuantileClip,
    RangeNormalize,
    StandardNormalize,
)
from nitrain.transforms.random_intensity import RandomNoise, RandomSmoothing, smooth
from nitrain.transforms.random_spatial import (
    RandomAffine,
    RandomCrop,
    RandomFlip,
    RandomRotate,
    RandomShear,
    RandomTranslate,
    RandomZoom,
)
from nitrain.transforms.utility import AddChannel, Astype, CustomFunction, LabelsToChannels, NumpyFunction

__all__ = [
    "Affine",
    "Crop",
    "ElasticDeformation",
    "Flip",
    "Pad",
    "RandomAffine",
    "RandomCrop",
    "RandomElasticDeformation",
    "RandomFlip",
    "RandomRotate",
    "RandomShear",
    "RandomTranslate",
    "RandomZoom",
    "Reorient",
    "Resample",
    "Resize",
    "Rotate",
    "Shear",
    "Slice",
    "Translate",
    "Zoom",
    "AddChannel",
    "Astype",
    "BiasCorrection",
    "CustomFunction",
    "HistogramMatch",
    "LabelsToChannels",
    "NumpyFunction",
    "RandomBiasField",
    "RandomGamma",
    "RandomMotion",
    "Threshold",
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
