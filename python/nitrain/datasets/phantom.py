"""Procedural head phantoms: the built-in synthetic cohort.

Each phantom is a T1-weighted-looking head: scalp, skull, cerebrospinal fluid, a folded cortex of grey
matter, white matter and two lateral ventricles. Anatomy changes with age the way it does in real brains,
strongly enough for a small network to learn it: the ventricles enlarge, the cortex thins and the
subarachnoid CSF widens. Each subject also gets its own head size, pose, bias field and noise.
Everything is deterministic by seed.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nitrain._typing import Image, PathLike

#: Label values in the segmentation maps (BIDS ``dseg``-style).
LABELS = {
    "background": 0,
    "csf": 1,
    "gray_matter": 2,
    "white_matter": 3,
    "ventricles": 4,
    "skull": 5,
    "scalp": 6,
}
_T1 = {0: 0.0, 1: 0.18, 2: 0.55, 3: 0.82, 4: 0.15, 5: 0.12, 6: 0.9}


def _rotation(rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    a = np.deg2rad(rng.uniform(-max_degrees, max_degrees, 3))
    cx, cy, cz = np.cos(a)
    sx, sy, sz = np.sin(a)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def phantom_arrays(
    shape: Sequence[int] = (64, 64, 64), age: float = 50.0, seed: int | np.random.Generator | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One phantom as (T1 intensities float32, labels uint8), Fortran-ordered arrays of ``shape``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 16:
        raise ValueError(f"phantom: shape must be three sizes >= 16, got {shape}")
    if not 0 <= age <= 120:
        raise ValueError(f"phantom: age must be in [0, 120], got {age}")
    rng = np.random.default_rng(seed)
    t = (age - 20.0) / 60.0  # 0 at 20 years, 1 at 80
    # Normalised coordinates in [-1, 1], moved by a random rigid pose and scaled by a random head size.
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    rot = _rotation(rng, 8.0).astype(np.float32)
    shift = rng.uniform(-0.05, 0.05, 3).astype(np.float32)
    p = (grid - shift) @ rot.T
    head = np.array([0.86, 0.95, 0.86], np.float32) * rng.uniform(0.92, 1.05)
    x, y, z = p[..., 0] / head[0], p[..., 1] / head[1], p[..., 2] / head[2]
    d = np.sqrt(x * x + y * y + z * z)
    # Cortical folding: a smooth radial ripple over the angles, subject-specific phases.
    theta = np.arctan2(y, x)
    phi = np.arccos(np.clip(z / np.maximum(d, 1e-6), -1, 1))
    ph = rng.uniform(0, 2 * np.pi, 2)
    folds = 0.025 * np.sin(7 * theta + ph[0]) * np.sin(6 * phi + ph[1])

    brain_r = 0.80 - 0.035 * t  # brain shrinks, subarachnoid CSF widens
    cortex = 0.13 - 0.05 * t  # cortex thins
    labels = np.zeros(shape, np.uint8)
    labels[d < 1.0] = LABELS["scalp"]
    labels[d < 0.93] = LABELS["skull"]
    labels[d < 0.86] = LABELS["csf"]
    db = d + folds
    labels[db < brain_r] = LABELS["gray_matter"]
    labels[db < brain_r - cortex] = LABELS["white_matter"]
    # Two lateral ventricles that grow with age.
    vr = 0.10 + 0.09 * t + rng.normal(0, 0.006)
    for side in (-1, 1):
        vx = (p[..., 0] - side * 0.11) / (0.55 * vr)
        vy = (p[..., 1] + 0.02) / (1.9 * vr)
        vz = (p[..., 2] - 0.05) / vr
        labels[(vx * vx + vy * vy + vz * vz < 1) & (labels == LABELS["white_matter"])] = LABELS["ventricles"]
    # Intensities: tissue means with a little tissue texture, a smooth bias field, Rician noise.
    lut = np.array([_T1[i] for i in range(len(_T1))], np.float32)
    t1 = lut[labels] * (1 + 0.03 * rng.standard_normal(shape).astype(np.float32))
    c = rng.normal(0, 0.12, 4).astype(np.float32)
    bias = np.exp(
        c[0] * grid[..., 0] + c[1] * grid[..., 1] + c[2] * grid[..., 2] + c[3] * grid[..., 0] * grid[..., 1]
    )
    t1 = t1 * bias * rng.uniform(800, 1200)
    sigma = 0.02 * 1000
    noise = rng.normal(0, sigma, (2, *shape)).astype(np.float32)
    t1 = np.sqrt((t1 + noise[0]) ** 2 + noise[1] ** 2)
    return np.asfortranarray(t1, np.float32), np.asfortranarray(labels)


def make_phantom(
    shape: Sequence[int] = (64, 64, 64),
    age: float = 50.0,
    seed: int | np.random.Generator | None = 0,
    spacing: Sequence[float] | None = None,
) -> tuple[Image, Image]:
    """One phantom as ``(t1, labels)`` ANTs images (spacing: 1 mm per voxel of a 64-voxel head by
    default, scaled so the head keeps a realistic ~180 mm extent)."""
    import ants

    t1, labels = phantom_arrays(shape, age, seed)
    if spacing is None:
        spacing = tuple(180.0 / n for n in t1.shape)
    origin = tuple(-0.5 * s * (n - 1) for s, n in zip(spacing, t1.shape, strict=True))
    img = ants.from_numpy(t1, spacing=spacing, origin=origin)
    lab = ants.from_numpy(labels.astype(np.float32), spacing=spacing, origin=origin)
    return img, lab


def make_phantom_cohort(
    path: PathLike,
    n_subjects: int = 64,
    seed: int = 0,
    shape: Sequence[int] = (64, 64, 64),
    age_range: tuple[float, float] = (20.0, 80.0),
    labels: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
) -> Path:
    """Write a BIDS-style cohort of phantoms to ``path`` and return it.

    Layout: ``sub-XXX/anat/sub-XXX_T1w.nii.gz`` (and ``sub-XXX_dseg.nii.gz`` with ``labels=True``), plus
    ``participants.tsv`` with ``participant_id``, ``age`` and ``sex``, and ``dataset_description.json``.
    Ages are drawn uniformly from ``age_range``. The same seed writes the same cohort.
    ``progress``: ``True`` shows a progress bar, ``False`` hides it, ``None`` shows it when stderr is a
    terminal or in a Jupyter notebook.
    """
    import ants

    from nitrain._progress import progress_bar

    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"make_phantom_cohort: progress must be True, False or None, got {progress!r}")
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, int) or n_subjects < 1:
        raise ValueError(f"make_phantom_cohort: n_subjects must be a positive integer, got {n_subjects!r}")
    lo, hi = (float(a) for a in age_range)
    if not 0 <= lo <= hi <= 120:
        raise ValueError(
            f"make_phantom_cohort: age_range must satisfy 0 <= min <= max <= 120, got {age_range!r}"
        )
    root = Path(path)
    table = root / "participants.tsv"
    if table.exists() and not overwrite:
        raise FileExistsError(
            f"make_phantom_cohort: {table} exists; pass overwrite=True to replace the cohort"
        )
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ages = np.round(rng.uniform(lo, hi, n_subjects), 1)
    sexes = rng.choice(["F", "M"], n_subjects)
    seeds = np.random.SeedSequence(seed).spawn(n_subjects)
    width = max(3, len(str(n_subjects)))
    rows = []
    with progress_bar(n_subjects, "make_phantom_cohort", progress, "subject") as bar:
        for i in range(n_subjects):
            sub = f"sub-{i + 1:0{width}d}"
            anat = root / sub / "anat"
            anat.mkdir(parents=True, exist_ok=True)
            img, lab = make_phantom(shape, float(ages[i]), np.random.default_rng(seeds[i]))
            ants.image_write(img, os.fspath(anat / f"{sub}_T1w.nii.gz"))
            if labels:
                ants.image_write(lab.clone("unsigned char"), os.fspath(anat / f"{sub}_dseg.nii.gz"))
            rows.append((sub, f"{ages[i]:.1f}", sexes[i]))
            bar.update()
    description = {
        "Name": "nitrain phantom cohort",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "GeneratedBy": [{"Name": "nitrain.datasets.make_phantom_cohort", "Description": f"seed={seed}"}],
    }
    (root / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["participant_id", "age", "sex"])
        w.writerows(rows)
    return root
