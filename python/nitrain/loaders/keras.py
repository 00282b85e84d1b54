"""keras adapter: a loader (any re-iterable of numpy ``(x, y)`` batches with a length) as a
``keras.utils.PyDataset``.

Importing this module imports keras (``pip install 'nitrain[tensorflow]'``); ``DatasetLoader.to_keras``
imports it only when called.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from nitrain._frameworks import require_keras
from nitrain._layout import check_channels, layout_of, move_channels

keras: Any = require_keras("DatasetLoader.to_keras")

#: keras reads this many items to learn the shapes before an epoch begins (NUM_BATCHES_FOR_TENSOR_SPEC).
_PEEK = 2
_END = object()


def as_keras_batch(x: Any, y: Any) -> tuple[Any, Any]:
    """keras wants several inputs as a tuple (a list would read as one input)."""
    return (tuple(x) if isinstance(x, list | tuple) else x), y


def _random_access(loader: Any) -> Callable[[int, int], Any] | None:
    """``get(epoch, i)``: batch ``i`` of loader epoch ``epoch``, for a DatasetLoader without a sampler
    (one image-batch is one batch, made from the epoch's plan: the same arrays its ``for`` loop serves);
    None for other loaders, which can only be read in sequence."""
    if getattr(loader, "sampler", _END) is not None:
        return None
    plan_of, prepare = getattr(loader, "_plan", None), getattr(loader, "_prepare_group", None)
    if plan_of is None or prepare is None:
        return None
    cache: dict = {}

    def get(epoch: int, i: int) -> Any:
        if cache.get("epoch") != epoch:
            cache.clear()
            cache.update(epoch=epoch, plan=plan_of(epoch))
        items = prepare(cache["plan"][i])  # fresh generators from the plan: the same draws every time
        if len(items) != 1:
            raise RuntimeError(f"to_keras: image-batch {i} gave {len(items)} batches, expected 1")
        return items[0]

    return get


class KerasLoader(keras.utils.PyDataset):
    """Serve ``loader`` to keras: ``len`` is the loader's batches per epoch, item ``i`` is batch ``i`` of
    the current loader epoch, and each keras epoch is one loader epoch (its own seeded order and random
    transforms). Shuffle with the loader.

    The loader is a producer (one ``for`` loop = one epoch, the next batch prepared in the background):
    items asked for in order (keras' ``shuffle=False``) come from it. Items asked for out of order
    (keras' default ``shuffle=True``) are made directly, batch ``i`` of the epoch's plan, when the loader
    is a DatasetLoader without a sampler; a loader with a sampler (several batches per image-batch), or
    any other iterable, can only serve in order and raises a RuntimeError saying so: pass
    ``shuffle=False`` to ``model.fit``. Never a different batch than the one asked for.

    Asking again for an item of the epoch serves the same batch (a DatasetLoader without a sampler makes
    it again; other loaders repeat only the batch just served and the items keras read to learn the
    shapes before the epoch began). A new loader epoch begins with the first item asked for after
    keras' ``on_epoch_end``, or, when indexing by hand, after every item of the epoch has been served.
    The loader's ``len`` must be exact (a DatasetLoader's is, from each record's shape): an epoch that
    ends early or runs long raises an IndexError. Works with one worker
    (the default); several threads are serialised; ``use_multiprocessing`` is not supported (a loader
    keeps its own background thread). ``channel`` is the layout served: ``channels`` ('first' / 'last')
    when given, else the loader's.
    """

    def __init__(self, loader: Any, channels: str | None = None) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        try:
            n = len(loader)
        except TypeError as e:
            raise TypeError(
                f"to_keras: the loader needs a length (batches per epoch); {type(loader).__name__} has none"
            ) from e
        if n < 1:
            raise ValueError(f"to_keras: the loader ({type(loader).__name__}) has no batches")
        self.loader = loader
        self.n_batches = int(n)
        self.source = layout_of(loader)
        self.target = check_channels("to_keras", channels)
        self.channel = self.source if channels is None else channels
        self.epochs_started = 0  # loader epochs this adapter has begun
        self._random = _random_access(loader)
        self._lock = threading.Lock()
        self._epoch: int | None = None  # the loader's epoch number being served (None: none begun)
        # that epoch's batches in order (None: the epoch is served by random access)
        self._iter: Iterator[Any] | None = None
        self._produced = 0
        self._served: set[int] = set()  # items served in this epoch (since keras began it)
        self._kept: dict[int, tuple] = {}  # items read before keras began the epoch, served again in it
        self._last: tuple[int, Any] | None = None  # (index, batch) served last
        self._begun = False

    def __len__(self) -> int:
        return self.n_batches

    @property
    def num_batches(self) -> int:
        return self.n_batches

    # -- epochs --------------------------------------------------------------------------------------
    def _close(self) -> None:
        if self._iter is not None and hasattr(self._iter, "close"):
            self._iter.close()  # stops a DatasetLoader's background thread
        self._epoch, self._iter, self._produced, self._begun, self._last = None, None, 0, False, None
        self._served.clear()
        self._kept.clear()

    def _begin(self, index: int) -> None:
        """Start the loader's next epoch: in sequence from item 0, else by random access."""
        begun = self._begun
        self._close()
        self._begun = begun
        if index != 0 and self._random is None:
            self._out_of_order(index)
        self.epochs_started += 1
        self._epoch = getattr(self.loader, "epoch", self.epochs_started - 1)
        if index == 0:
            self._iter = iter(self.loader)  # a DatasetLoader counts the epoch when it starts
        else:
            self.loader.epoch += 1  # what its ``for`` loop would have counted

    def _out_of_order(self, index: int) -> NoReturn:
        why = (
            "its sampler makes several batches from each image-batch"
            if getattr(self.loader, "sampler", None) is not None
            else f"{type(self.loader).__name__} is not a DatasetLoader"
        )
        raise RuntimeError(
            f"to_keras: keras asked for batch {index} of the epoch, but this loader makes its batches in "
            f"sequence ({why}) and the next one is batch {self._produced}; pass shuffle=False to "
            "model.fit (shuffle with the loader instead: DatasetLoader(shuffle=True))"
        )

    # -- batches -------------------------------------------------------------------------------------
    def _next_batch(self) -> tuple[Any, Any]:
        assert self._iter is not None, "_next_batch outside an epoch served in order"
        try:
            x, y = next(self._iter)
        except StopIteration:
            raise IndexError(
                f"to_keras: the loader's epoch ended after {self._produced} batches but its length is "
                f"{self.n_batches} (is the loader's len exact?)"
            ) from None
        self._produced += 1
        if self._produced == self.n_batches and next(self._iter, _END) is not _END:
            raise IndexError(
                f"to_keras: the loader's epoch has more batches than its length {self.n_batches} (is the "
                "loader's len exact?)"
            )
        return as_keras_batch(*move_channels(x, y, self.source, self.target))

    def _make(self, index: int) -> tuple[Any, Any]:
        if self._iter is not None and index == self._produced:
            return self._next_batch()
        if self._random is None:
            self._out_of_order(index)
        assert self._epoch is not None, "_make before _begin"
        x, y = self._random(self._epoch, index)
        return as_keras_batch(*move_channels(x, y, self.source, self.target))

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        index = int(index)
        if not 0 <= index < self.n_batches:
            raise IndexError(f"to_keras: batch index {index} out of range for {self.n_batches} batches")
        with self._lock:
            if self._epoch is not None and len(self._served) >= self.n_batches:
                self._close()  # every item served (indexing by hand): the next epoch
            if index in self._kept:
                batch = self._kept.pop(index) if self._begun else self._kept[index]
            elif self._last is not None and self._last[0] == index:
                batch = self._last[1]
            else:
                if self._epoch is None:
                    self._begin(index)
                batch = self._make(index)
                if not self._begun and index < _PEEK:
                    self._kept[index] = batch
            self._served.add(index)
            self._last = (index, batch)
            return batch

    def on_epoch_begin(self) -> None:
        with self._lock:
            self._begun = True
            self._served.clear()  # keras' epoch starts here; the items it peeked at are served again

    def on_epoch_end(self) -> None:
        """Finish the loader epoch, unless only the shapes were read (keras' reset after peeking)."""
        with self._lock:
            peeked_only = not self._begun and self._epoch is not None and self._served <= set(self._kept)
            if not peeked_only:
                self._close()

    def __del__(self) -> None:
        try:
            self._close()
        except Exception:
            pass
