"""Zero-copy bridges between ANTs images and numpy buffers.

A kernel writes its result into a Fortran-ordered numpy array; the array is then wrapped as an ANTs image
without copying, the way antspyx's own ``from_numpy`` does internally (``ants.lib.fromNumpy<T><D>`` over
the transposed, C-contiguous view, the array kept alive on the image). This relies on antspyx internals:
``tests/transforms/test_intensity.py`` checks that the memory really is shared, so an antspyx upgrade
that changes this fails loudly instead of silently copying.

The arrays come from ``nitrain._memory``'s recycled buffers. As with any antspyx image, ``image.view()``
is valid only while ``image`` is alive: the view does not keep the image's memory.
"""

from __future__ import annotations

import numpy as np

from nitrain import _core

_PIXEL_CODES = {
    np.dtype(np.float32): "F",
    np.dtype(np.float64): "D",
    np.dtype(np.uint8): "UC",
    np.dtype(np.uint32): "UI",
}
#: the numpy dtypes of ANTs' pixel types ('float', 'double', 'unsigned char', 'unsigned int')
PIXEL_TYPES = frozenset(_PIXEL_CODES)


def empty_like_image(image, dtype=np.float32):
    """A new ANTs image with ``image``'s shape, spacing, origin and direction, and its writable,
    Fortran-ordered pixel array (shared memory). Contents are uninitialised."""
    import ants

    dtype = np.dtype(dtype)
    if dtype not in _PIXEL_CODES:
        raise TypeError(f"empty_like_image: dtype must be float32, float64, uint8 or uint32, got {dtype}")
    if getattr(image, "components", 1) != 1:
        raise ValueError(
            f"empty_like_image: multi-channel images are not supported ({image.components} components)"
        )
    shape = tuple(image.shape)
    arr = _core.empty_array(list(shape), dtype.name, True)  # a recycled buffer when one is free
    reversed_view = arr.T  # C-contiguous, axes reversed: what ITK's import expects
    make = getattr(ants.lib, f"fromNumpy{_PIXEL_CODES[dtype]}{len(shape)}")
    out = ants.from_pointer(make(reversed_view, reversed_view.shape[::-1]))
    out._ndarr = reversed_view  # the image must keep its buffer alive
    out.set_spacing(tuple(image.spacing))
    out.set_origin(tuple(image.origin))
    out.set_direction(np.asarray(image.direction))
    return out, arr
