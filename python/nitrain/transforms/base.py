"""The transform protocol: an ANTs image in, an ANTs image out."""

from __future__ import annotations

import numpy as np


class BaseTransform:
    """Base class of every nitrain transform.

    Subclass it with an ``__init__`` that stores the parameters and a ``__call__(image)`` that returns the
    transformed ``ants.ANTsImage``. ``sample(image, n)`` then returns ``n`` independent draws (identical
    for a deterministic transform).
    """

    def __call__(self, image):
        raise NotImplementedError(f"{type(self).__name__} must define __call__(image)")

    def sample(self, image, n: int = 1, seed=None) -> list:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"{type(self).__name__}.sample: n must be a positive integer, got {n!r}")
        return [self(image) for _ in range(int(n))]

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
