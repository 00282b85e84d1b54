"""TorchIO and MONAI versions of the training-pipeline benchmark's epoch. ``nitrain.benchmarks.pipeline``
says how each is set up and where they differ from nitrain; each ``*_epoch`` returns a function that runs
one epoch and returns ``count_items``' (items served, first batch shape)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nitrain.benchmarks._timing import count_items

Epoch = Callable[[], tuple[int, tuple[int, ...]]]


@dataclass(frozen=True)
class Augment:
    """The random augmentation every library applies: per axis, rotation in [-rotation_deg, rotation_deg]
    degrees, zoom in [1 - zoom, 1 + zoom], translation in [-translation_mm, translation_mm] mm (linear
    interpolation, zero padding); then Gaussian noise of sd ``noise_sd``."""

    rotation_deg: float
    translation_mm: float
    zoom: float
    noise_sd: float


def torchio_epoch(
    paths: Sequence[Path],
    ages: Sequence[float],
    patch: tuple[int, int, int],
    per_volume: int,
    batch: int,
    spacing_mm: float,
    aug: Augment,
    mix_subjects: int = 4,
) -> Epoch:
    """A Queue of ``per_volume`` uniformly placed ``patch``es per subject, ``mix_subjects`` subjects' worth
    at a time, loaded by as many worker processes as CPUs; served in batches of ``batch``."""
    import torchio as tio

    transform = tio.Compose(
        [
            tio.RescaleIntensity(out_min_max=(0, 1)),
            tio.RandomAffine(
                scales=(1 - aug.zoom, 1 + aug.zoom),
                degrees=aug.rotation_deg,
                translation=aug.translation_mm,
                default_pad_value=0,
                image_interpolation="linear",
            ),
            tio.RandomNoise(std=(aug.noise_sd, aug.noise_sd)),  # a single d draws the sd from U(0, d)
        ]
    )
    subjects = [tio.Subject(image=tio.ScalarImage(p), age=a) for p, a in zip(paths, ages, strict=True)]
    queue = tio.Queue(
        tio.SubjectsDataset(subjects, transform=transform),
        max_length=mix_subjects * per_volume,
        samples_per_volume=per_volume,
        sampler=tio.UniformSampler(patch),
        num_workers=os.cpu_count() or 1,
        verbose=False,
    )
    loader = tio.SubjectsLoader(queue, batch_size=batch, num_workers=0)
    return lambda: count_items(loader, lambda b: b["image"][tio.DATA].shape)


def monai_epoch(
    paths: Sequence[Path],
    ages: Sequence[float],
    patch: tuple[int, int, int],
    per_volume: int,
    batch: int,
    spacing_mm: float,
    aug: Augment,
) -> Epoch:
    """A Dataset of dicts whose transforms end in ``per_volume`` random crops of ``patch``; a DataLoader with
    as many worker processes as CPUs serves one volume's crops at a time, split into batches of ``batch``."""
    import torch
    from monai.data import DataLoader, Dataset
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        LoadImaged,
        RandAffined,
        RandGaussianNoised,
        RandSpatialCropSamplesd,
        ScaleIntensityd,
    )

    tf = Compose(
        [
            LoadImaged(keys="image"),
            EnsureChannelFirstd(keys="image"),
            ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
            RandAffined(
                keys="image",
                prob=1.0,
                rotate_range=(math.radians(aug.rotation_deg),) * 3,
                scale_range=(aug.zoom,) * 3,
                translate_range=(aug.translation_mm / spacing_mm,) * 3,  # MONAI shifts in voxels
                mode="bilinear",
                padding_mode="zeros",
            ),
            # sample_std=False: the default draws the sd from U(0, std)
            RandGaussianNoised(keys="image", prob=1.0, std=aug.noise_sd, sample_std=False),
            RandSpatialCropSamplesd(keys="image", roi_size=patch, num_samples=per_volume, random_size=False),
        ]
    ).set_random_state(seed=0)
    data = [{"image": str(p), "age": a} for p, a in zip(paths, ages, strict=True)]
    loader = DataLoader(Dataset(data, tf), batch_size=1, shuffle=True, num_workers=os.cpu_count() or 1)

    def batches():
        for b in loader:
            yield from torch.split(b["image"], batch)

    return lambda: count_items(batches(), lambda b: b.shape)


PEERS: tuple[tuple[str, Callable[..., Epoch]], ...] = (("TorchIO", torchio_epoch), ("MONAI", monai_epoch))
