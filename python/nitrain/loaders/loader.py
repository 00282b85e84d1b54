"""DatasetLoader: batches of whole images, or sub-batches from a sampler, with seeded random transforms and
a background thread that prepares the next image-batch."""

from __future__ import annotations

import queue
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from nitrain import _core
from nitrain._layout import EXPAND_DIMS, add_channel
from nitrain._layout import first_batch as first_batch  # re-exported: trainers/keras.py, demo.py
from nitrain._layout import move_channels as move_channels  # re-exported, as first_batch
from nitrain._typing import Transforms
from nitrain.samplers._extract import image_array
from nitrain.transforms.base import BaseTransform, takes_rng

_DONE = object()
_VARIES = object()  # a transform's output shape depends on its random draws

#: Leaving an epoch (break, an exception, closing the generator) waits this long for the background worker
#: to finish the record it is on; a worker still busy then (a fetch that hangs) is abandoned: it is a daemon
#: thread, it stops at its next record, and what it makes is dropped.
ABANDON_WORKER_S = 1.0


def _is_image(v: Any) -> bool:
    return callable(getattr(v, "view", None)) and hasattr(v, "spacing")


def _shape_effect(t: Any, shape: tuple[int, ...]) -> Any:  # a shape, _VARIES or None
    """The shape of an image of ``shape`` after transform ``t``: a tuple, ``_VARIES`` when it depends on
    ``t``'s random draws, or None when ``t``'s effect on shapes is not known (then it has to be run). Known:
    the library's intensity, noise, artefact, flip, affine-warp and type transforms (shape kept),
    ``Resize``, ``RandomCrop``, and ``Compose`` / ``RandomChoice`` of known ones."""
    from nitrain.transforms import artefacts, random_intensity, spatial, utility
    from nitrain.transforms.base import Compose, RandomChoice
    from nitrain.transforms.intensity import IntensityTransform

    if type(t) is Compose:
        for member in t.transforms:
            shape = _shape_effect(member, shape)
            if shape is None or shape is _VARIES:
                return shape
        return shape
    if type(t) is RandomChoice:
        outs = [_shape_effect(member, shape) for member in t.transforms]
        if any(o is None for o in outs):
            return None
        return outs[0] if all(o == outs[0] for o in outs) else _VARIES
    if not takes_rng(t):
        return None  # a user transform with its own __call__
    keep = (
        random_intensity.RandomNoise,
        random_intensity.RandomSmoothing,
        artefacts.RandomGamma,
        artefacts.RandomBiasField,
        artefacts.RandomMotion,
        spatial.Flip,
        spatial.RandomFlip,
        utility.Astype,
    )
    if type(t) in keep or isinstance(t, IntensityTransform):
        return shape
    if isinstance(t, spatial._Warp) and type(t).apply is spatial._Warp.apply:
        return shape  # resampled onto the image's own grid
    if type(t) in (spatial.Resize, spatial.RandomCrop):
        try:
            out = tuple(int(v) for v in spatial._expand("", "shape", t.shape, len(shape), len(shape)))
        except (ValueError, TypeError):
            return None
        if type(t) is spatial.Resize or out == shape:
            return out
        if any(o > d for o, d in zip(out, shape, strict=True)):
            return None  # running it raises its own error
        return out if t.p == 1 else _VARIES
    return None


def _shape_through(transforms: Sequence[Any], shape: tuple[int, ...], varies: list) -> tuple[int, ...] | None:
    """``shape`` after ``transforms`` by their known effects, or None when one is not known or varies
    (those are appended to ``varies``)."""
    for t in transforms:
        out = _shape_effect(t, tuple(shape))
        if out is _VARIES:
            varies.append(t)
            return None
        if out is None:
            return None
        shape = out
    return tuple(shape)


def _stack(values: Sequence[Any], channel: str | None, what: str) -> np.ndarray:
    """Whole images -> one float32 batch (shapes must agree); scalars -> a float32 vector."""
    if _is_image(values[0]) or isinstance(values[0], np.ndarray):
        arrays = [image_array(v) if _is_image(v) else v for v in values]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(
                f"DatasetLoader: {what} images in one batch have different shapes {sorted(shapes)}; "
                "resize them with a fixed transform (e.g. tx.Resize) or use a sampler"
            )
        out = _core.empty_array([len(arrays), *arrays[0].shape], "float32", False)  # recycled if free
        for i, a in enumerate(arrays):
            out[i] = a
        return add_channel(out, channel)
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TypeError(f"DatasetLoader: {what} values must be numbers or images, got {values[:3]!r}") from e


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Rank and world size: as given, else from an initialised torch.distributed, else (0, 1)."""
    if rank is None and world_size is None:
        try:
            import sys

            dist = sys.modules.get("torch.distributed")
            if dist is not None and dist.is_available() and dist.is_initialized():
                return dist.get_rank(), dist.get_world_size()
        except Exception:
            pass
        return 0, 1
    rank, world_size = int(rank or 0), int(world_size or 1)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"DatasetLoader: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
        )
    return rank, world_size


class DatasetLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` records.

    Each epoch (one ``for`` loop) draws its own order and random transforms from ``seed`` and the epoch
    number, and every image-batch from those and its position, so the same seed gives the same batches
    whether or not the next batch is prepared in the background (``prefetch``) and on any number of
    kernel threads. With a ``sampler``, each image-batch is served as sub-batches of slices, blocks or
    patches; ``len(loader)`` counts those from each record's shape (see ``record_shape``).

    Transforms are called as ``Compose`` calls them (``nitrain.transforms.base.takes_rng``): library
    transforms draw from the loader's generators, a transform with its own ``__call__(image)`` gets the
    image alone.

    ``rank`` / ``world_size`` (default: from an initialised ``torch.distributed``) shard the records: every
    rank draws the same epoch order from the seed and serves every ``world_size``-th record of it, so the
    ranks see disjoint records that together cover the epoch (their batch counts may differ by one).

    With a sampler, trailing ``RandomNoise`` transforms are fused into sampling (``defer_noise``): the same
    random draws, the same bits, but noise is computed only for the voxels served.
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
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DatasetLoader: batch_size must be a positive integer, got {batch_size!r}")
        if expand_dims not in EXPAND_DIMS:
            raise ValueError(f"DatasetLoader: expand_dims must be -1, 0, 1 or None, got {expand_dims!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"DatasetLoader: prefetch must be an integer >= 0, got {prefetch!r}")
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
        self.rank, self.world_size = _distributed(rank, world_size)
        if self.world_size > 1 and seed is None:
            raise ValueError(
                "DatasetLoader: give a seed when sharding over ranks (every rank must draw the same order)"
            )
        self.epoch = 0
        self._shapes: dict[int, tuple] = {}  # record -> shape of its (first) x after every transform
        self._shapes_key: tuple | None = None  # what those shapes were worked out for
        self._warned_shape = False
        # (shape, name) of the first record the sampler's checks saw
        self._reference: tuple[tuple[int, ...], str] | None = None

    # -- sizes ---------------------------------------------------------------------------------------
    def _n_records(self) -> int:
        """Records this rank serves: a disjoint share of the epoch (ranks together cover every record)."""
        n = len(self.dataset)
        return len(range(self.rank, n, self.world_size))

    def _image_batches(self) -> list[int]:
        n, b = self._n_records(), self.batch_size
        sizes = [b] * (n // b) + ([n % b] if n % b else [])
        if self.drop_last and self.sampler is None and sizes and sizes[-1] < b:
            sizes.pop()
        return sizes

    def __len__(self) -> int:
        """Batches the next epoch (``self.epoch``) serves. With a sampler, the sum over its image-batches
        of the sub-batches each makes from its records' shapes (see ``record_shape``); with ``shuffle`` and
        images of different shapes the records an image-batch groups change, and so can this count from
        one epoch to the next."""
        if self.sampler is None:
            return len(self._image_batches())
        return sum(self._sub_batches(indices) for indices, _ in self._plan(self.epoch))

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
            shape = _shape_through(chain, shape, varies)
        if shape is None:
            x, y = ds[i]
            first = x[0] if isinstance(x, list) else x
            loaded = tuple(image_array(first, f"{self._name(i)}: x").shape)
            shape = _shape_through(chain[n_ds:], loaded, varies)
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

    # -- one image-batch -----------------------------------------------------------------------------
    @staticmethod
    def _transform(transforms: Sequence[Any], value: Any, rng: np.random.Generator) -> Any:
        """``value`` through ``transforms``: library transforms draw from ``rng``; one with its own
        ``__call__(image)`` (or a plain function) gets the value alone (``takes_rng`` decides)."""
        for t in transforms:
            value = t(value, rng=rng) if takes_rng(t) else t(value)
        return value

    @staticmethod
    def _co_transform(t: Any, x: Any, y: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        """One co-transform of ``(x, y)``: a library transform draws once from ``rng`` for both; a
        ``BaseTransform`` with its own ``__call__(image)`` is applied to each on its own (as in
        ``Compose``); any other callable is called as ``t(x, y)`` (as a dataset's co-transforms are)."""
        if takes_rng(t):
            return t(x, y, rng=rng)
        if isinstance(t, BaseTransform):
            return t(x), t(y)
        return t(x, y)

    def _finish_record(self, x: Any, y: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        """The y_transforms and co_transforms of one record (after its x_transforms)."""
        if self.y_transforms:
            y = self._transform(self.y_transforms, y, rng)
        for t in self.co_transforms:
            x, y = self._co_transform(t, x, y, rng)
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
        """Trailing ``RandomNoise`` transforms, which a sampler can apply to the gathered items only: the
        noise is counter-based on each voxel's index, so the result is bit-identical and no noisy copy of
        the whole image is ever made. (Not with co-transforms, which would run after the noise.)"""
        from nitrain.transforms.random_intensity import RandomNoise

        if self.sampler is None or not self.defer_noise or self.co_transforms:
            return self.x_transforms, []
        k = len(self.x_transforms)
        while k > 0 and type(self.x_transforms[k - 1]) is RandomNoise:
            k -= 1
        return self.x_transforms[:k], self.x_transforms[k:]

    def _prepare(
        self,
        indices: Sequence[int] | np.ndarray,
        rng: np.random.Generator,
        stop: threading.Event | None = None,
    ) -> list | None:
        """The ``(x, y)`` batches of one image-batch (the records ``indices``, random draws from ``rng``).
        ``None`` when ``stop`` is set: it is looked at before each record and before sampling."""
        xs: list[Any] = []
        ys: list[Any] = []
        noise: list[list[tuple[Any, Any]]] | None = []
        eager, deferred = self._split_deferred()
        for i in indices:
            if stop is not None and stop.is_set():
                return None
            x, y = self.dataset[int(i)]
            if isinstance(x, list):
                x = [self._transform(self.x_transforms, v, rng) for v in x]
                noise = None
            else:
                x = self._transform(eager, x, rng)
                if noise is not None:
                    steps = [t.decide(x, rng) for t in deferred]
                    noise.append([(p["sd"], p["seed"]) for p in steps if p is not None])
            x, y = self._finish_record(x, y, rng)
            xs.append(x)
            ys.append(y)
        if stop is not None and stop.is_set():
            return None
        if self.sampler is not None:
            shapes = [
                tuple(image_array(x[0] if isinstance(x, list) else x, f"{self._name(i)}: x").shape)
                for i, x in zip(indices, xs, strict=True)
            ]
            self._check_sampler(shapes, indices)
            self._check_counted(indices, shapes)
            noise = noise if noise and any(noise) else None
            return list(
                self.sampler(xs, ys, rng, channel=self.channel, drop_last=self.drop_last, noise=noise)
            )
        xb: Any
        if isinstance(xs[0], list):
            xb = [_stack([x[k] for x in xs], self.channel, f"x[{k}]") for k in range(len(xs[0]))]
        else:
            xb = _stack(xs, self.channel, "x")
        yb = _stack(ys, self.channel if _is_image(ys[0]) else None, "y")
        return [(xb, yb)]

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

    def _plan(self, epoch: int) -> list[tuple[np.ndarray, np.random.Generator]]:
        root = (
            np.random.SeedSequence([int(self.seed) % 2**63, epoch])
            if isinstance(self.seed, int | np.integer)
            else np.random.SeedSequence([self.seed, epoch])
        )
        order_seq, *batch_seqs = root.spawn(1 + len(self._image_batches()))
        n = len(self.dataset)
        order = np.random.default_rng(order_seq).permutation(n) if self.shuffle else np.arange(n)
        order = order[self.rank :: self.world_size]
        bounds = np.cumsum([0, *self._image_batches()])
        return [
            (order[a:b], np.random.default_rng(s))
            for a, b, s in zip(bounds[:-1], bounds[1:], batch_seqs, strict=True)
        ]

    def peek(self) -> tuple[Any, Any]:
        """The first ``(x, y)`` batch of the next epoch, without starting it: ``loader.epoch`` and the
        batches the next ``for`` loop serves are unchanged (the batch is prepared from the same seed, so it
        equals that loop's first batch). Adapters use it for shapes."""
        indices, rng = self._plan(self.epoch)[0]
        items = self._prepare(indices, rng)
        if not items:
            raise ValueError("DatasetLoader: the first image-batch gave no items (check the sampler)")
        return items[0]

    # -- iteration -----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        yield from self._serve(self._next_plan())

    def _next_plan(self) -> list[tuple[np.ndarray, np.random.Generator]]:
        """The plan of epoch ``self.epoch`` (its image-batches, each with its own generator); ``epoch``
        moves on by one. ``to_torch()`` takes every k-th image-batch of it in each of k DataLoader
        workers."""
        plan = self._plan(self.epoch)
        self.epoch += 1
        return plan

    def _serve(self, plan: list[tuple[np.ndarray, np.random.Generator]]) -> Iterator[tuple[Any, Any]]:
        """The ``(x, y)`` batches of ``plan``'s image-batches, in order (the next one prepared in a
        background thread when ``prefetch`` > 0).

        Leaving early (``break``, an exception, closing the generator) tells the background worker to stop
        and waits at most ``ABANDON_WORKER_S`` for it: a worker stuck in a record's loading is then
        abandoned (a daemon thread holding no lock; it stops before its next record, and what it made is
        dropped), so leaving never waits for a fetch that hangs."""
        if self.prefetch == 0:
            for indices, rng in plan:
                yield from self._prepare(indices, rng) or ()  # None only when stopped
            return
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def deliver(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for indices, rng in plan:
                    item = self._prepare(indices, rng, stop)
                    if item is None or not deliver(item):
                        return
                deliver(_DONE)
            except BaseException as e:  # handed to the consumer, raised there
                deliver(e)

        worker = threading.Thread(target=produce, name="nitrain-loader", daemon=True)
        worker.start()
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield from item
        finally:
            stop.set()
            deadline = time.monotonic() + ABANDON_WORKER_S
            while worker.is_alive() and time.monotonic() < deadline:
                try:
                    q.get_nowait()  # free a prepared batch
                except queue.Empty:
                    worker.join(timeout=0.05)
            while True:  # drop what the worker left, abandoned or not
                try:
                    q.get_nowait()
                except queue.Empty:
                    break

    def to_torch(self, pin_memory: bool = False, channels: str | None = "first") -> Any:
        """This loader's batches as torch tensors (zero-copy from the numpy batches), as a
        ``torch.utils.data.IterableDataset`` (``nitrain.loaders.torch.TorchLoader``): iterate it directly,
        or hand it to ``DataLoader(..., batch_size=None, num_workers=k)``, whose k workers prepare disjoint
        shares of each epoch's image-batches (the same batches as without workers).

        ``channels='first'`` (default) serves ``(N, C, *spatial)``, what torch convolutions take, whatever
        ``expand_dims`` the loader uses (the channel axis moved, or inserted when the loader has none;
        image targets move with x); 'last' serves ``(N, *spatial, C)``; None the batches as the loader
        makes them. ``pin_memory`` pins each batch when CUDA is available (in the main process only:
        with DataLoader workers, pass ``pin_memory=True`` to the DataLoader instead). Epochs with
        DataLoader workers: see ``TorchLoader``."""
        from nitrain.loaders.torch import TorchLoader

        return TorchLoader(self, pin_memory=pin_memory, channels=channels)

    def to_keras(self, channels: str | None = None) -> Any:
        """A ``keras.utils.PyDataset`` serving this loader: ``len`` is the batches per epoch, item ``i``
        is batch ``i`` of the current epoch, and each keras epoch (``on_epoch_end``) starts the loader's
        next epoch, with its own seeded order and random transforms. Several inputs come as a tuple.

        Item ``i`` is always batch ``i``: without a sampler any order works (keras' default shuffle
        included); with a sampler the batches are made in sequence, so pass ``shuffle=False`` to
        ``model.fit`` (shuffling is the loader's job; an out-of-order request raises). Keep one worker
        (the default); the loader already prepares the next batch in a background thread. ``channels``:
        'first', 'last', or None (default: as the loader serves them; keras convolutions are channels-last,
        the loader's default)."""
        from nitrain.loaders.keras import KerasLoader

        return KerasLoader(self, channels=channels)

    def to_tensorflow(self, prefetch: int | str = "auto", channels: str | None = None) -> Any:
        """A ``tf.data.Dataset`` of this loader's ``(x, y)`` batches (x a tuple for several inputs). Every
        iteration over it (every keras epoch) is one loader epoch. Its ``element_spec`` is exact: float32,
        the shapes of the first batch with the batch axis None. ``prefetch``: 'auto'
        (``tf.data.AUTOTUNE``), a number of batches, or 0 / None for none. ``channels``: 'first', 'last',
        or None (default: as the loader serves them)."""
        from nitrain.loaders.tensorflow import to_tf_dataset

        return to_tf_dataset(self, prefetch=prefetch, channels=channels)

    def __repr__(self) -> str:
        n = len(self._image_batches())
        per_epoch = f"{n} batches" if self.sampler is None else f"{n} image-batches"
        return (
            f"DatasetLoader({len(self.dataset)} records, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, sampler={self.sampler!r}, x_transforms={self.x_transforms!r}, "
            f"{per_epoch} per epoch)"
        )
