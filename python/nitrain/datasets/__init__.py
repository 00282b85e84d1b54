"""Datasets: where images and labels come from, read lazily and joined by participant id."""

from nitrain.datasets._tables import decode_classes
from nitrain.datasets.base import BaseDataset
from nitrain.datasets.bids import BIDSDataset
from nitrain.datasets.folder import CSVDataset, FolderDataset, MemoryDataset
from nitrain.datasets.phantom import LABELS, make_phantom, make_phantom_cohort, phantom_arrays

__all__ = [
    "LABELS",
    "BIDSDataset",
    "BaseDataset",
    "CSVDataset",
    "FolderDataset",
    "MemoryDataset",
    "decode_classes",
    "make_phantom",
    "make_phantom_cohort",
    "phantom_arrays",
]
