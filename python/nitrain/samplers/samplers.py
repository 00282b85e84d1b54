"""Samplers: turn an image-batch into sub-batches of slices, blocks or patches.

A sampler is called with a group of records (ANTs images; a list per record for several inputs), their
targets and a ``numpy.random.Generator``; it yields sub-batches (``nitrain.loaders.Batch``: an ``(x, y)``
pair that also gives each item's record, as a position in the group, and place), assembled by the Rust
kernels straight into one preallocated float32 array each, one sub-batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from nitrain._batch import Batch
from nitrain.samplers._extract import (
    _size,
    extract_blocks,
    extract_slice_patches,
    extract_slices,
    grid_origins,
    grid_positions,
    image_array,
    random_origins,
)

#: where the channel axis of a batch goes (None: no channel axis)
Channel = Literal["first", "last"] | None


def _positive(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _is_image(v: object) -> bool:
    return callable(getattr(v, "view", None)) and hasattr(v, "spacing")


def _inputs(xs: Sequence[Any]) -> list[list]:
    """Per input stream, the list of images (one stream unless records hold lists)."""
    if xs and isinstance(xs[0], list | tuple):
        return [list(stream) for stream in zip(*xs, strict=True)]
    return [list(xs)]


def _targets(ys: Sequence[Any], take: Sequence[int] | np.ndarray) -> np.ndarray:
    """Scalar targets repeated per item (``take`` maps item -> record); image targets go through the
    same kernel call as x (the caller handles those)."""
    return np.asarray([ys[r] for r in take], dtype=np.float32)


def _grid_count(shape: tuple[int, ...], size: Sequence[int], stride: Any) -> int:
    """How many rows ``grid_origins(shape, size, stride)`` has (``size`` fits), without making them."""
    stride = size if stride is None else _size(stride, len(shape), "grid origins (stride)")
    return int(np.prod([len(grid_positions(d, s, st)) for d, s, st in zip(shape, size, stride, strict=True)]))


def _fit_size(
    owner: str, what: str, size: int | Sequence[int], shape: tuple[int, ...], where: str
) -> tuple[int, ...]:
    """``size`` (a number, or one per axis of ``shape``) as a tuple; a ValueError naming ``where`` when it
    has another number of values or does not fit in ``shape``."""
    shape = tuple(int(d) for d in shape)
    try:
        size = _size(size, len(shape), owner)
    except ValueError:
        raise ValueError(
            f"{owner}: {what} {size!r} does not match {where}, of shape {shape} ({len(shape)}-D)"
        ) from None
    if any(s > d for s, d in zip(size, shape, strict=True)):
        raise ValueError(f"{owner}: {what} {size} does not fit in {where}, of shape {shape}")
    return size


class BaseSampler:
    """What every sampler has: ``items`` (the table of items for an image-batch), ``gather`` (one
    sub-batch), and the counts ``len(loader)`` uses: ``n_items(shape)`` per image and ``n_sub_batches``
    per image-batch. ``check_shape`` says, naming the image, when the sampler cannot serve an image."""

    sub_batch_size: int
    shuffle: bool

    def items(self, shapes: Sequence[tuple[int, ...]], rng: np.random.Generator) -> np.ndarray:
        """The table of items to serve (first column: record index)."""
        raise NotImplementedError

    def check_shape(self, shape: tuple[int, ...], where: str = "an image") -> None:
        """Raise a ValueError naming ``where`` (e.g. the record) when this sampler cannot serve an image
        of ``shape``. The base class accepts every shape."""

    def check_shapes(self, shapes: Sequence[tuple[int, ...]], names: Sequence[str] | None = None) -> None:
        """``check_shape`` for each image of an image-batch (``names[r]`` names image ``r`` in errors;
        default 'image r of the image-batch'), and that they all have the same number of dimensions (one
        sub-batch array holds items of all of them)."""
        names = names or [f"image {r} of the image-batch" for r in range(len(shapes))]
        for shape, name in zip(shapes, names, strict=True):
            self.check_shape(tuple(shape), name)
        for shape, name in zip(shapes[1:], names[1:], strict=True):
            if len(shape) != len(shapes[0]):
                raise ValueError(
                    f"{type(self).__name__}: {name} has shape {tuple(shape)} but {names[0]} has shape "
                    f"{tuple(shapes[0])}; the images must all have the same number of dimensions"
                )

    def n_items(self, shape: tuple[int, ...]) -> int:
        """Items served for one image of ``shape``. (A subclass may define ``count`` instead.)"""
        if type(self).count is BaseSampler.count:
            raise NotImplementedError(f"{type(self).__name__} must define n_items(shape)")
        return self.count(1, shape)

    def count(self, n_records: int, shape: tuple[int, ...]) -> int:
        """Number of items for ``n_records`` images of ``shape``."""
        return n_records * self.n_items(shape)

    def n_batches(self, n_records: int, shape: tuple[int, ...], drop_last: bool = False) -> int:
        """Sub-batches served for an image-batch of ``n_records`` images of ``shape``."""
        return self._batches(self.count(n_records, shape), drop_last)

    def n_sub_batches(self, shapes: Sequence[tuple[int, ...]], drop_last: bool = False) -> int:
        """Sub-batches served for an image-batch of images of ``shapes`` (one per image; they may differ):
        its items, ``sub_batch_size`` at a time (a smaller last one unless ``drop_last``)."""
        return self._batches(sum(self.n_items(tuple(s)) for s in shapes), drop_last)

    def _batches(self, n: int, drop_last: bool) -> int:
        return n // self.sub_batch_size if drop_last else -(-n // self.sub_batch_size)

    def _table(
        self, shapes: Sequence[tuple[int, ...]], ys: Sequence[Any], rng: np.random.Generator
    ) -> np.ndarray:
        """The items of an image-batch; ``ys`` for samplers that place items by the targets."""
        return self.items(shapes, rng)

    def gather(self, images: list, table: np.ndarray, channel: Channel) -> Any:
        raise NotImplementedError

    def corners(self, table: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, int | None]:
        """Each item's corner in its image, and the axis where the batch lacks a length-1 block axis
        (slices and slice patches) or ``None``."""
        return table[:, 1:], None

    def _post(
        self,
        batch: np.ndarray,
        table: np.ndarray,
        shapes: Sequence[tuple[int, ...]],
        post: Sequence[Sequence[tuple[Any, dict]]],
        channel: Channel,
    ) -> None:
        """Apply deferred voxel-wise steps to gathered items, exactly as if they had been applied to the
        whole images before gathering. ``post[r]``: record r's steps, ``(transform, params)`` in order;
        each transform type's ``apply_to_items(view, origins, item_shapes, params)`` gets, per item, the
        list of its record's params for that type. (Deferred steps commute: they add to each voxel.)"""
        kinds: dict[type, list[list[dict]]] = {}
        for j, r in enumerate(table[:, 0]):
            for t, params in post[r]:
                kinds.setdefault(type(t), [[] for _ in range(len(table))])[j].append(params)
        if not kinds:
            return
        view = batch[..., 0] if channel == "last" else batch[:, 0] if channel == "first" else batch
        origins, axis = self.corners(table, shapes)
        if axis is not None:
            view = np.expand_dims(view, axis + 1)
        origins = np.ascontiguousarray(origins, np.int64)
        item_shapes = np.array([shapes[r] for r in table[:, 0]], np.int64)
        for kind, params in kinds.items():
            kind.apply_to_items(view, origins, item_shapes, params)  # type: ignore[attr-defined]

    def __call__(
        self,
        xs: Sequence[Any],
        ys: Sequence[Any],
        rng: np.random.Generator,
        channel: Channel = "last",
        drop_last: bool = False,
        post: Any = None,
    ) -> Iterator[Batch]:
        """The sub-batches of the records ``xs`` (targets ``ys``), items drawn from ``rng``. ``post``:
        per record, deferred voxel-wise steps ``(transform, params)`` applied to the gathered items of x
        (see ``_post``)."""
        streams = _inputs(xs)
        shapes = [tuple(image_array(img).shape) for img in streams[0]]
        self.check_shapes(shapes)
        table = self._table(shapes, ys, rng)
        if self.shuffle:
            table = table[rng.permutation(len(table))]
        image_y = bool(ys) and _is_image(ys[0])
        for start in range(0, len(table), self.sub_batch_size):
            part = table[start : start + self.sub_batch_size]
            if drop_last and len(part) < self.sub_batch_size:
                return
            xb = [self.gather(stream, part, channel) for stream in streams]
            if post is not None:
                self._post(xb[0], part, shapes, post, channel)
            yb = self.gather(list(ys), part, channel) if image_y else _targets(ys, part[:, 0])
            yield Batch(xb if len(streams) > 1 else xb[0], yb, part[:, 0], part[:, 1:], channel)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


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
        if not ys or not _is_image(ys[0]):
            raise ValueError("LabelSampler: the targets must be label images (segmentation)")
        yield from super().__call__(xs, ys, rng, channel, drop_last, post)
