"""tf.data adapter: a loader's numpy ``(x, y)`` batches as a ``tf.data.Dataset`` with an exact signature.

tensorflow is imported by ``to_tf_dataset`` only (``pip install 'nitrain[tensorflow]'``).
"""

from __future__ import annotations

import numpy as np

from nitrain._frameworks import require_tensorflow
from nitrain.loaders.loader import check_channels, first_batch, move_channels


def _spec(tf, a, what: str):
    a = np.asarray(a)
    if a.ndim < 1:
        raise ValueError(f"to_tensorflow: {what} must have a batch axis, got a scalar")
    return tf.TensorSpec(shape=(None, *a.shape[1:]), dtype=tf.as_dtype(a.dtype))


def to_tf_dataset(loader, prefetch="auto", channels: str | None = None):
    """``loader`` (a DatasetLoader or any re-iterable of numpy ``(x, y)`` batches) as a ``tf.data.Dataset``.

    Each iteration of the dataset runs one ``for`` loop over the loader (one seeded loader epoch). The
    ``element_spec`` is ``(x, y)`` with x a tuple for several inputs; every tensor's dtype and shape are
    those of the first batch, the batch axis None (the last batch may be short). ``prefetch``: 'auto'
    (``tf.data.AUTOTUNE``), a number of batches, or 0 / None for none. ``channels``: 'first', 'last' or
    None, as in ``DatasetLoader.to_torch``.
    """
    tf = require_tensorflow("to_tensorflow")
    target = check_channels("to_tensorflow", channels)
    if prefetch not in ("auto", None) and (
        isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0
    ):
        raise ValueError(f"to_tensorflow: prefetch must be 'auto', an integer >= 0 or None, got {prefetch!r}")
    source = getattr(loader, "channel", "last")

    def batches():
        for x, y in loader:
            x, y = move_channels(x, y, source, target)
            yield (tuple(x) if isinstance(x, list | tuple) else x), y

    first = first_batch(loader)
    if first is None:
        raise ValueError(f"to_tensorflow: the loader ({type(loader).__name__}) served no batches")
    x0, y0 = first
    x0, y0 = move_channels(x0, y0, source, target)
    if isinstance(x0, list | tuple):
        x_spec = tuple(_spec(tf, v, f"x[{k}]") for k, v in enumerate(x0))
    else:
        x_spec = _spec(tf, x0, "x")
    ds = tf.data.Dataset.from_generator(batches, output_signature=(x_spec, _spec(tf, y0, "y")))
    if getattr(loader, "sampler", "none") is None:  # a DatasetLoader without a sampler: len() is exact
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(loader)))
    if prefetch == "auto":
        ds = ds.prefetch(tf.data.AUTOTUNE)
    elif prefetch:
        ds = ds.prefetch(prefetch)
    return ds
