"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Row:
    workload: str
    method: str
    items_per_s: float
    gb_per_s: float
    note: str = ""


@contextlib.contextmanager
def recycling_off():
    """Within: nitrain keeps no freed buffers, so every new image or batch is fresh memory."""
    from nitrain import set_buffer_pool_limit

    old = set_buffer_pool_limit(0)
    try:
        yield
    finally:
        set_buffer_pool_limit(old)


def best_rate(fn: Callable[[], int], repeats: int = 3, min_time: float = 0.0) -> float:
    """Run ``fn`` (which returns how many items it produced) ``repeats`` times; the best items/second."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        items = fn()
        while time.perf_counter() - start < min_time:
            items += fn()
        best = max(best, items / (time.perf_counter() - start))
    return best


def memcpy_gb_per_s(nbytes: int = 64 * 2**20, repeats: int = 7) -> float:
    """The machine's copy bandwidth as numpy sees it: bytes copied per second by ``np.copyto``."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = max(best, src.nbytes / (time.perf_counter() - start))
    return best / 1e9


def table(rows: list[Row], reference: dict[str, float], ceiling: float) -> str:
    """A markdown table: rate, bandwidth, share of memcpy, and nitrain's speed-up over each method."""
    lines = [
        "| workload | method | items/s | GB/s written | % of memcpy | nitrain speed-up |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        ref = reference.get(r.workload)
        ratio = (
            "1.0x (reference)"
            if r.method == "nitrain"
            else (f"{ref / r.items_per_s:,.1f}x" if ref and r.items_per_s > 0 else "n/a")
        )
        note = f" ({r.note})" if r.note else ""
        lines.append(
            f"| {r.workload} | {r.method}{note} | {r.items_per_s:,.0f} | {r.gb_per_s:.2f} | "
            f"{100 * r.gb_per_s / ceiling:.0f}% | {ratio} |"
        )
    return "\n".join(lines)


def count_items(
    batches: Iterable[Any], shape_of: Callable[[Any], tuple[int, ...]]
) -> tuple[int, tuple[int, ...]]:
    """Items served by ``batches`` (the first axis of each batch, its shape from ``shape_of``) and the
    first batch's shape."""
    n = 0
    first: tuple[int, ...] = ()
    for b in batches:
        shape = tuple(shape_of(b))
        first = first or shape
        n += shape[0]
    return n, first
