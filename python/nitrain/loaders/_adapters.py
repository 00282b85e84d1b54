"""The loader's adapters to torch, keras and tf.data (each imports its framework only when called)."""

from __future__ import annotations

from typing import Any


class Adapters:
    """``to_torch``, ``to_keras`` and ``to_tensorflow`` of a ``DatasetLoader``."""

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
