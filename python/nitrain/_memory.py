"""Recycled image buffers.

Every transform that computes a new image writes it into a fresh buffer. A fresh allocation of tens of
megabytes comes from the operating system as unmapped pages, and touching each page the first time costs
more than normalising the image. So when an image made by nitrain is freed, its buffer is kept and handed to
the next new image of a similar size. At most ``limit`` bytes are kept (256 MiB unless
``NITRAIN_BUFFER_POOL_MB`` says otherwise); image buffers under 1 MiB are left to the allocator. The same
limit also bounds the work buffers the kernels keep between calls: the kept bytes of both count against it.
"""

from __future__ import annotations

import math
import os

from nitrain import _core


def set_buffer_pool_limit(limit: int) -> int:
    """Keep at most ``limit`` bytes of freed image buffers for reuse (0: keep none, and free those kept).
    Returns the previous limit."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"set_buffer_pool_limit: limit must be a number of bytes >= 0, got {limit!r}")
    old = _core.buffer_pool()[0]
    _core.buffer_pool(limit)
    return old


def buffer_pool_state() -> dict:
    """``{'limit': bytes, 'kept_bytes': bytes, 'kept_buffers': n}``, image and work buffers together."""
    limit, held, count = _core.buffer_pool()
    return {"limit": limit, "kept_bytes": held, "kept_buffers": count}


def _limit_from_env() -> None:
    raw = os.environ.get("NITRAIN_BUFFER_POOL_MB")
    if raw is None:
        return
    try:
        mb = float(raw)
    except ValueError:
        mb = math.nan
    if not mb >= 0:  # also NaN
        raise ValueError(f"NITRAIN_BUFFER_POOL_MB must be a number of MiB >= 0, got {raw!r}")
    set_buffer_pool_limit(int(mb * 2**20))


_limit_from_env()
