"""Samplers: turn an image-batch into sub-batches of slices, blocks or patches.

Here the slice samplers (``SliceSampler``, ``SlicePatchSampler``); ``BaseSampler`` (what every sampler is,
see its module ``nitrain.samplers.base``) and the block samplers (``BlockSampler``, ``PatchSampler``,
``LabelSampler``, in ``nitrain.samplers.blocks``) are re-exported, so every sampler can be imported from
this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nitrain.samplers._extract import (
    _size,
    extract_slice_patches,
    extract_slices,
    grid_origins,
    random_origins,
)
from nitrain.samplers.base import BaseSampler as BaseSampler
from nitrain.samplers.base import Channel, _fit_size, _grid_count, _positive
from nitrain.samplers.blocks import BlockSampler as BlockSampler
from nitrain.samplers.blocks import LabelSampler as LabelSampler
from nitrain.samplers.blocks import PatchSampler as PatchSampler


class SliceSampler(BaseSampler):
    """Every slice along ``axis`` of every image in the image-batch, served ``sub_batch_size`` at a time
    (shuffled across the image-batch with ``shuffle=True``). Scalar targets repeat per slice; image targets
    are sliced exactly like x. Images are 3-D (2-D ones give 1-D rows)."""

    def __init__(
        self,
        sub_batch_size: int = 32,
        axis: int = 2,
        shuffle: bool = False,
        slices: tuple[int, int] | None = None,
    ) -> None:
        self.sub_batch_size = _positive("SliceSampler", "sub_batch_size", sub_batch_size)
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise ValueError(f"SliceSampler: axis must be an integer, got {axis!r}")
        self.axis = int(axis)
        self.shuffle = bool(shuffle)
        if slices is not None:
            try:
                start, stop = (int(v) for v in slices)
            except (TypeError, ValueError):
                raise ValueError(
                    f"SliceSampler: slices must be a (start, stop) pair, got {slices!r}"
                ) from None
            if not 0 <= start < stop:
                raise ValueError(f"SliceSampler: slices must satisfy 0 <= start < stop, got {slices!r}")
            slices = (start, stop)
        self.slices = slices

    def check_shape(self, shape: tuple[int, ...], where: str = "an image") -> None:
        shape = tuple(shape)
        ndim = len(shape)
        if ndim not in (2, 3):
            raise ValueError(
                f"SliceSampler: {where} has shape {shape} ({ndim}-D); SliceSampler needs 3-D images "
                "(or 2-D ones, sliced into rows)"
            )
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"SliceSampler: axis {self.axis} is out of range for {where}, of shape {shape} ({ndim}-D)"
            )
        n = shape[self.axis % ndim]
        if self.slices is not None and self.slices[1] > n:
            raise ValueError(
                f"SliceSampler: slices {self.slices} exceed the {n} slices along axis {self.axis} of "
                f"{where}, of shape {shape}"
            )

    def check_shapes(self, shapes: Sequence[tuple[int, ...]], names: Sequence[str] | None = None) -> None:
        """As ``BaseSampler.check_shapes``, and the slices of an image-batch's images must have one shape
        (they share one sub-batch array)."""
        names = names or [f"image {r} of the image-batch" for r in range(len(shapes))]
        super().check_shapes(shapes, names)
        a = self.axis % len(shapes[0])
        plane = [tuple(d for k, d in enumerate(s) if k != a) for s in shapes]
        for p, s, name in zip(plane[1:], shapes[1:], names[1:], strict=True):
            if p != plane[0]:
                raise ValueError(
                    f"SliceSampler: {name} has shape {tuple(s)} but {names[0]} has shape {tuple(shapes[0])}: "
                    f"their slices along axis {self.axis} differ ({p} vs {plane[0]}), so they cannot share a "
                    "sub-batch (use batch_size=1, or resize them with a fixed transform such as tx.Resize)"
                )

    def slice_range(self, shape: tuple[int, ...], where: str = "an image") -> range:
        """The slice indices served for an image of ``shape`` (all, or the ``slices`` window)."""
        self.check_shape(shape, where)
        n = shape[self.axis % len(shape)]
        return range(n) if self.slices is None else range(*self.slices)

    def items(self, shapes: Sequence[tuple[int, ...]], rng: np.random.Generator) -> np.ndarray:
        return np.array([(r, k) for r, s in enumerate(shapes) for k in self.slice_range(s)], dtype=np.int64)

    def n_items(self, shape: tuple[int, ...]) -> int:
        return len(self.slice_range(shape))

    def corners(self, table: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, int | None]:
        ndim = len(shapes[0])
        a = self.axis % ndim
        origins = np.zeros((len(table), ndim), np.int64)
        origins[:, a] = table[:, 1]
        return origins, a

    def gather(self, images: list[Any], table: np.ndarray, channel: Channel) -> Any:
        return extract_slices(images, table, self.axis, channel=channel)


class SlicePatchSampler(BaseSampler):
    """2-D patches of ``patch_size`` from the slices along ``axis`` of 3-D images: a grid over every slice
    (``stride``), or ``n_patches`` random (slice, position) pairs per image."""

    def __init__(
        self,
        patch_size: int | Sequence[int],
        axis: int = 2,
        stride: int | Sequence[int] | None = None,
        n_patches: int | None = None,
        sub_batch_size: int = 32,
        shuffle: bool = False,
    ) -> None:
        if stride is not None and n_patches is not None:
            raise ValueError("SlicePatchSampler: give stride (a grid) or n_patches (random), not both")
        self.patch_size = patch_size
        self.axis = int(axis)
        self.stride = stride
        self.n_patches = None if n_patches is None else _positive("SlicePatchSampler", "n_patches", n_patches)
        self.sub_batch_size = _positive("SlicePatchSampler", "sub_batch_size", sub_batch_size)
        self.shuffle = bool(shuffle)

    def _plane(self, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        a = self.axis % 3
        return a, tuple(d for i, d in enumerate(shape) if i != a)

    def check_shape(self, shape: tuple[int, ...], where: str = "an image") -> None:
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(
                f"SlicePatchSampler: {where} has shape {shape} ({len(shape)}-D); SlicePatchSampler needs "
                "3-D images"
            )
        _, plane = self._plane(shape)
        _fit_size(
            "SlicePatchSampler", "patch_size", self.patch_size, plane,
            f"the slices along axis {self.axis} of {where} (shape {shape})",
        )  # fmt: skip

    def items(self, shapes: Sequence[tuple[int, ...]], rng: np.random.Generator) -> np.ndarray:
        rows = []
        for r, s in enumerate(shapes):
            a, plane = self._plane(s)
            if self.n_patches is None:
                o = grid_origins(plane, self.patch_size, self.stride)
                k = np.repeat(np.arange(s[a]), len(o))
                o = np.tile(o, (s[a], 1))
            else:
                o = random_origins(plane, self.patch_size, self.n_patches, rng)
                k = rng.integers(0, s[a], self.n_patches)
            rows.append(np.column_stack([np.full(len(o), r), k, o]))
        return np.concatenate(rows).astype(np.int64)

    def n_items(self, shape: tuple[int, ...]) -> int:
        self.check_shape(shape)
        if self.n_patches is not None:
            return self.n_patches
        a, plane = self._plane(tuple(shape))
        return shape[a] * _grid_count(plane, _size(self.patch_size, 2, "SlicePatchSampler"), self.stride)

    def gather(self, images: list[Any], table: np.ndarray, channel: Channel) -> Any:
        return extract_slice_patches(images, table, self.axis, self.patch_size, channel=channel)

    def corners(self, table: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, int | None]:
        a = self.axis % 3
        return np.insert(table[:, 2:], a, table[:, 1], axis=1), a
