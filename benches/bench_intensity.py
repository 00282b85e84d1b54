"""Intensity normalisation: nitrain transforms vs the numpy formulas, on a 197x233x189 float32 ANTs image.

Run: python benches/bench_intensity.py   (prints a ratio table; part of issue 3, still growing)
"""

import time

import ants
import numpy as np

from nitrain import get_num_threads
from nitrain import transforms as tx


def best(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def numpy_range(img):
    a = img.numpy()
    lo, hi = a.min(), a.max()
    return ants.from_numpy(
        (a - lo) / (hi - lo), spacing=img.spacing, origin=img.origin, direction=img.direction
    )


def numpy_zscore(img):
    a = img.numpy()
    return ants.from_numpy(
        (a - a.mean()) / a.std(), spacing=img.spacing, origin=img.origin, direction=img.direction
    )


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    img = ants.from_numpy(np.asfortranarray(rng.random((197, 233, 189), dtype=np.float32) * 1000))
    rows = [
        ("RangeNormalize", best(lambda: tx.RangeNormalize()(img)), best(lambda: numpy_range(img))),
        ("NormalizeIntensity", best(lambda: tx.NormalizeIntensity()(img)), best(lambda: numpy_zscore(img))),
    ]
    print(f"197x233x189 float32 ANTs image in and out, best of 5, nitrain on {get_num_threads()} threads")
    print("| transform | nitrain ms | numpy formula ms (image in, image out) | nitrain speed-up |")
    print("|---|---:|---:|---:|")
    for name, ours, theirs in rows:
        print(f"| {name} | {ours * 1e3:.1f} | {theirs * 1e3:.1f} | {theirs / ours:.1f}x |")
