"""Samplers: turn an image-batch into sub-batches of slices, blocks or patches.

A sampler is called with the image-batch (ANTs images; a list per record for several inputs), the targets
and a ``numpy.random.Generator``; it yields ``(x, y)`` sub-batches assembled by the Rust kernels straight
into one preallocated float32 array each.
"""

from __future__ import annotations

import numpy as np

from nitrain import _core
from nitrain.samplers._extract import (
    extract_blocks,
    extract_slice_patches,
    extract_slices,
    grid_origins,
    image_array,
    random_origins,
)


def _positive(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _is_image(v) -> bool:
    return callable(getattr(v, "view", None)) and hasattr(v, "spacing")


def _inputs(xs) -> list[list]:
    """Per input stream, the list of images (one stream unless records hold lists)."""
    if xs and isinstance(xs[0], list | tuple):
        return [list(stream) for stream in zip(*xs, strict=True)]
    return [list(xs)]


def _targets(ys, take):
    """Scalar targets repeated per item (``take`` maps item -> record); image targets go through the
    same kernel call as x (the caller handles those)."""
    return np.asarray([ys[r] for r in take], dtype=np.float32)


class BaseSampler:
    sub_batch_size: int
    shuffle: bool

    def items(self, shapes: list[tuple[int, ...]], rng: np.random.Generator) -> np.ndarray:
        """The table of items to serve (first column: record index)."""
        raise NotImplementedError

    def count(self, n_records: int, shape: tuple[int, ...]) -> int:
        """Number of items for ``n_records`` images of ``shape`` (used by ``len(loader)``)."""
        raise NotImplementedError

    def n_batches(self, n_records: int, shape: tuple[int, ...], drop_last: bool = False) -> int:
        n = self.count(n_records, shape)
        return n // self.sub_batch_size if drop_last else -(-n // self.sub_batch_size)

    def gather(self, images: list, table: np.ndarray, channel):
        raise NotImplementedError

    def corners(self, table: np.ndarray, shapes) -> tuple[np.ndarray, int | None]:
        """Each item's corner in its image, and the axis where the batch lacks a length-1 block axis
        (slices and slice patches) or ``None``."""
        return table[:, 1:], None

    def _add_noise(self, batch: np.ndarray, table, shapes, noise, channel) -> None:
        """Add deferred ``RandomNoise`` draws (per record: a list of (sd, seed)) to gathered items, exactly
        as if the noise had been added to the whole images before gathering."""
        steps = max((len(noise[r]) for r in table[:, 0]), default=0)
        if steps == 0:
            return
        view = batch[..., 0] if channel == "last" else batch[:, 0] if channel == "first" else batch
        origins, axis = self.corners(table, shapes)
        if axis is not None:
            view = np.expand_dims(view, axis + 1)
        sds = np.full((len(table), steps), np.nan)
        seeds = np.zeros((len(table), steps), np.uint64)
        for j, r in enumerate(table[:, 0]):
            for m, (sd, seed) in enumerate(noise[r]):
                sds[j, m], seeds[j, m] = sd, seed
        item_shapes = np.array([shapes[r] for r in table[:, 0]], np.int64)
        _core.add_noise_to_blocks(view, np.ascontiguousarray(origins, np.int64), item_shapes, sds, seeds)

    def __call__(self, xs, ys, rng: np.random.Generator, channel="last", drop_last: bool = False, noise=None):
        streams = _inputs(xs)
        shapes = [tuple(image_array(img).shape) for img in streams[0]]
        table = self.items(shapes, rng)
        if self.shuffle:
            table = table[rng.permutation(len(table))]
        image_y = bool(ys) and _is_image(ys[0])
        for start in range(0, len(table), self.sub_batch_size):
            part = table[start : start + self.sub_batch_size]
            if drop_last and len(part) < self.sub_batch_size:
                return
            xb = [self.gather(stream, part, channel) for stream in streams]
            if noise is not None:
                self._add_noise(xb[0], part, shapes, noise, channel)
            yb = self.gather(list(ys), part, channel) if image_y else _targets(ys, part[:, 0])
            yield (xb if len(streams) > 1 else xb[0]), yb

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class SliceSampler(BaseSampler):
    """Every slice along ``axis`` of every image in the image-batch, served ``sub_batch_size`` at a time
    (shuffled across the image-batch with ``shuffle=True``). Scalar targets repeat per slice; image targets
    are sliced exactly like x."""

    def __init__(self, sub_batch_size: int = 32, axis: int = 2, shuffle: bool = False, slices=None):
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

    def slice_range(self, shape) -> range:
        """The slice indices served for an image of ``shape`` (all, or the ``slices`` window)."""
        ndim = len(shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"SliceSampler: axis {self.axis} is out of range for {ndim}-D images")
        n = shape[self.axis % ndim]
        if self.slices is None:
            return range(n)
        if self.slices[1] > n:
            raise ValueError(
                f"SliceSampler: slices {self.slices} exceed the {n} slices of an image of shape {shape}"
            )
        return range(*self.slices)

    def items(self, shapes, rng):
        return np.array([(r, k) for r, s in enumerate(shapes) for k in self.slice_range(s)], dtype=np.int64)

    def count(self, n_records, shape):
        return n_records * len(self.slice_range(shape))

    def corners(self, table, shapes):
        ndim = len(shapes[0])
        a = self.axis % ndim
        origins = np.zeros((len(table), ndim), np.int64)
        origins[:, a] = table[:, 1]
        return origins, a

    def gather(self, images, table, channel):
        return extract_slices(images, table, self.axis, channel=channel)


class BlockSampler(BaseSampler):
    """Blocks of ``block_size`` from 3-D images (or patches from 2-D images): every position of a grid
    with step ``stride`` (default: the block size), or ``n_blocks`` random positions per image."""

    _name = "BlockSampler"

    def __init__(
        self,
        block_size,
        stride=None,
        n_blocks: int | None = None,
        sub_batch_size: int = 32,
        shuffle: bool = False,
    ):
        owner = self._name
        if stride is not None and n_blocks is not None:
            raise ValueError(f"{owner}: give stride (a grid) or n_blocks (random positions), not both")
        self.block_size = block_size
        self.stride = stride
        self.n_blocks = None if n_blocks is None else _positive(owner, "n_blocks", n_blocks)
        self.sub_batch_size = _positive(owner, "sub_batch_size", sub_batch_size)
        self.shuffle = bool(shuffle)

    def _origins(self, shape, rng):
        if self.n_blocks is None:
            return grid_origins(shape, self.block_size, self.stride)
        return random_origins(shape, self.block_size, self.n_blocks, rng)

    def items(self, shapes, rng):
        rows = [
            np.column_stack([np.full(len(o), r), o])
            for r, s in enumerate(shapes)
            for o in [self._origins(s, rng)]
        ]
        return np.concatenate(rows).astype(np.int64)

    def count(self, n_records, shape):
        if self.n_blocks is not None:
            return n_records * self.n_blocks
        return n_records * len(grid_origins(shape, self.block_size, self.stride))

    def gather(self, images, table, channel):
        return extract_blocks(images, table, self.block_size, channel=channel)


class PatchSampler(BlockSampler):
    """2-D patches of ``patch_size`` from 2-D images (grid with ``stride``, or ``n_patches`` at random)."""

    _name = "PatchSampler"

    def __init__(
        self,
        patch_size,
        stride=None,
        n_patches: int | None = None,
        sub_batch_size: int = 32,
        shuffle: bool = False,
    ):
        super().__init__(patch_size, stride, n_patches, sub_batch_size, shuffle)


class SlicePatchSampler(BaseSampler):
    """2-D patches of ``patch_size`` from the slices along ``axis`` of 3-D images: a grid over every slice
    (``stride``), or ``n_patches`` random (slice, position) pairs per image."""

    def __init__(
        self,
        patch_size,
        axis: int = 2,
        stride=None,
        n_patches: int | None = None,
        sub_batch_size: int = 32,
        shuffle: bool = False,
    ):
        if stride is not None and n_patches is not None:
            raise ValueError("SlicePatchSampler: give stride (a grid) or n_patches (random), not both")
        self.patch_size = patch_size
        self.axis = int(axis)
        self.stride = stride
        self.n_patches = None if n_patches is None else _positive("SlicePatchSampler", "n_patches", n_patches)
        self.sub_batch_size = _positive("SlicePatchSampler", "sub_batch_size", sub_batch_size)
        self.shuffle = bool(shuffle)

    def _plane(self, shape):
        a = self.axis % 3
        return a, tuple(d for i, d in enumerate(shape) if i != a)

    def items(self, shapes, rng):
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

    def count(self, n_records, shape):
        if self.n_patches is not None:
            return n_records * self.n_patches
        a, plane = self._plane(shape)
        return n_records * shape[a] * len(grid_origins(plane, self.patch_size, self.stride))

    def gather(self, images, table, channel):
        return extract_slice_patches(images, table, self.axis, self.patch_size, channel=channel)

    def corners(self, table, shapes):
        a = self.axis % 3
        return np.insert(table[:, 2:], a, table[:, 1], axis=1), a


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
        block_size,
        n_blocks: int = 8,
        label_probabilities=None,
        sub_batch_size: int = 32,
        shuffle: bool = True,
    ):
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
        self._labels = None

    def count(self, n_records, shape):
        return n_records * self.n_blocks

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

    def items(self, shapes, rng):
        if self._labels is None:
            raise ValueError("LabelSampler: the targets must be label images (segmentation)")
        rows = []
        for r, (shape, lab) in enumerate(zip(shapes, self._labels, strict=True)):
            size = np.broadcast_to(np.asarray(self.block_size), (len(shape),))
            if (size > np.array(shape)).any():
                raise ValueError(
                    f"LabelSampler: block_size {tuple(size)} does not fit in image shape {shape}"
                )
            arr = np.asarray(image_array(lab, "LabelSampler: label map"))
            origins = np.clip(self._centres(arr, rng) - size // 2, 0, np.array(shape) - size)
            rows.append(np.column_stack([np.full(len(origins), r), origins]))
        return np.concatenate(rows).astype(np.int64)

    def gather(self, images, table, channel):
        return extract_blocks(images, table, self.block_size, channel=channel)

    def __call__(self, xs, ys, rng, channel="last", drop_last: bool = False, noise=None):
        if not ys or not _is_image(ys[0]):
            raise ValueError("LabelSampler: the targets must be label images (segmentation)")
        self._labels = list(ys)
        try:
            yield from super().__call__(xs, ys, rng, channel, drop_last, noise)
        finally:
            self._labels = None
