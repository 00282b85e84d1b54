"""Slice and block sampling: nitrain's kernels against numpy, TorchIO and MONAI, with memcpy as the ceiling.

Data: four 197x233x189 float32 volumes held as ANTs images (the MNI152 T1 template from nilearn and three
perturbed copies when nilearn is installed, random volumes otherwise).
"""

from __future__ import annotations

import os
import platform
import warnings

import numpy as np

from nitrain.benchmarks._timing import Row, best_rate, memcpy_gb_per_s, recycling_off, table
from nitrain.samplers._extract import extract_blocks, extract_slices, random_origins

SHAPE = (197, 233, 189)
BATCH = 32


def _volumes(seed: int = 0):
    import ants

    rng = np.random.default_rng(seed)
    source = "random"
    try:
        from nilearn.datasets import load_mni152_template

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = np.asanyarray(load_mni152_template(resolution=1).dataobj, dtype=np.float32)
        source = "MNI152 T1 (nilearn) + 3 perturbed copies"
    except Exception:
        base = rng.random(SHAPE, dtype=np.float32)
    vols = [base] + [
        base * rng.uniform(0.8, 1.2) + rng.normal(0, 5, SHAPE).astype(np.float32) for _ in range(3)
    ]
    return [ants.from_numpy(np.asfortranarray(v, dtype=np.float32)) for v in vols], source


def _slice_index(views, axis: int, rng) -> np.ndarray:
    index = np.array([(i, k) for i, v in enumerate(views) for k in range(v.shape[axis])], dtype=np.int64)
    return index[rng.permutation(len(index))]


def _numpy_fancy(views, batch: np.ndarray, axis: int) -> np.ndarray:
    """What a numpy user writes: per image in the batch, fancy-index its slices, move the axis first."""
    plane = tuple(d for a, d in enumerate(views[0].shape) if a != axis)
    out = np.empty((len(batch), *plane, 1), np.float32)
    for i in np.unique(batch[:, 0]):
        rows = np.flatnonzero(batch[:, 0] == i)
        sel = [slice(None)] * 3
        sel[axis] = batch[rows, 1]
        out[rows, ..., 0] = np.moveaxis(views[i][tuple(sel)], axis, 0)
    return out


def _numpy_loop(views, batch: np.ndarray, axis: int) -> np.ndarray:
    """The strongest plain-numpy version: one strided copy per slice into a preallocated batch."""
    plane = tuple(d for a, d in enumerate(views[0].shape) if a != axis)
    out = np.empty((len(batch), *plane, 1), np.float32)
    for j, (i, k) in enumerate(batch):
        sel = [slice(None)] * 3
        sel[axis] = k
        out[j, ..., 0] = views[i][tuple(sel)]
    return out


def _torchio(views, patch, n_items: int, batch_size: int = BATCH):
    """TorchIO's patch pipeline: a Queue fed by a UniformSampler, read through its loader."""
    import torch
    import torchio as tio

    subjects = [tio.Subject(img=tio.ScalarImage(tensor=torch.from_numpy(v[None]))) for v in views]
    per_volume = max(1, n_items // len(views))
    queue = tio.Queue(
        tio.SubjectsDataset(subjects),
        max_length=per_volume * len(views),
        samples_per_volume=per_volume,
        sampler=tio.UniformSampler(patch),
        num_workers=0,
        shuffle_subjects=True,
        shuffle_patches=True,
        verbose=False,
    )
    loader = tio.SubjectsLoader(queue, batch_size=batch_size, num_workers=0)

    def run():
        return sum(b["img"][tio.DATA].shape[0] for b in loader)

    return run


def _monai_crops(views, size, n_items: int):
    from monai.transforms import RandSpatialCropSamples

    per_volume = max(1, n_items // len(views))
    crop = RandSpatialCropSamples(roi_size=size, num_samples=per_volume, random_size=False)
    crop.set_random_state(0)
    arrays = [v[None] for v in views]

    def run():
        n = 0
        for a in arrays:
            samples = crop(a)
            for s in range(0, len(samples), BATCH):
                batch = np.stack([np.asarray(x) for x in samples[s : s + BATCH]])
                n += batch.shape[0]
        return n

    return run


def run_sampling(quick: bool = False, peers: bool = True, seed: int = 0) -> str:
    """Run the sampling workloads; return a markdown report with the ratio table."""
    images, source = _volumes(seed)
    views = [img.view() for img in images]  # zero-copy, Fortran-ordered
    rng = np.random.default_rng(seed)
    ceiling = memcpy_gb_per_s()
    rows: list[Row] = []
    reference: dict[str, float] = {}
    skipped: list[str] = []
    repeats = 1 if quick else 3
    slice_bytes = {a: 4 * int(np.prod([d for j, d in enumerate(SHAPE) if j != a])) for a in range(3)}

    for axis in (2, 0, 1):
        workload = f"slices axis {axis}, shuffled, batch {BATCH}"
        index = _slice_index(views, axis, rng)
        if quick:
            index = index[: 8 * BATCH]
        batches = [index[s : s + BATCH] for s in range(0, len(index), BATCH)]
        few = batches[: 2 if quick else 6]  # the slow baselines run on a subset; rates are per item
        nb = slice_bytes[axis]

        def nitrain_run(batches=batches, axis=axis):
            return sum(len(extract_slices(views, b, axis, channel="last")) for b in batches)

        rate = best_rate(nitrain_run, repeats)
        reference[workload] = rate
        rows.append(Row(workload, "nitrain", rate, rate * nb / 1e9))
        with recycling_off():
            r = best_rate(nitrain_run, repeats)
        rows.append(Row(workload, "nitrain, fresh batches", r, r * nb / 1e9))
        for name, fn in (("numpy fancy indexing", _numpy_fancy), ("numpy per-slice copy", _numpy_loop)):

            def numpy_run(fn=fn, few=few, axis=axis):
                return sum(len(fn(views, b, axis)) for b in few)

            r = best_rate(numpy_run, repeats)
            rows.append(Row(workload, name, r, r * nb / 1e9))
        if peers:
            n_items = 2 * BATCH  # TorchIO and MONAI are slow per item; a fixed count keeps the run short
            for name, make in (
                (
                    "TorchIO Queue+UniformSampler",
                    lambda n=n_items, a=axis: _torchio(
                        views, [d if j != a else 1 for j, d in enumerate(SHAPE)], n
                    ),
                ),
                (
                    "MONAI RandSpatialCropSamples",
                    lambda n=n_items, a=axis: _monai_crops(
                        views, [d if j != a else 1 for j, d in enumerate(SHAPE)], n
                    ),
                ),
            ):
                try:
                    run = make()
                except ImportError as e:
                    skipped.append(f"{name}: not installed ({e.name})")
                    continue
                r = best_rate(run, repeats)
                rows.append(Row(workload, name, r, r * nb / 1e9, "random positions"))

    workload = "64 random 64^3 blocks"
    block = (64, 64, 64)
    n_blocks = 16 if quick else 64
    origins = np.column_stack(
        [rng.integers(0, len(views), n_blocks), random_origins(SHAPE, block, n_blocks, rng)]
    )
    nb = 4 * 64**3

    def nitrain_blocks():
        return len(extract_blocks(views, origins, block, channel="last"))

    def numpy_blocks():
        out = np.empty((n_blocks, *block, 1), np.float32)
        for j, (i, a, b, c) in enumerate(origins):
            out[j, ..., 0] = views[i][a : a + 64, b : b + 64, c : c + 64]
        return n_blocks

    rate = best_rate(nitrain_blocks, repeats)
    reference[workload] = rate
    rows.append(Row(workload, "nitrain", rate, rate * nb / 1e9))
    with recycling_off():
        r = best_rate(nitrain_blocks, repeats)
    rows.append(Row(workload, "nitrain, fresh batches", r, r * nb / 1e9))
    r = best_rate(numpy_blocks, repeats)
    rows.append(Row(workload, "numpy slicing + copy", r, r * nb / 1e9))
    if peers:
        try:
            r = best_rate(_monai_crops(views, list(block), n_blocks), repeats)
            rows.append(Row(workload, "MONAI RandSpatialCropSamples", r, r * nb / 1e9))
        except ImportError as e:
            skipped.append(f"MONAI: not installed ({e.name})")
        try:
            import torchio as tio  # noqa: F401

            r = best_rate(_torchio(views, block, n_blocks, batch_size=n_blocks), repeats)
            rows.append(Row(workload, "TorchIO Queue+UniformSampler", r, r * nb / 1e9))
        except ImportError as e:
            skipped.append(f"TorchIO: not installed ({e.name})")

    from nitrain import get_num_threads

    header = [
        "## Sampling benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, nitrain on {get_num_threads()} threads; "
        f"memcpy (numpy copyto) {ceiling:.2f} GB/s. Data: four 197x233x189 float32 ANTs images ({source}), "
        "read through zero-copy Fortran-ordered `image.view()`. Batches are (N, H, W, 1) float32 arrays: "
        "numpy's are allocated fresh; nitrain's come from its recycled buffers, as in a training loop "
        "that frees each batch ('fresh batches': with recycling off, `NITRAIN_BUFFER_POOL_MB=0`). Best of "
        f"{repeats} runs{' (quick mode: fewer items)' if quick else ''}.",
        "",
    ]
    footer = [""] + [f"- skipped {s}" for s in sorted(set(skipped))]
    return "\n".join(header) + "\n" + table(rows, reference, ceiling) + "\n" + "\n".join(footer)
