"""One epoch of a realistic 3-D training pipeline from disk: nitrain's FolderDataset + DatasetLoader against
TorchIO's Queue and MONAI's Dataset + DataLoader, in one run on the same files; ratios reported.

Workload: 12 subjects made from nilearn's MNI152 1 mm T1 template (197x233x189; a phantom of that shape
without nilearn), subject i scaled by 100 * (0.5 + i / 12) plus an offset of 5 * i so that normalisation
matters, written as float32 .nii.gz in a temporary BIDS-style folder with a participants.tsv age column; no
cache. Each record is read, range-normalised to [0, 1], moved by a random affine (per axis: rotation in
[-10, 10] degrees, zoom in [0.9, 1.1], translation in [-5, 5] mm; linear interpolation, zero padding), given
Gaussian noise (sd 0.05), and cut into 8 random 96^3 blocks, served in batches of 4 float32 blocks with a
channel axis. The same pipeline then serves axis-2 slices in batches of 32 instead of blocks. Last,
nitrain's peak RSS over one epoch of 16 and of 64 in-memory records, each run in a fresh process.

How each library is set up (the peers' code: ``nitrain.benchmarks._pipeline_peers``), and where they
differ:

- nitrain: ``FolderDataset(pattern, participants.tsv age column, x_transforms=[RangeNormalize(0, 1)])`` and
  ``DatasetLoader(batch_size=4, shuffle=True, sampler=BlockSampler(96, n_blocks=8, sub_batch_size=4,
  shuffle=True), x_transforms=[RandomAffine(rotation=10, translation=5, zoom=0.1), RandomNoise(sd=0.05)],
  seed=0)``: each batch mixes blocks of the subjects of one of the loader's pools (see DatasetLoader);
  batches are (4, 96, 96, 96, 1) (channels last, the loader's default). The loader fuses the trailing
  RandomNoise into sampling: noise is drawn for the served voxels only (same distribution). ``num_workers``
  is passed only when the installed DatasetLoader takes it; then one row per worker count (1, 2, the CPU
  count).
- TorchIO: ``SubjectsDataset`` of ``Subject(image=ScalarImage(path), age=...)`` with ``RescaleIntensity((0,
  1)), RandomAffine(scales=(0.9, 1.1), degrees=10, translation=5, default_pad_value=0), RandomNoise(std=(0.05,
  0.05))`` (a single std d draws the sd from U(0, d)), then ``Queue(max_length=32, samples_per_volume=8,
  UniformSampler(96), num_workers=CPU count)`` (blocks of 4 subjects mixed in the queue) and
  ``SubjectsLoader(queue, batch_size=4, num_workers=0)`` (TorchIO's DataLoader with its collate function).
  Batches are (4, 1, 96, 96, 96).
- MONAI: ``Dataset`` of dicts with ``LoadImaged, EnsureChannelFirstd, ScaleIntensityd(minv=0, maxv=1),
  RandAffined(prob=1, rotate_range=10 degrees in radians, scale_range=0.1, translate_range=5 voxels (1 mm
  voxels), mode='bilinear', padding_mode='zeros'), RandGaussianNoised(prob=1, std=0.05, sample_std=False)``
  (its default draws the sd from U(0, std)) and ``RandSpatialCropSamplesd(roi_size=96, num_samples=8,
  random_size=False)``; ``DataLoader(batch_size=1, shuffle=True, num_workers=CPU count)`` serves the 8 blocks
  of one volume per batch (MONAI's list collate flattens the samples), each split into two batches of 4
  with ``torch.split``: a MONAI batch holds blocks of one subject, TorchIO's of 4, nitrain's of a pool.
- All three draw one rotation angle, zoom and shift per axis from the same ranges; they compose them in
  their own orders (nitrain: zoom, shear, rotation, translation about the image centre), so the matrices
  are alike in distribution, not equal. The peers' worker processes start inside the timed epoch, as in a
  first epoch of training; nitrain's threads too.
- Slices: nitrain serves every axis-2 slice (``SliceSampler(32, axis=2, shuffle=True)``); the peers draw as
  many slices per volume at random positions (``UniformSampler((X, Y, 1))`` with samples_per_volume = Z and
  a Queue of 4 volumes' slices; ``RandSpatialCropSamplesd(roi_size=(X, Y, 1), num_samples=Z)`` split into
  batches of 32), the same number of slices of the same size.
- Peak memory: each epoch runs in a fresh process, whose peak RSS is read from /proc/self/status (VmHWM):
  on Linux ``ru_maxrss`` is kept across fork and exec, so a child of the benchmark process would report at
  least the benchmark's own peak.
"""

from __future__ import annotations

import inspect
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nitrain.benchmarks._pipeline_peers import PEERS, Augment
from nitrain.benchmarks._timing import count_items

SHAPE = (197, 233, 189)
N_SUBJECTS = 12
BLOCKS_PER_VOLUME = 8
BLOCK = 96
BATCH = 4
SLICE_BATCH = 32
AUGMENT = Augment(rotation_deg=10.0, translation_mm=5.0, zoom=0.1, noise_sd=0.05)
RSS_RECORDS = (16, 64)
#: The pool budget of the memory runs: 64 MiB, about 9 records of 96^3 (a record counts 8 bytes a voxel),
#: so that both runs stream several pools and show what the epoch holds at once.
MEMORY_POOL_BYTES = 64 * 2**20
PATTERN = "sub-*/anat/*_T1w.nii.gz"


class Setup:
    """One run's sizes: the full workload, or the quick smoke run (a 2 mm template, 4 subjects, 32^3
    blocks, memory epochs of 48^3 records)."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.n_subjects = 4 if quick else N_SUBJECTS
        self.block = 32 if quick else BLOCK
        self.step = 2 if quick else 1  # template voxels per voxel (quick: 2 mm)
        self.rss_size = 48 if quick else BLOCK


def _template(step: int = 1) -> tuple[np.ndarray, str]:
    """The MNI152 1 mm T1 template (every ``step``-th voxel) as float32 in [0, 1], and where it came from."""
    try:
        from nilearn.datasets import load_mni152_template

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = np.asanyarray(load_mni152_template(resolution=1).dataobj, dtype=np.float32)
        source = "nilearn's MNI152 1 mm T1 template"
    except ImportError:
        from nitrain.datasets import phantom_arrays

        data = phantom_arrays(SHAPE, 50.0, 0)[0].astype(np.float32)
        data = (data - data.min()) / max(float(data.max() - data.min()), 1e-6)
        source = "a phantom (nilearn is not installed)"
    return np.ascontiguousarray(data[::step, ::step, ::step]), source


def _subject(base: np.ndarray, i: int, n: int) -> np.ndarray:
    """Subject ``i`` of ``n``: the template with its own intensity scale and offset."""
    return (base * (100.0 * (0.5 + i / n)) + 5.0 * i).astype(np.float32)


def write_cohort(
    root: Path, n_subjects: int, base: np.ndarray, step: int = 1
) -> tuple[list[Path], list[float]]:
    """``n_subjects`` scaled copies of ``base`` (the template at ``step`` mm) as
    ``sub-XX/anat/sub-XX_T1w.nii.gz`` under ``root`` and a participants.tsv with their ages. Returns the
    paths and the ages."""
    import ants

    spacing = (float(step),) * 3
    paths, ages = [], []
    lines = ["participant_id\tage"]
    for i in range(n_subjects):
        sub = f"sub-{i + 1:02d}"
        path = root / sub / "anat" / f"{sub}_T1w.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        img = ants.from_numpy(np.asfortranarray(_subject(base, i, n_subjects)), spacing=spacing)
        ants.image_write(img, str(path))
        age = 20.0 + 5.0 * i
        paths.append(path)
        ages.append(age)
        lines.append(f"{sub}\t{age}")
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")
    return paths, ages


# -- nitrain ---------------------------------------------------------------------------------------------


def worker_options() -> list[int | None]:
    """The ``num_workers`` values to run nitrain with: 1, 2 and the CPU count when DatasetLoader takes
    ``num_workers``, else ``[None]`` (the loader as it is)."""
    from nitrain import loaders

    if "num_workers" not in inspect.signature(loaders.DatasetLoader).parameters:
        return [None]
    counts: list[int | None] = [*sorted({1, 2, os.cpu_count() or 1})]
    return counts


def _nitrain_transforms() -> list:
    from nitrain import transforms as tx

    return [
        tx.RandomAffine(rotation=AUGMENT.rotation_deg, translation=AUGMENT.translation_mm, zoom=AUGMENT.zoom),
        tx.RandomNoise(sd=AUGMENT.noise_sd),
    ]


def nitrain_loader(dataset: Any, sampler: Any, num_workers: int | None = None, **kwargs: Any) -> Any:
    """The benchmark's DatasetLoader over ``dataset`` (``num_workers`` passed only when given)."""
    from nitrain import loaders

    if num_workers is not None:
        kwargs["num_workers"] = num_workers
    return loaders.DatasetLoader(
        dataset,
        batch_size=BATCH,
        shuffle=True,
        sampler=sampler,
        x_transforms=_nitrain_transforms(),
        seed=0,
        **kwargs,
    )


def _folder_dataset(root: Path) -> Any:
    from nitrain import datasets
    from nitrain import transforms as tx

    return datasets.FolderDataset(
        root,
        {"pattern": PATTERN},
        {"file": "participants.tsv", "column": "age"},
        x_transforms=[tx.RangeNormalize(0, 1)],
    )


def block_sampler(block: int) -> Any:
    from nitrain import samplers

    return samplers.BlockSampler(block, n_blocks=BLOCKS_PER_VOLUME, sub_batch_size=BATCH, shuffle=True)


def slice_sampler() -> Any:
    from nitrain import samplers

    return samplers.SliceSampler(SLICE_BATCH, axis=2, shuffle=True)


def _timed(run: Callable[[], tuple[int, tuple]]) -> dict:
    start = time.perf_counter()
    n, shape = run()
    seconds = time.perf_counter() - start
    return {"rate": n / seconds, "count": n, "seconds": seconds, "shape": shape}


def _nitrain(root: Path, sampler: Any, num_workers: int | None) -> dict:
    loader = nitrain_loader(_folder_dataset(root), sampler, num_workers)
    return _timed(lambda: count_items(loader, lambda b: b[0].shape))


# -- peers -----------------------------------------------------------------------------------------------


def _peer_row(name: str, make: Callable[..., Any], notes: list[str], *args: Any) -> dict | None:
    """A peer's timed epoch, or None with a note when it is not installed or fails."""
    try:
        run = make(*args)
    except ImportError as e:
        notes.append(f"{name}: not installed ({e.name})")
        return None
    try:
        return _timed(run)
    except Exception as e:  # a peer's failure is reported, the benchmark goes on
        notes.append(f"{name}: failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        return None


# -- peak memory -----------------------------------------------------------------------------------------


def _load_average() -> str:
    """The machine's 1-minute load average (other work running alongside skews every rate), or 'n/a'."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):
        return "n/a"


def _label(num_workers: int | None) -> str:
    return "nitrain" if num_workers is None else f"nitrain, num_workers={num_workers}"


def _table(unit: str, rows: list[tuple[str, dict]], reference: str) -> list[str]:
    ref = dict(rows)[reference]["rate"]
    lines = [
        f"| loader | {unit}/s | {unit} | seconds | batch shape | nitrain speed-up |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for name, r in rows:
        ratio = "1.0x (reference)" if name == reference else f"{ref / r['rate']:,.1f}x"
        shape = "x".join(str(d) for d in r["shape"])
        lines.append(f"| {name} | {r['rate']:,.1f} | {r['count']} | {r['seconds']:.1f} | {shape} | {ratio} |")
    return lines


def _worker_ratio(rows: list[tuple[str, dict]]) -> list[str]:
    by = dict(rows)
    one, two = by.get(_label(1)), by.get(_label(2))
    if one is None or two is None:
        return []
    return ["", f"nitrain num_workers=2 / num_workers=1: {two['rate'] / one['rate']:.2f}x."]


def run_pipeline(quick: bool = False, peers: bool = True) -> str:
    """The pipeline benchmark as a markdown section (see the module docstring)."""
    from nitrain import get_num_threads
    from nitrain.benchmarks import _pipeline_memory

    setup = Setup(quick)
    load = _load_average()
    workers = worker_options()
    reference = _label(workers[-1])
    notes: list[str] = []
    if workers == [None]:
        notes.append("this DatasetLoader has no num_workers: one row, its background prefetch thread")
    block_rows: list[tuple[str, dict]] = []
    slice_rows: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="nitrain-pipeline-") as tmp:
        base, source = _template(setup.step)
        shape = base.shape
        root = Path(tmp) / "cohort"
        paths, ages = write_cohort(root, setup.n_subjects, base, setup.step)
        for w in workers:
            block_rows.append((_label(w), _nitrain(root, block_sampler(setup.block), w)))
        for w in workers:
            slice_rows.append((_label(w), _nitrain(root, slice_sampler(), w)))
        if peers:
            blocks = ((setup.block,) * 3, BLOCKS_PER_VOLUME, BATCH, float(setup.step), AUGMENT)
            slices = ((shape[0], shape[1], 1), shape[2], SLICE_BATCH, float(setup.step), AUGMENT)
            for name, make in PEERS:
                row = _peer_row(name, make, notes, paths, ages, *blocks)
                if row is not None:
                    block_rows.append((name, row))
                row = _peer_row(f"{name} (slices)", make, notes, paths, ages, *slices)
                if row is not None:
                    slice_rows.append((name, row))
        in_memory = _pipeline_memory.memory_slices(base)
        template = Path(tmp) / "template.npy"  # the memory epochs' processes need not import nilearn
        np.save(template, base)
        del base
        memory = [
            _pipeline_memory.memory_epoch_in_subprocess(n, setup.rss_size, template, workers[-1])
            for n in RSS_RECORDS
        ]
    size = "x".join(str(d) for d in shape)
    cpus = os.cpu_count()
    lines = [
        "## Training-pipeline benchmark",
        "",
        f"One epoch over {setup.n_subjects} subjects ({source}, {size}, {setup.step} mm, each with its own "
        f"intensity scale and offset) stored as float32 .nii.gz, no cache: read, range-normalise to [0, 1], "
        f"random affine (rotation +-{AUGMENT.rotation_deg:g} degrees, zoom {1 - AUGMENT.zoom:g}-"
        f"{1 + AUGMENT.zoom:g}, translation +-{AUGMENT.translation_mm:g} mm per axis, linear), Gaussian "
        f"noise sd {AUGMENT.noise_sd:g}, then "
        f"{BLOCKS_PER_VOLUME} random {setup.block}^3 blocks per volume in batches of {BATCH} (float32, a "
        f"channel axis). nitrain on {get_num_threads()} kernel threads of {cpus} CPUs; TorchIO's Queue and "
        f"MONAI's DataLoader with {cpus} worker processes. Every library runs on all subjects and blocks. "
        f"Load average (1 min) at the start: {load}; at the end: {_load_average()}. Setup and differences: "
        "the module docstring of nitrain.benchmarks.pipeline.",
        "",
        *_table("blocks", block_rows, reference),
        *_worker_ratio(block_rows),
        "",
        f"### Slices: every axis-2 slice in batches of {SLICE_BATCH}",
        "",
        f"The same epoch with `SliceSampler({SLICE_BATCH}, axis=2, shuffle=True)` instead of blocks (the "
        f"peers: {shape[2]} uniformly drawn axis-2 slices per volume, as many as nitrain serves).",
        "",
        *_table("slices", slice_rows, reference),
        *_worker_ratio(slice_rows),
        "",
        "### In-memory slice epoch",
        "",
        f"4 volumes of {size} held in memory, no transforms, every axis-2 slice once in shuffled batches of "
        f"{SLICE_BATCH} (N, H, W, 1): nitrain's loader against a plain numpy loop gathering the same slices "
        "into a fresh batch each. Best of 3 epochs.",
        "",
        *_table("slices", in_memory, in_memory[0][0]),
        "",
        "### Peak memory over one epoch",
        "",
        f"nitrain, the slice pipeline over a MemoryDataset of {setup.rss_size}^3 crops of the template "
        f"(random positions, own intensity scales), `{reference}` settings with pools of "
        f"`pool_bytes={MEMORY_POOL_BYTES // 2**20} MiB`; each epoch in a fresh process, "
        "peak RSS read from the process's own VmHWM (Linux; `ru_maxrss` elsewhere). The records are held in "
        "memory, so RSS before the epoch grows with their number; peak - before is what the epoch itself "
        "adds (prepared records and batches).",
        "",
        "| records | data MiB | RSS before epoch MiB | peak RSS MiB | peak - before MiB |",
        "|---:|---:|---:|---:|---:|",
    ]
    for m in memory:
        lines.append(
            f"| {m['records']} | {m['data_mib']:.0f} | {m['before_mib']:.0f} | {m['peak_mib']:.0f} | "
            f"{m['peak_mib'] - m['before_mib']:.0f} |"
        )
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines)


def profile_nitrain(quick: bool = False, top: int = 10) -> str:
    """cProfile of one nitrain block epoch, the ``top`` entries by cumulative time. cProfile sees only the
    thread it runs in, so the records are prepared there: ``num_workers=0`` (one lane's work, in the
    iterating thread) and ``prefetch=0`` when the loader takes ``num_workers``, else ``prefetch=0``."""
    import cProfile
    import io
    import pstats

    setup = Setup(quick)
    with tempfile.TemporaryDirectory(prefix="nitrain-pipeline-") as tmp:
        root = Path(tmp)
        write_cohort(root, setup.n_subjects, _template(setup.step)[0], setup.step)
        workers = None if worker_options() == [None] else 0
        loader = nitrain_loader(_folder_dataset(root), block_sampler(setup.block), workers, prefetch=0)
        prof = cProfile.Profile()
        prof.enable()
        count_items(loader, lambda b: b[0].shape)
        prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


if __name__ == "__main__":
    if "--profile" in sys.argv:
        print(profile_nitrain(quick="--quick" in sys.argv, top=15))
    else:
        print(run_pipeline(quick="--quick" in sys.argv, peers="--no-peers" not in sys.argv))
