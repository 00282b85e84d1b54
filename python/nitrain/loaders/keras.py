"""keras adapter: a loader (any re-iterable of numpy ``(x, y)`` batches with a length) as a
``keras.utils.PyDataset``.

Importing this module imports keras (``pip install 'nitrain[tensorflow]'``); ``DatasetLoader.to_keras``
imports it only when called.
"""

from __future__ import annotations

import threading

from nitrain._frameworks import require_keras
from nitrain.loaders.loader import check_channels, move_channels

keras = require_keras("DatasetLoader.to_keras")

#: keras reads this many items to learn the shapes before an epoch begins (NUM_BATCHES_FOR_TENSOR_SPEC).
_PEEK = 2


def as_keras_batch(x, y):
    """keras wants several inputs as a tuple (a list would read as one input)."""
    return (tuple(x) if isinstance(x, list | tuple) else x), y


class KerasLoader(keras.utils.PyDataset):
    """Serve ``loader`` to keras: ``len`` is the loader's batches per epoch, and the items of one keras
    epoch are the batches of one loader epoch (its own seeded order and random transforms).

    The loader is a producer (one ``for`` loop = one epoch, batches made in sequence, the next one
    prepared in the background), not random access, so item ``i`` is the epoch's next batch: asked for
    in order (keras' ``shuffle=False``) item ``i`` is batch ``i`` exactly; in any other order (keras'
    default ``shuffle=True``, which only re-orders an order the loader already shuffled) each batch is
    still served once per epoch. Shuffle with the loader. The items keras reads to learn the shapes before
    the first epoch are kept and served again in that epoch, so no batch is lost or repeated and the
    loader's epochs line up with keras' epochs. Works with one worker (the default); several threads are
    serialised; ``use_multiprocessing`` is not supported (a loader keeps its own background thread).

    ``on_epoch_begin`` / ``on_epoch_end`` (called by keras around each epoch) bracket one loader epoch;
    asking for more items than an epoch has also starts the next one. ``channel`` is the layout
    served: ``channels`` ('first' / 'last') when given, else the loader's.
    """

    def __init__(self, loader, channels: str | None = None):
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
        self.source = getattr(loader, "channel", "last")
        self.target = check_channels("to_keras", channels)
        self.channel = self.source if channels is None else channels
        self.epochs_started = 0  # loader epochs this adapter has begun
        self._lock = threading.Lock()
        self._iter = None
        self._produced = 0
        self._kept: dict[int, tuple] = {}  # peeked items, served again once the epoch begins
        self._begun = False

    def __len__(self) -> int:
        return self.n_batches

    @property
    def num_batches(self):
        return self.n_batches

    def _close(self):
        if self._iter is not None and hasattr(self._iter, "close"):
            self._iter.close()  # stops a DatasetLoader's background thread
        self._iter, self._produced, self._begun = None, 0, False
        self._kept.clear()

    def _next_batch(self):
        if self._iter is None or self._produced >= self.n_batches:
            self._close()
            self._iter = iter(self.loader)
            self.epochs_started += 1
        try:
            x, y = next(self._iter)
        except StopIteration:
            raise IndexError(
                f"to_keras: the loader's epoch ended after {self._produced} batches but its length is "
                f"{self.n_batches} (do all records have the first record's shape?)"
            ) from None
        self._produced += 1
        return as_keras_batch(*move_channels(x, y, self.source, self.target))

    def __getitem__(self, index):
        index = int(index)
        if not 0 <= index < self.n_batches:
            raise IndexError(f"to_keras: batch index {index} out of range for {self.n_batches} batches")
        with self._lock:
            if index in self._kept:
                return self._kept.pop(index) if self._begun else self._kept[index]
            batch = self._next_batch()
            if not self._begun and index < _PEEK:
                self._kept[index] = batch
            return batch

    def on_epoch_begin(self):
        with self._lock:
            self._begun = True

    def on_epoch_end(self):
        """Finish the loader epoch, unless only the shapes were read (keras' reset after peeking)."""
        with self._lock:
            peeked_only = not self._begun and self._produced <= len(self._kept)
            if not peeked_only:
                self._close()

    def __del__(self):
        try:
            self._close()
        except Exception:
            pass
