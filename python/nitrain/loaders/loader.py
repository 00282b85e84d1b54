"""DatasetLoader: batches of whole images, or sub-batches from a sampler mixed across subjects, with
seeded random transforms, each epoch planned first and its records prepared on worker lanes."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from nitrain._batch import Batch
from nitrain._images import is_image
from nitrain._layout import EXPAND_DIMS
from nitrain._layout import first_batch as first_batch  # re-exported: trainers/keras.py, demo.py
from nitrain._layout import move_channels as move_channels  # re-exported, as first_batch
from nitrain._threads import get_num_threads
from nitrain._typing import Transforms
from nitrain.loaders._adapters import Adapters
from nitrain.loaders._batching import deferrable, distributed, stack_values
from nitrain.loaders._lanes import Lanes, Slot
from nitrain.loaders._plan import Group, plan_epoch
from nitrain.loaders._shapes import shape_through
from nitrain.samplers._extract import image_array
from nitrain.transforms._co import co_transform, warn_unpaired_spatial
from nitrain.transforms.base import run_transforms

#: A sampler's pool, when not given: as many records as fit in this many bytes (see ``DatasetLoader``).
POOL_BYTES = 1 << 30

#: Leaving an epoch (break, an exception, closing the generator) waits this long for the background worker
#: to finish the record it is on; a worker still busy then (a fetch that hangs) is abandoned: it is a daemon
#: thread, it stops at its next record, and what it makes is dropped.
ABANDON_WORKER_S = 1.0


class DatasetLoader(Adapters):
    """Iterate over ``dataset`` in batches (``Batch``: an ``(x, y)`` pair that also says which record
    each item came from).

    **Plan, then work.** Each epoch (one ``for`` loop) is planned from ``seed`` and the epoch number before
    any record is read: the record order, the groups records are served in, and one random generator per
    record (its transforms draw from it) and per group (the sampler's items). The records are then
    prepared (read, transformed) on ``num_workers`` worker lanes (threads; default: as many as the kernels
    use, ``nitrain.get_num_threads()``), ``prefetch`` groups ahead of the one being served. Reading,
    resampling, noise and the other library kernels release the GIL, so lanes run them in parallel. A
    record's result depends only on its own generator: the same seed gives the same batches for any
    ``num_workers``, kernel thread count and ``prefetch``. Transforms written in Python run on the lanes
    too; they hold the GIL while they run, so they take turns. ``num_workers=0`` prepares every record
    in the iterating thread.

    **Without a sampler** a batch is ``batch_size`` whole records, stacked.

    **With a sampler** (slices, blocks, patches) records are served in *pools*: the items of every record
    of a pool are listed by the sampler, shuffled together (when the sampler shuffles), and served
    ``sampler.sub_batch_size`` at a time, each sub-batch made from the prepared records when it is asked
    for (never a whole pool's sub-batches at once). So a sub-batch mixes items of many subjects, as batch
    statistics (batch norm) need, while memory stays bounded: the pool being served plus ``prefetch``
    pools being prepared. ``pool`` is the most records a pool holds (an epoch's pools are made as equal
    in size as they can be); by default, for a sampler that shuffles, as many records as fit in
    ``pool_bytes`` (1 GiB; a record counts as two float32 arrays of its shape: an input and a target or
    second input), at least ``batch_size``; for a sampler that does not shuffle (evaluation),
    ``batch_size``. ``len(loader)`` counts the sub-batches each pool makes from its
    records' shapes (see ``record_shape``).

    Transforms are called as ``Compose`` calls them (``nitrain.transforms.base.takes_rng``): library
    transforms draw from the record's generator, a transform with its own ``__call__(image)`` gets the
    image alone.

    ``rank`` / ``world_size`` (default: from an initialised ``torch.distributed``) shard the records: every
    rank draws the same epoch order from the seed and serves every ``world_size``-th record of it, so the
    ranks see disjoint records that together cover the epoch (their batch counts may differ by one).

    Several inputs per record (x a list of images: T1 and FLAIR) are served as a list of arrays, or, with
    ``stack_inputs=True``, as one array with one channel per input (in the order of the list), what a
    multi-channel network takes, on torch and keras alike.

    With a sampler, trailing voxel-wise transforms that can work on gathered items (those with an
    ``apply_to_items``, such as ``RandomNoise``) are fused into sampling (``defer_noise``): the same random
    draws, the same bits, but computed only for the voxels served.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        shuffle: bool = False,
        sampler: Any = None,
        x_transforms: Transforms = None,
        y_transforms: Transforms = None,
        co_transforms: Transforms = None,
        expand_dims: int | None = -1,
        drop_last: bool = False,
        seed: int | Sequence[int] | None = None,
        prefetch: int = 1,
        rank: int | None = None,
        world_size: int | None = None,
        defer_noise: bool = True,
        num_workers: int | None = None,
        pool: int | None = None,
        pool_bytes: int = POOL_BYTES,
        stack_inputs: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DatasetLoader: batch_size must be a positive integer, got {batch_size!r}")
        if expand_dims not in EXPAND_DIMS:
            raise ValueError(f"DatasetLoader: expand_dims must be -1, 0, 1 or None, got {expand_dims!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"DatasetLoader: prefetch must be an integer >= 0, got {prefetch!r}")
        if num_workers is not None and (
            isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0
        ):
            raise ValueError(
                f"DatasetLoader: num_workers must be an integer >= 0 or None, got {num_workers!r}"
            )
        if pool is not None and (isinstance(pool, bool) or not isinstance(pool, int) or pool < 1):
            raise ValueError(f"DatasetLoader: pool must be a positive integer or None, got {pool!r}")
        if isinstance(pool_bytes, bool) or not isinstance(pool_bytes, int) or pool_bytes < 1:
            raise ValueError(f"DatasetLoader: pool_bytes must be a positive integer, got {pool_bytes!r}")
        if stack_inputs and EXPAND_DIMS[expand_dims] is None:
            raise ValueError("DatasetLoader: stack_inputs=True needs a channel axis (expand_dims -1, 0 or 1)")
        if len(dataset) == 0:
            raise ValueError("DatasetLoader: the dataset is empty")
        for name, ts in (
            ("x_transforms", x_transforms),
            ("y_transforms", y_transforms),
            ("co_transforms", co_transforms),
        ):
            for i, t in enumerate(ts or []):
                if not callable(t):
                    raise TypeError(f"DatasetLoader: {name}[{i}] is not callable: {t!r}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.x_transforms = list(x_transforms or [])
        self.y_transforms = list(y_transforms or [])
        self.co_transforms = list(co_transforms or [])
        self.expand_dims = expand_dims
        self.channel = EXPAND_DIMS[expand_dims]
        self.drop_last = bool(drop_last)
        self.seed: Any = np.random.SeedSequence(seed).entropy if seed is None else seed
        self.prefetch = prefetch
        self.defer_noise = bool(defer_noise)
        self.num_workers = get_num_threads() if num_workers is None else num_workers
        self.pool = pool
        self.pool_bytes = pool_bytes
        self.stack_inputs = bool(stack_inputs)
        self.rank, self.world_size = distributed(rank, world_size)
        if self.world_size > 1 and seed is None:
            raise ValueError(
                "DatasetLoader: give a seed when sharding over ranks (every rank must draw the same order)"
            )
        self.epoch = 0
        self._shapes: dict[int, tuple] = {}  # record -> shape of its (first) x after every transform
        self._shapes_key: tuple | None = None  # what those shapes were worked out for
        self._warned_shape = False
        self._checked_pairing = False  # whether spatial x_transforms with image targets were looked for
        # (shape, name) of the first record the sampler's checks saw
        self._reference: tuple[tuple[int, ...], str] | None = None

    # -- sizes ---------------------------------------------------------------------------------------
    def _n_records(self) -> int:
        """Records this rank serves: a disjoint share of the epoch (ranks together cover every record)."""
        n = len(self.dataset)
        return len(range(self.rank, n, self.world_size))

    def pool_size(self) -> int:
        """Records per pool with a sampler (``pool``, or worked out from ``pool_bytes``; see the class
        docstring); ``batch_size`` without one."""
        if self.sampler is None:
            return self.batch_size
        if self.pool is not None:
            return self.pool
        if not getattr(self.sampler, "shuffle", False):
            return self.batch_size
        per_record = 8 * int(np.prod(self.record_shape(0)))
        return max(self.batch_size, min(self._n_records(), self.pool_bytes // max(per_record, 1)))

    def _group_sizes(self) -> list[int]:
        """The number of records in each group of an epoch. Without a sampler, batches of ``batch_size``
        (the last one smaller, or dropped with ``drop_last``). With one, pools of at most ``pool_size()``
        records, as equal in size as they can be (17 records in pools of at most 16 are pools of 9 and 8,
        not 16 and 1: a pool of one subject would serve sub-batches of one subject)."""
        n, b = self._n_records(), self.pool_size()
        if self.sampler is not None:
            k = -(-n // b)
            return [n // k + (1 if i < n % k else 0) for i in range(k)]
        sizes = [b] * (n // b) + ([n % b] if n % b else [])
        if self.drop_last and sizes and sizes[-1] < b:
            sizes.pop()
        return sizes

    def __len__(self) -> int:
        """Batches the next epoch (``self.epoch``) serves. With a sampler, the sum over its pools of the
        sub-batches each makes from its records' shapes (see ``record_shape``); with ``shuffle`` and images
        of different shapes the records a pool groups change, and so can this count from one epoch to the
        next."""
        if self.sampler is None:
            return len(self._group_sizes())
        return sum(self._sub_batches(g.indices) for g in self._plan(self.epoch))

    def _sub_batches(self, indices: Sequence[int] | np.ndarray) -> int:
        shapes = [self.record_shape(int(i)) for i in indices]
        self._check_sampler(shapes, indices)
        return self.sampler.n_sub_batches(shapes, self.drop_last)

    def _name(self, i: int) -> str:
        where = getattr(self.dataset, "_where", None)
        return where(int(i)) if callable(where) else f"{type(self.dataset).__name__} record {int(i)}"

    def _check_sampler(self, shapes: Sequence[Any], indices: Sequence[int] | np.ndarray) -> None:
        """The sampler's ``check_shapes`` of an image-batch, errors naming the records; and every
        image-batch must have the number of dimensions of the first record checked (its sub-batches
        would not fit one model otherwise)."""
        check = getattr(self.sampler, "check_shapes", None)
        if check is None:
            return
        shapes, names = [tuple(s) for s in shapes], [self._name(i) for i in indices]
        check(shapes, names)
        if self._reference is None:
            self._reference = (shapes[0], names[0])
        ref_shape, ref_name = self._reference
        if len(shapes[0]) != len(ref_shape):
            owner = type(self.sampler).__name__
            raise ValueError(
                f"{owner}: {names[0]} has shape {shapes[0]} but {ref_name} has shape {ref_shape}; the "
                "images must all have the same number of dimensions"
            )

    def _chain(self) -> list:
        """Every transform a record's x goes through, in order: the dataset's x_transforms and
        co_transforms, then the loader's."""
        ds = self.dataset
        return [
            *(getattr(ds, "x_transforms", None) or []),
            *(getattr(ds, "co_transforms", None) or []),
            *self.x_transforms,
            *self.co_transforms,
        ]

    def record_shape(self, i: int) -> tuple[int, ...]:
        """The shape of record ``i``'s x (the first input, for several) as the sampler gets it, after the
        dataset's and this loader's transforms: what ``len(loader)`` counts items from. Worked out once per
        record and kept (until a transform list changes):

        - from the stored shape (``dataset.record_shape(i)``: the image or array in memory, or the file's
          header) and the known effect of each transform on shapes (intensity, flip, affine and other
          transforms that keep the shape; ``Resize``; ``RandomCrop`` with ``p=1``), without loading;
        - else by loading the record (``dataset[i]``, its fixed transforms applied) and, when a loader
          transform's effect is not known either, running the loader's transforms on it (with a generator
          of its own, not the epoch's). That costs a read of every record the first time ``len`` is taken
          (the dataset's cache, if any, keeps what was read).

        A transform that changes shapes at random (``RandomCrop`` with ``p < 1``) makes the count vary
        between epochs: ``len`` then warns, and counts one draw. When a served record's shape differs from
        the one counted (a random or changing transform), a warning says so once."""
        key = (len(self.dataset), tuple(id(t) for t in self._chain()))
        if key != self._shapes_key:
            self._shapes.clear()
            self._shapes_key = key
        i = int(i)
        if i not in self._shapes:
            self._shapes[i] = self._work_out_shape(i)
        return self._shapes[i]

    def _work_out_shape(self, i: int) -> tuple[int, ...]:
        ds = self.dataset
        n_ds = len(getattr(ds, "x_transforms", None) or []) + len(getattr(ds, "co_transforms", None) or [])
        chain = self._chain()
        stored = getattr(ds, "record_shape", None)
        shape = stored(i) if callable(stored) else None
        varies: list[Any] = []
        if shape is not None:
            shape = shape_through(chain, shape, varies)
        if shape is None:
            x, y = ds[i]
            first = x[0] if isinstance(x, list) else x
            loaded = tuple(image_array(first, f"{self._name(i)}: x").shape)
            shape = shape_through(chain[n_ds:], loaded, varies)
            if shape is None:  # a loader transform of unknown effect: run them
                eager, _ = self._split_deferred()
                x, y = self._transform_record(x, y, eager, np.random.default_rng(0))
                first = x[0] if isinstance(x, list) else x
                shape = tuple(image_array(first, f"{self._name(i)}: x").shape)
        if varies and not self._warned_shape:
            self._warned_shape = True
            warnings.warn(
                f"DatasetLoader: {varies[0]!r} changes image shapes at random, so the batches a sampler "
                "makes vary between epochs; len(loader) counts one draw (give it p=1, or follow it with a "
                "fixed tx.Resize, for an exact length)",
                stacklevel=4,
            )
        return tuple(int(d) for d in shape)

    # -- one record ----------------------------------------------------------------------------------
    @staticmethod
    def _transform(transforms: Sequence[Any], value: Any, rng: np.random.Generator) -> Any:
        """``value`` through ``transforms`` (``nitrain.transforms.base.run_transforms``): library transforms
        draw from ``rng``; one with its own ``__call__(image)`` (or a plain function) gets the value alone;
        consecutive affine warps resample once."""
        return run_transforms(transforms, value, rng=rng)[0] if transforms else value

    def _finish_record(self, x: Any, y: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        """The y_transforms and co_transforms of one record (after its x_transforms)."""
        if self.y_transforms:
            y = self._transform(self.y_transforms, y, rng)
        for t in self.co_transforms:
            x, y = co_transform(t, x, y, rng, owner="DatasetLoader: co_transforms")
        return x, y

    def _transform_record(
        self, x: Any, y: Any, eager: Sequence[Any], rng: np.random.Generator
    ) -> tuple[Any, Any]:
        """One record through the loader's transforms (``eager``: the x_transforms not fused into
        sampling), for working out its shape."""
        if isinstance(x, list):
            x = [self._transform(self.x_transforms, v, rng) for v in x]
        else:
            x = self._transform(eager, x, rng)
        return self._finish_record(x, y, rng)

    def _split_deferred(self) -> tuple[list[Any], list[Any]]:
        """The x_transforms run on the record, and the trailing ones deferred to the sampler: transforms
        with an ``apply_to_items`` (voxel-wise, with randomness that is a function of each voxel's index,
        such as ``RandomNoise``), which the sampler applies to the gathered items only, bit-identical to
        applying them to the whole image first. (Not with co-transforms, which would run after them.)"""
        if self.sampler is None or not self.defer_noise or self.co_transforms:
            return self.x_transforms, []
        k = len(self.x_transforms)
        while k > 0 and deferrable(self.x_transforms[k - 1]):
            k -= 1
        return self.x_transforms[:k], self.x_transforms[k:]

    def _prepare_record(self, job: tuple[int, np.random.Generator]) -> tuple[Any, Any, list | None]:
        """Record ``i`` read and through every loader transform, drawing from its own generator: ``(x, y,
        post)``, where ``post`` lists the deferred steps ``(transform, params)`` for the sampler (None for
        several inputs, whose transforms are not deferred). Runs on a worker lane."""
        i, rng = job
        eager, deferred = self._split_deferred()
        x, y = self.dataset[i]
        post: list | None = None
        if isinstance(x, list):
            x = [self._transform(self.x_transforms, v, rng) for v in x]
        else:
            x = self._transform(eager, x, rng)
            decided = [(t, t.decide(x, rng)) for t in deferred]
            post = [(t, params) for t, params in decided if params is not None]
        x, y = self._finish_record(x, y, rng)
        return x, y, post

    def _batches(self, group: Group, records: Sequence[tuple[Any, Any, list | None]]) -> Iterator[Batch]:
        """The batches of ``group`` from its prepared ``records``: one stacked batch without a sampler;
        with one, its items made from the group's generator and served ``sub_batch_size`` at a time, each
        sub-batch made when it is asked for."""
        xs = [r[0] for r in records]
        ys = [r[1] for r in records]
        indices = group.indices
        if not self._checked_pairing:
            self._checked_pairing = True
            warn_unpaired_spatial("DatasetLoader", self.x_transforms, ys[0], self.y_transforms)
        if self.sampler is None:
            xb: Any
            if isinstance(xs[0], list):
                xb = [stack_values([x[k] for x in xs], self.channel, f"x[{k}]") for k in range(len(xs[0]))]
            else:
                xb = stack_values(xs, self.channel, "x")
            yb = stack_values(ys, self.channel if is_image(ys[0]) else None, "y")
            yield Batch(self._inputs(xb), yb, records=indices, channel=self.channel)
            return
        shapes = [
            tuple(image_array(x[0] if isinstance(x, list) else x, f"{self._name(i)}: x").shape)
            for i, x in zip(indices, xs, strict=True)
        ]
        self._check_sampler(shapes, indices)
        self._check_counted(indices, shapes)
        post: list | None = [r[2] for r in records]
        if post is None or any(steps is None for steps in post) or not any(post):
            post = None
        sub_batches = self.sampler(
            xs, ys, group.rng(), channel=self.channel, drop_last=self.drop_last, post=post
        )
        for b in sub_batches:
            x = self._inputs(b[0])
            yield Batch(x, b[1], records=indices[b.records], origins=b.origins, channel=self.channel)

    def _inputs(self, x: Any) -> Any:
        """Several inputs as one array, stacked on the channel axis with ``stack_inputs``."""
        if not self.stack_inputs or not isinstance(x, list):
            return x
        return np.concatenate(x, axis=1 if self.channel == "first" else -1)

    def _prepare_group(self, group: Group) -> list[Batch]:
        """Every batch of ``group``, made now (its records on the worker lanes)."""
        return list(self._batches(group, self._records([group])[0]))

    def _records(self, groups: Sequence[Group]) -> list[list[tuple[Any, Any, list | None]]]:
        """The prepared records of ``groups``, on ``num_workers`` lanes (in this thread when 0)."""
        if self.num_workers == 0:
            return [[self._prepare_record(job) for job in g.jobs()] for g in groups]
        lanes = Lanes(min(self.num_workers, sum(len(g.indices) for g in groups)), self._prepare_record)
        try:
            slots = [[lanes.submit(job) for job in g.jobs()] for g in groups]
            return [[s.result() for s in row] for row in slots]
        finally:
            lanes.close(ABANDON_WORKER_S)

    def _check_counted(self, indices: Sequence[int] | np.ndarray, shapes: Sequence[Sequence[int]]) -> None:
        """Warn once when a record's shape is not the one ``len`` counted (a transform that changes shapes
        at random, or a dataset that changed): then ``len(loader)`` is not this epoch's batch count."""
        if self._warned_shape or not self._shapes:
            return
        for i, shape in zip(indices, shapes, strict=True):
            counted = self._shapes.get(int(i))
            if counted is not None and counted != shape:
                self._warned_shape = True
                warnings.warn(
                    f"DatasetLoader: {self._name(i)} has shape {shape} after its transforms, but len(loader) "
                    f"counted it as {counted}: a transform changes shapes from one draw to the next, so "
                    "len(loader) is not the number of batches this epoch serves",
                    stacklevel=2,
                )
                return

    def _plan(self, epoch: int) -> list[Group]:
        """Epoch ``epoch``'s groups (see ``nitrain.loaders._plan``)."""
        return plan_epoch(
            self.seed, epoch, len(self.dataset), self.shuffle, self.rank, self.world_size, self._group_sizes()
        )

    def peek(self) -> Batch:
        """The first batch of the next epoch, without starting it: ``loader.epoch`` and the batches the
        next ``for`` loop serves are unchanged (the batch is made from the same plan, so it equals that
        loop's first batch). Adapters use it for shapes. It prepares the records of the first group."""
        first = self._plan(self.epoch)[0]
        batch = next(self._batches(first, self._records([first])[0]), None)
        if batch is None:
            raise ValueError("DatasetLoader: the first image-batch gave no items (check the sampler)")
        return batch

    # -- iteration -----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        yield from self._serve(self._next_plan())

    def _next_plan(self) -> list[Group]:
        """The plan of epoch ``self.epoch`` (its groups); ``epoch`` moves on by one. ``to_torch()`` takes
        every k-th group of it in each of k DataLoader workers."""
        plan = self._plan(self.epoch)
        self.epoch += 1
        return plan

    def _serve(self, plan: Sequence[Group]) -> Iterator[Batch]:
        """The batches of ``plan``'s groups, in order. The records of a group and of the ``prefetch``
        groups after it are prepared on the worker lanes while its batches are served.

        Leaving early (``break``, an exception, closing the generator) stops the lanes and waits at most
        ``ABANDON_WORKER_S`` for them: a lane stuck in a record's loading is then abandoned (a daemon
        thread holding no lock; it stops after that record, and what it made is dropped), so leaving never
        waits for a fetch that hangs."""
        if self.num_workers == 0:
            for group in plan:
                yield from self._batches(group, [self._prepare_record(job) for job in group.jobs()])
            return
        lanes = Lanes(self.num_workers, self._prepare_record)
        slots: dict[int, list[Slot]] = {}
        try:
            for g, group in enumerate(plan):
                for h in range(g, min(len(plan), g + 1 + self.prefetch)):
                    if h not in slots:
                        slots[h] = [lanes.submit(job) for job in plan[h].jobs()]
                records = [s.result() for s in slots.pop(g)]
                yield from self._batches(group, records)
                del records
        finally:
            slots.clear()
            lanes.close(ABANDON_WORKER_S)

    def __repr__(self) -> str:
        n = len(self._group_sizes())
        per_epoch = f"{n} batches" if self.sampler is None else f"{n} pools of {self.pool_size()} records"
        return (
            f"DatasetLoader({len(self.dataset)} records, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, sampler={self.sampler!r}, x_transforms={self.x_transforms!r}, "
            f"{per_epoch} per epoch)"
        )
