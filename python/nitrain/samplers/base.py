"""Samplers: turn an image-batch into sub-batches of slices, blocks or patches.

A sampler is called with a group of records (ANTs images; a list per record for several inputs), their
targets and a ``numpy.random.Generator``; it yields sub-batches (``nitrain.loaders.Batch``: an ``(x, y)``
pair that also gives each item's record, as a position in the group, and place), assembled by the Rust
kernels straight into one preallocated float32 array each, one sub-batch at a time.

Here ``BaseSampler`` and the helpers the samplers share; the samplers themselves are in
``nitrain.samplers.samplers`` (slices) and ``nitrain.samplers.blocks`` (blocks, patches, labels).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from nitrain._batch import Batch
from nitrain._images import is_image
from nitrain.samplers._extract import _size, grid_positions, image_array

#: where the channel axis of a batch goes (None: no channel axis)
Channel = Literal["first", "last"] | None


def _positive(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


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
        image_y = bool(ys) and is_image(ys[0])
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
