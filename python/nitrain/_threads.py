"""How many threads the Rust kernels use."""

import os

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


def _fresh_pool_after_fork() -> None:
    """A forked child (``multiprocessing`` / torch DataLoader workers with 'fork', the Linux default)
    inherits the parent's kernel thread pool but not its threads: the child's first kernel would wait on
    them forever. Give the child a pool of its own, of the parent's size."""
    _core.set_num_threads(_core.num_threads())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_pool_after_fork)
