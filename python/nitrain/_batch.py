"""``Batch`` (``nitrain.loaders.Batch``): what a loader and a sampler serve. It is the ``(x, y)`` pair
(it unpacks as one) and says where each item came from."""

from __future__ import annotations

from typing import Any

import numpy as np


class Batch(tuple):
    """One batch: ``x, y = batch`` as a pair, plus

    - ``records``: for each item, the index of the dataset record it was made from (an int64 array, one
      entry per row of x);
    - ``origins``: for each item of a sampler, its place in the record's image after the record's
      transforms: the sampler's item row without the record column (the corner of a block or patch, the
      slice index along the sampler's axis, the slice index and the patch corner for slice patches).
      None for whole images;
    - ``channel``: where the channel axis of x (and of image targets) is: 'first' (axis 1), 'last', or
      None (no channel axis).

    x is a list of arrays for several inputs; y is an array (scalars per item, or images).
    """

    records: np.ndarray
    origins: np.ndarray | None
    channel: str | None

    def __new__(
        cls,
        x: Any,
        y: Any,
        records: Any = None,
        origins: np.ndarray | None = None,
        channel: str | None = None,
    ) -> Batch:
        self = super().__new__(cls, (x, y))
        n = len(x[0]) if isinstance(x, list | tuple) else len(x)
        self.records = (
            np.full(n, -1, dtype=np.int64) if records is None else np.asarray(records, dtype=np.int64)
        )
        self.origins = origins
        self.channel = channel
        return self

    @property
    def x(self) -> Any:
        return self[0]

    @property
    def y(self) -> Any:
        return self[1]

    def __reduce__(self) -> tuple[Any, ...]:
        return (Batch, (self[0], self[1], self.records, self.origins, self.channel))

    def __repr__(self) -> str:
        def shape(v: Any) -> Any:
            return [shape(a) for a in v] if isinstance(v, list | tuple) else getattr(v, "shape", v)

        return (
            f"Batch(x={shape(self[0])}, y={shape(self[1])}, records={np.unique(self.records).tolist()}, "
            f"channel={self.channel!r})"
        )
