"""Loaders serve a dataset as batches (or a sampler's sub-batches) of float32 arrays."""

from nitrain._batch import Batch
from nitrain.loaders.loader import DatasetLoader

__all__ = ["Batch", "DatasetLoader"]
