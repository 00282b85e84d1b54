"""tf.data adapter: a loader's numpy ``(x, y)`` batches as a ``tf.data.Dataset`` with an exact signature.

tensorflow is imported by ``to_tf_dataset`` only (``pip install 'nitrain[tensorflow]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nitrain._frameworks import require_tensorflow
from nitrain._layout import check_channels, first_batch, layout_of, move_channels

_END = object()


def _spec(tf: Any, a: Any, what: str) -> Any:
    a = np.asarray(a)
    if a.ndim < 1:
        raise ValueError(f"to_tensorflow: {what} must have a batch axis, got a scalar")
    return tf.TensorSpec(shape=(None, *a.shape[1:]), dtype=tf.as_dtype(a.dtype))


def to_tf_dataset(loader: Any, prefetch: int | str | None = "auto", channels: str | None = None) -> Any:
    """``loader`` (a DatasetLoader or any re-iterable of numpy ``(x, y)`` batches) as a ``tf.data.Dataset``.

    Each iteration of the dataset runs one ``for`` loop over the loader (one seeded loader epoch), so
    ``model.fit(ds, epochs=k)`` trains on k loader epochs. The ``element_spec`` is ``(x, y)`` with x a
    tuple for several inputs; every tensor's dtype and shape are those of the first batch, the batch axis
    None (the last batch may be short). When the loader has a length, that is the dataset's cardinality
    (keras then knows the steps per epoch from the start), and every epoch is checked against it: one
    that ends early or runs long raises an error instead of losing or dropping batches (a DatasetLoader's
    length is exact, counted from each record's shape; with ``shuffle=True`` and images of different shapes
    the count can change from epoch to epoch, which this check then reports). ``prefetch``: 'auto'
    (``tf.data.AUTOTUNE``), a number of batches, or 0 / None for none. ``channels``: 'first', 'last' or
    None, as in ``DatasetLoader.to_torch``.
    """
    tf = require_tensorflow("to_tensorflow")
    target = check_channels("to_tensorflow", channels)
    if prefetch not in ("auto", None) and (
        isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0
    ):
        raise ValueError(f"to_tensorflow: prefetch must be 'auto', an integer >= 0 or None, got {prefetch!r}")
    source = layout_of(loader)
    try:
        n = int(len(loader))
    except TypeError:  # no length: keras learns the steps from the first epoch
        n = None

    def as_batch(x: Any, y: Any) -> tuple[Any, Any]:
        x, y = move_channels(x, y, source, target)
        return (tuple(x) if isinstance(x, list | tuple) else x), y

    def mismatch(what: str) -> ValueError:
        return ValueError(
            f"to_tensorflow: the loader's epoch {what} but len(loader) is {n}, the dataset's cardinality "
            "(with shuffled images of different shapes, the batch count can change between epochs)"
        )

    def batches() -> Iterator[tuple[Any, Any]]:
        if n is None:
            for x, y in loader:
                yield as_batch(x, y)
            return
        it = iter(loader)
        try:
            for k in range(n):
                batch: Any = next(it, _END)
                if batch is _END:
                    raise mismatch(f"ended after {k} batches")
                if k == n - 1 and next(it, _END) is not _END:  # the epoch must end here
                    raise mismatch("has more batches")
                yield as_batch(*batch)
        finally:
            if hasattr(it, "close"):
                it.close()  # stops a DatasetLoader's background thread

    first = first_batch(loader)
    if first is None:
        raise ValueError(f"to_tensorflow: the loader ({type(loader).__name__}) served no batches")
    x0, y0 = as_batch(*first)
    if isinstance(x0, tuple):
        x_spec = tuple(_spec(tf, v, f"x[{k}]") for k, v in enumerate(x0))
    else:
        x_spec = _spec(tf, x0, "x")
    ds = tf.data.Dataset.from_generator(batches, output_signature=(x_spec, _spec(tf, y0, "y")))
    if n is not None:
        ds = ds.apply(tf.data.experimental.assert_cardinality(n))
    if prefetch == "auto":
        ds = ds.prefetch(tf.data.AUTOTUNE)
    elif prefetch:
        ds = ds.prefetch(prefetch)
    return ds
