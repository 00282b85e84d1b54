"""How many threads the Rust kernels use."""

from nitrain import _core


def get_num_threads() -> int:
    """Number of threads the kernels run on (``NITRAIN_NUM_THREADS``, else the CPU count)."""
    return _core.num_threads()


def set_num_threads(n: int | None = None) -> int:
    """Run the kernels on ``n`` threads (``None``: back to ``NITRAIN_NUM_THREADS`` or the CPU count).

    Results do not depend on the thread count; only speed does.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_num_threads: n must be a positive integer or None, got {n!r}")
    return _core.set_num_threads(n)
