"""One epoch of slice sampling with random noise: nitrain's DatasetLoader against TorchIO, MONAI, the
original nitrain 0.3.1 and a numpy reference, in one run on the same data.

Workload (issue 5): 16 in-memory 197x233x189 float32 volumes, image-batches of 4, all axis-2 slices in
shuffled sub-batches of 32 with a channel axis, Gaussian noise (sd 0.2) added to each volume per batch.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

SHAPE = (197, 233, 189)
N_VOLUMES = 16


def _volumes(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.asfortranarray(rng.random(SHAPE, dtype=np.float32)) for _ in range(n)]


def _rate(fn, items_hint=None) -> tuple[float, int]:
    start = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - start), n


def _nitrain(vols, ages):
    import ants

    from nitrain import datasets

    loader = _loader(datasets.MemoryDataset([ants.from_numpy(v) for v in vols], ages))
    return lambda: sum(len(y) for _, y in loader)


def _loader(ds):
    """The benchmark's loader: image-batches of 4, every axis-2 slice shuffled in sub-batches of 32,
    Gaussian noise sd 0.2."""
    from nitrain import loaders, samplers
    from nitrain import transforms as tx

    return loaders.DatasetLoader(
        ds,
        batch_size=4,
        shuffle=True,
        sampler=samplers.SliceSampler(32, axis=2, shuffle=True),
        x_transforms=[tx.RandomNoise(sd=0.2)],
        seed=0,
    )


def _numpy(vols, ages):
    rng = np.random.default_rng(0)

    def run():
        n = 0
        for s in range(0, len(vols), 4):
            batch = [v + rng.standard_normal(v.shape, dtype=np.float32) * 0.2 for v in vols[s : s + 4]]
            idx = np.array([(i, k) for i in range(len(batch)) for k in range(SHAPE[2])])
            idx = idx[rng.permutation(len(idx))]
            for b in range(0, len(idx), 32):
                part = idx[b : b + 32]
                out = np.empty((len(part), SHAPE[0], SHAPE[1], 1), np.float32)
                for j, (i, k) in enumerate(part):
                    out[j, ..., 0] = batch[i][:, :, k]
                n += len(part)
        return n

    return run


def _torchio(vols, ages, per_volume):
    import torch
    import torchio as tio

    subjects = [
        tio.Subject(img=tio.ScalarImage(tensor=torch.from_numpy(v[None])), age=a)
        for v, a in zip(vols, ages, strict=True)
    ]
    ds = tio.SubjectsDataset(subjects, transform=tio.RandomNoise(std=(0.2, 0.2)))
    queue = tio.Queue(
        ds,
        max_length=per_volume * 4,
        samples_per_volume=per_volume,
        sampler=tio.UniformSampler((SHAPE[0], SHAPE[1], 1)),
        num_workers=0,
        verbose=False,
    )
    loader = tio.SubjectsLoader(queue, batch_size=32, num_workers=0)
    return lambda: sum(b["img"][tio.DATA].shape[0] for b in loader)


def _monai(vols, ages, per_volume):
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose, RandGaussianNoised, RandSpatialCropSamplesd

    data = [{"img": v[None], "age": a} for v, a in zip(vols, ages, strict=True)]
    tf = Compose(
        [
            RandGaussianNoised(keys="img", prob=1.0, std=0.2),
            RandSpatialCropSamplesd(
                keys="img", roi_size=(SHAPE[0], SHAPE[1], 1), num_samples=per_volume, random_size=False
            ),
        ]
    )
    loader = DataLoader(Dataset(data, tf), batch_size=1, num_workers=0)
    return lambda: sum(b["img"].shape[0] for b in loader)


ORIGINAL = textwrap.dedent("""
    import json, time, numpy as np, ants
    from nitrain.samplers.slice import SliceSampler
    from nitrain.loaders.loader import convert_to_numpy, expand_image_dims
    rng = np.random.default_rng(0)
    shape, n = {shape}, {n}
    vols = [ants.from_numpy(np.asfortranarray(rng.random(shape, dtype=np.float32))) for _ in range(n)]
    ages = list(range(n))
    start = time.perf_counter(); count = 0
    for s in range(0, n, 4):
        x = [ants.add_noise_to_image(v, "additivegaussian", (0, 0.2)) for v in vols[s:s + 4]]
        # Scalar labels repeated per slice: the original SliceSampler raises IndexError with one label per
        # image (a known 0.3.1 defect), so it gets them pre-expanded.
        y = [a for a in ages[s:s + 4] for _ in range(shape[2])]
        for xb, yb in iter(SliceSampler(batch_size=32, axis=2, shuffle=True)(x, y)):
            xb = convert_to_numpy(expand_image_dims(xb, False))
            count += len(xb)
    print(json.dumps({{"rate": count / (time.perf_counter() - start), "count": count}}))
""")


def _original(n_volumes: int):
    py = os.environ.get("NITRAIN_ORIGINAL_PYTHON", str(Path.home() / ".cache/nitrain/orig-venv/bin/python"))
    if not Path(py).exists():
        return None, "not installed (set NITRAIN_ORIGINAL_PYTHON to a venv with nitrain==0.3.1)"
    script = ORIGINAL.format(shape=SHAPE, n=n_volumes)
    res = subprocess.run([py, "-c", script], capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        return None, f"failed: {res.stderr.strip().splitlines()[-1] if res.stderr else res.returncode}"
    return json.loads(res.stdout.strip().splitlines()[-1]), None


def _disk_epochs(n: int, cache: str | None, root: Path, home: Path) -> tuple[float, float, int]:
    """Slices/s of the first and second epoch over the .nii.gz cohort under ``root``."""
    from nitrain import datasets
    from nitrain import transforms as tx

    os.environ["NITRAIN_HOME"] = str(home)
    ds = datasets.FolderDataset(
        root,
        {"pattern": "sub-*/anat/*_T1w.nii.gz"},
        {"file": "participants.tsv", "column": "age"},
        x_transforms=[tx.RangeNormalize(0, 1)],
        cache=cache,
    )
    loader = _loader(ds)
    first, count = _rate(lambda: sum(len(y) for _, y in loader))
    second, _ = _rate(lambda: sum(len(y) for _, y in loader))
    return first, second, count


def run_disk(quick: bool = False) -> str:
    """The same epoch read from a FolderDataset of .nii.gz files (RangeNormalize as its fixed transform),
    first epoch against second, without a cache and with the memory and disk caches; and the time to get
    one record on a cache miss and a hit."""
    import tempfile

    from nitrain import datasets
    from nitrain import transforms as tx
    from nitrain.datasets.cache import DiskCache, MemoryCache

    n = 4 if quick else 8
    old_home = os.environ.get("NITRAIN_HOME")
    lines = [
        "### From disk",
        "",
        f"{n} phantom subjects at 197x233x189 as .nii.gz in a FolderDataset with `x_transforms="
        "[RangeNormalize(0, 1)]`; the loader as above. The first epoch decompresses, transforms and fills "
        "the cache; the second reads it.",
        "",
        "| dataset cache | epoch 1 slices/s | epoch 2 slices/s | epoch 2 / epoch 1 |",
        "|---|---:|---:|---:|",
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = datasets.make_phantom_cohort(Path(tmp) / "ds", n_subjects=n, seed=0, shape=SHAPE)
            for cache in (None, "memory", "disk"):
                first, second, _ = _disk_epochs(n, cache, root, Path(tmp) / f"home-{cache}")
                lines.append(f"| {cache or 'none'} | {first:,.0f} | {second:,.0f} | {second / first:.1f}x |")
            ds_args = (
                root,
                {"pattern": "sub-*/anat/*_T1w.nii.gz"},
                {"file": "participants.tsv", "column": "age"},
            )
            lines += [
                "",
                "| one record (`dataset[i]`) | miss ms | hit ms | miss / hit |",
                "|---|---:|---:|---:|",
            ]
            for name, store in (("memory", MemoryCache()), ("disk", DiskCache(Path(tmp) / "records"))):
                ds = datasets.FolderDataset(*ds_args, x_transforms=[tx.RangeNormalize(0, 1)], cache=store)
                miss = _per_record(ds, n)
                hit = _per_record(ds, n)
                lines.append(f"| {name} cache | {miss:.1f} | {hit:.1f} | {miss / hit:.0f}x |")
    finally:
        if old_home is None:
            os.environ.pop("NITRAIN_HOME", None)
        else:
            os.environ["NITRAIN_HOME"] = old_home
    return "\n".join(lines)


def _per_record(ds, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        ds[i]
    return (time.perf_counter() - start) / n * 1e3


def run_loader(quick: bool = False, peers: bool = True) -> str:
    from nitrain import get_num_threads

    n = 8 if quick else N_VOLUMES
    vols = _volumes(n)
    ages = [float(20 + 3 * i) for i in range(n)]
    rows, notes = [], []
    rate, count = _rate(_nitrain(vols, ages))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2 if quick else 9):  # ten epochs in all: peak RSS must not grow
        _rate(_nitrain(vols, ages))
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows.append(("nitrain DatasetLoader + SliceSampler", rate, count))
    r, c = _rate(_numpy(vols[:4], ages[:4]))
    rows.append(("numpy reference (noise + per-slice copies)", r, c))
    if peers:
        per_volume = (
            16 if quick else 48
        )  # the peers are slow: a share of each volume's slices, rates compared
        for name, make in (
            ("TorchIO Queue + UniformSampler + RandomNoise", _torchio),
            ("MONAI RandGaussianNoised + RandSpatialCropSamplesd + DataLoader", _monai),
        ):
            try:
                fn = make(vols[:4], ages[:4], per_volume)
            except ImportError as e:
                notes.append(f"{name}: not installed ({e.name})")
                continue
            r, c = _rate(fn)
            rows.append((name, r, c))
        result, why = _original(4)
        if result is None:
            notes.append(f"original nitrain 0.3.1: {why}")
        else:
            rows.append(
                ("original nitrain 0.3.1 SliceSampler (+ ants noise)", result["rate"], result["count"])
            )
    ref = rows[0][1]
    lines = [
        "## Loader benchmark",
        "",
        f"One epoch of {n} in-memory 197x233x189 float32 volumes, image-batches of 4, every axis-2 slice in "
        f"shuffled sub-batches of 32 (N, H, W, 1), Gaussian noise sd 0.2 per volume per batch. nitrain on "
        f"{get_num_threads()} threads of {os.cpu_count()} CPUs. Peers run on 4 volumes (and TorchIO/MONAI on "
        "a share of each volume's slices); rates compare.",
        "",
        "| loader | slices/s | slices timed | nitrain speed-up |",
        "|---|---:|---:|---:|",
    ]
    for name, r, c in rows:
        lines.append(
            f"| {name} | {r:,.0f} | {c} | {'1.0x (reference)' if r == ref else f'{ref / r:,.1f}x'} |"
        )
    lines.append("")
    lines.append(
        f"Peak RSS after epoch 1: {rss0 / 1024:.0f} MiB; "
        f"after epoch {3 if quick else 10}: {rss1 / 1024:.0f} MiB."
    )
    lines += [f"- {n}" for n in notes]
    lines += ["", run_disk(quick)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run_loader(quick="--quick" in sys.argv))
