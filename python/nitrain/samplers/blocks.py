"""Samplers of blocks (3-D) and patches (2-D) of whole images: on a grid or at random positions
(``BlockSampler``, ``PatchSampler``), or centred on chosen labels of the targets (``LabelSampler``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from nitrain._batch import Batch
from nitrain._images import is_image
from nitrain.samplers._extract import _size, extract_blocks, grid_origins, image_array, random_origins
from nitrain.samplers.base import BaseSampler, Channel, _fit_size, _grid_count, _positive


class BlockSampler(BaseSampler):
    """Blocks of ``block_size`` from 3-D images (or patches from 2-D images): every position of a grid
    with step ``stride`` (default: the block size), or ``n_blocks`` random positions per image. A
    ``block_size`` with one value per axis fixes the images' dimensions; a number takes 3-D or 2-D images
    (all the images of an image-batch alike)."""

    _name = "BlockSampler"
    _ndims: tuple[int, ...] = (3, 2)
    _size_name = "block_size"

    def __init__(
        self,
        block_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        n_blocks: int | None = None,
        sub_batch_size: int = 32,
        shuffle: bool = False,
    ) -> None:
        owner = self._name
        if stride is not None and n_blocks is not None:
            raise ValueError(f"{owner}: give stride (a grid) or n_blocks (random positions), not both")
        self.block_size = block_size
        self.stride = stride
        self.n_blocks = None if n_blocks is None else _positive(owner, "n_blocks", n_blocks)
        self.sub_batch_size = _positive(owner, "sub_batch_size", sub_batch_size)
        self.shuffle = bool(shuffle)

    def _needs(self) -> tuple[int, ...]:
        """The image dimensions this sampler serves."""
        if isinstance(self.block_size, int | np.integer):
            return self._ndims
        n = len(np.atleast_1d(self.block_size))
        return (n,) if n in self._ndims else self._ndims

    def check_shape(self, shape: tuple[int, ...], where: str = "an image") -> None:
        shape = tuple(shape)
        needs = self._needs()
        if len(shape) not in needs:
            want = " or ".join(f"{n}-D" for n in needs)
            raise ValueError(
                f"{self._name}: {where} has shape {shape} ({len(shape)}-D); {self._name}"
                f"({self._size_name}={self.block_size!r}) needs {want} images"
            )
        _fit_size(self._name, self._size_name, self.block_size, shape, where)

    def _origins(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        if self.n_blocks is None:
            return grid_origins(shape, self.block_size, self.stride)
        return random_origins(shape, self.block_size, self.n_blocks, rng)

    def items(self, shapes: Sequence[tuple[int, ...]], rng: np.random.Generator) -> np.ndarray:
        rows = [
            np.column_stack([np.full(len(o), r), o])
            for r, s in enumerate(shapes)
            for o in [self._origins(s, rng)]
        ]
        return np.concatenate(rows).astype(np.int64)

    def n_items(self, shape: tuple[int, ...]) -> int:
        self.check_shape(shape)
        if self.n_blocks is not None:
            return self.n_blocks
        return _grid_count(tuple(shape), _size(self.block_size, len(shape), self._name), self.stride)

    def gather(self, images: list[Any], table: np.ndarray, channel: Channel) -> Any:
        return extract_blocks(images, table, self.block_size, channel=channel)


class PatchSampler(BlockSampler):
    """2-D patches of ``patch_size`` from 2-D images (grid with ``stride``, or ``n_patches`` at random)."""

    _name = "PatchSampler"
    _ndims = (2,)
    _size_name = "patch_size"

    def __init__(
        self,
        patch_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        n_patches: int | None = None,
        sub_batch_size: int = 32,
        shuffle: bool = False,
    ) -> None:
        super().__init__(patch_size, stride, n_patches, sub_batch_size, shuffle)


class LabelSampler(BaseSampler):
    """Blocks (3-D) or patches (2-D) of ``block_size`` centred on voxels of chosen labels of the target
    label map, for segmentation: per image, ``n_blocks`` centres, each first picking a label with
    ``label_probabilities`` (``{label: p}``; default uniform over the labels present, background 0
    excluded unless listed), then a voxel of that label uniformly. Blocks are shifted to fit inside the
    image.

    Memory stays bounded on huge label maps: only per-slab label counts are kept (one count per label per
    index of the slowest axis), and only the chosen slab is scanned for the chosen voxel.
    """

    def __init__(
        self,
        block_size: int | Sequence[int],
        n_blocks: int = 8,
        label_probabilities: dict[int, float] | None = None,
        sub_batch_size: int = 32,
        shuffle: bool = True,
    ) -> None:
        self.block_size = block_size
        self.n_blocks = _positive("LabelSampler", "n_blocks", n_blocks)
        if label_probabilities is not None:
            probs = {int(k): float(v) for k, v in dict(label_probabilities).items()}
            if not probs or any(v < 0 for v in probs.values()) or sum(probs.values()) <= 0:
                raise ValueError(
                    f"LabelSampler: label_probabilities must be non-negative with a positive sum, "
                    f"got {label_probabilities!r}"
                )
            label_probabilities = probs
        self.label_probabilities = label_probabilities
        self.sub_batch_size = _positive("LabelSampler", "sub_batch_size", sub_batch_size)
        self.shuffle = bool(shuffle)

    def check_shape(self, shape: tuple[int, ...], where: str = "an image") -> None:
        shape = tuple(shape)
        if len(shape) not in (2, 3):
            raise ValueError(
                f"LabelSampler: {where} has shape {shape} ({len(shape)}-D); LabelSampler needs 3-D (blocks) "
                "or 2-D (patches) images"
            )
        _fit_size("LabelSampler", "block_size", self.block_size, shape, where)

    def n_items(self, shape: tuple[int, ...]) -> int:
        self.check_shape(shape)
        return self.n_blocks

    def _centres(self, lab: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        slab_axis = lab.ndim - 1
        n_slabs = lab.shape[slab_axis]
        counts: dict[int, np.ndarray] = {}
        for k in range(n_slabs):
            values, c = np.unique(np.take(lab, k, axis=slab_axis), return_counts=True)
            for v, n in zip(values.astype(np.int64).tolist(), c.tolist(), strict=True):
                counts.setdefault(v, np.zeros(n_slabs, np.int64))[k] = n
        if self.label_probabilities is None:
            present = [v for v in counts if v != 0] or list(counts)
            probs = {v: 1.0 for v in present}
        else:
            probs = {v: p for v, p in self.label_probabilities.items() if v in counts and p > 0}
            if not probs:
                raise ValueError(
                    f"LabelSampler: none of the labels {sorted(self.label_probabilities)} occur in the label "
                    f"map (labels present: {sorted(counts)})"
                )
        labels = np.array(sorted(probs))
        p = np.array([probs[v] for v in labels], float)
        centres = []
        for v in rng.choice(labels, size=self.n_blocks, p=p / p.sum()):
            per_slab = counts[int(v)]
            k = int(rng.choice(n_slabs, p=per_slab / per_slab.sum()))
            idx = np.flatnonzero(np.take(lab, k, axis=slab_axis) == v)
            flat = int(idx[rng.integers(len(idx))])
            plane = np.unravel_index(flat, tuple(d for a, d in enumerate(lab.shape) if a != slab_axis))
            centres.append((*plane, k))
        return np.array(centres, np.int64)

    def items(self, shapes: Sequence[tuple[int, ...]], rng: np.random.Generator) -> np.ndarray:
        raise ValueError("LabelSampler: the targets must be label images (segmentation)")

    def _table(
        self, shapes: Sequence[tuple[int, ...]], ys: Sequence[Any], rng: np.random.Generator
    ) -> np.ndarray:
        """The blocks of an image-batch, centred by its label maps ``ys`` (passed along, not kept on the
        sampler, so concurrent calls never see each other's labels)."""
        rows = []
        for r, (shape, lab) in enumerate(zip(shapes, ys, strict=True)):
            size = np.asarray(_size(self.block_size, len(shape), "LabelSampler"))
            arr = np.asarray(image_array(lab, "LabelSampler: label map"))
            origins = np.clip(self._centres(arr, rng) - size // 2, 0, np.array(shape) - size)
            rows.append(np.column_stack([np.full(len(origins), r), origins]))
        return np.concatenate(rows).astype(np.int64)

    def gather(self, images: list[Any], table: np.ndarray, channel: Channel) -> Any:
        return extract_blocks(images, table, self.block_size, channel=channel)

    def __call__(
        self,
        xs: Sequence[Any],
        ys: Sequence[Any],
        rng: np.random.Generator,
        channel: Channel = "last",
        drop_last: bool = False,
        post: Any = None,
    ) -> Iterator[Batch]:
        if not ys or not is_image(ys[0]):
            raise ValueError("LabelSampler: the targets must be label images (segmentation)")
        yield from super().__call__(xs, ys, rng, channel, drop_last, post)
