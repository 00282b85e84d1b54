"""Samplers turn a batch of whole images into sub-batches of slices, blocks or patches.

The sub-batches are assembled by Rust kernels straight from the images' memory into one preallocated array.
"""

from nitrain.samplers._extract import grid_origins, random_origins
from nitrain.samplers.samplers import (
    BaseSampler,
    BlockSampler,
    LabelSampler,
    PatchSampler,
    SlicePatchSampler,
    SliceSampler,
)

__all__ = [
    "BaseSampler",
    "BlockSampler",
    "LabelSampler",
    "PatchSampler",
    "SlicePatchSampler",
    "SliceSampler",
    "grid_origins",
    "random_origins",
]
