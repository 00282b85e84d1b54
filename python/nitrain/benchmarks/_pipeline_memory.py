"""The pipeline benchmark's memory runs: peak RSS of an epoch in a fresh process, and the in-memory slice
epoch against a numpy gather loop."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

from nitrain.benchmarks._timing import count_items


def _status_mib(field: str) -> float | None:
    """A memory field of /proc/self/status (Linux: 'VmRSS', 'VmHWM') in MiB, or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_mib() -> float:
    """The process's current RSS (Linux), else its peak so far, in MiB."""
    now = _status_mib("VmRSS")
    return _peak_mib() if now is None else now


def _peak_mib() -> float:
    """The process's peak RSS in MiB: VmHWM on Linux, else ``ru_maxrss``. On Linux ``ru_maxrss`` is kept
    across fork and exec, so a fresh process started by a large one reports at least its parent's peak;
    VmHWM belongs to the process's own memory map."""
    peak = _status_mib("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS, KiB elsewhere


def memory_epoch(n_records: int, size: int, template: str, num_workers: int | None = None) -> dict:
    """One epoch of the slice pipeline over a MemoryDataset of ``n_records`` ``size``^3 crops of the
    template (a .npy file; each crop its own intensity scale and position): RSS before it, peak RSS
    after, the data size."""
    from nitrain import datasets
    from nitrain.benchmarks.pipeline import MEMORY_POOL_BYTES, _subject, nitrain_loader, slice_sampler

    base = np.load(template)
    rng = np.random.default_rng(0)
    xs = []
    for i in range(n_records):
        lo = [int(rng.integers(0, d - size + 1)) for d in base.shape]
        crop = base[lo[0] : lo[0] + size, lo[1] : lo[1] + size, lo[2] : lo[2] + size]
        xs.append(_subject(crop, i, n_records))
    ds = datasets.MemoryDataset(xs, [20.0 + i for i in range(n_records)])
    del xs, base
    before = _rss_mib()
    loader = nitrain_loader(ds, slice_sampler(), num_workers, pool_bytes=MEMORY_POOL_BYTES)
    count, _ = count_items(loader, lambda b: b[0].shape)
    return {
        "records": n_records,
        "data_mib": n_records * size**3 * 4 / 2**20,
        "before_mib": before,
        "peak_mib": _peak_mib(),
        "slices": count,
    }


def memory_epoch_in_subprocess(n_records: int, size: int, template: Path, num_workers: int | None) -> dict:
    import nitrain

    env = dict(os.environ)
    root = str(Path(nitrain.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    code = (
        "import json; from nitrain.benchmarks._pipeline_memory import memory_epoch; "
        f"print(json.dumps(memory_epoch({n_records}, {size}, {str(template)!r}, {num_workers!r})))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"memory epoch of {n_records} records failed: {res.stderr.strip()[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- the report ------------------------------------------------------------------------------------------


def memory_slices(base: np.ndarray, n_volumes: int = 4, repeats: int = 3) -> list[tuple[str, dict]]:
    """An in-memory slice epoch with no transforms: nitrain's DatasetLoader (SliceSampler of 32, axis 2,
    shuffled) against a plain numpy loop that gathers the same number of shuffled axis-2 slices into a
    fresh (32, H, W, 1) batch each. Best of ``repeats`` epochs each."""
    import ants

    from nitrain import datasets, loaders, samplers
    from nitrain.benchmarks.pipeline import SLICE_BATCH, _timed

    vols = [np.asfortranarray(base * (1 + 0.1 * i), dtype=np.float32) for i in range(n_volumes)]
    images = [ants.from_numpy(v) for v in vols]
    ds = datasets.MemoryDataset(images, [float(i) for i in range(n_volumes)])
    loader = loaders.DatasetLoader(
        ds, batch_size=n_volumes, sampler=samplers.SliceSampler(SLICE_BATCH, axis=2, shuffle=True), seed=0
    )

    def numpy_epoch() -> tuple[int, tuple]:
        rng = np.random.default_rng(0)
        index = np.array([(v, k) for v in range(n_volumes) for k in range(vols[0].shape[2])])
        index = index[rng.permutation(len(index))]
        n, first = 0, ()
        for start in range(0, len(index), SLICE_BATCH):
            part = index[start : start + SLICE_BATCH]
            out = np.empty((len(part), *vols[0].shape[:2], 1), np.float32)
            for j, (v, k) in enumerate(part):
                out[j, ..., 0] = vols[v][:, :, k]
            n += len(part)
            first = first or out.shape
        return n, first

    def nitrain_epoch() -> tuple[int, tuple]:
        return count_items(loader, lambda b: b[0].shape)

    rows = []
    for name, run in (
        ("nitrain DatasetLoader + SliceSampler", nitrain_epoch),
        ("numpy gather loop", numpy_epoch),
    ):
        best = max((_timed(run) for _ in range(repeats)), key=lambda r: r["rate"])
        rows.append((name, best))
    return rows
