"""Reading NIfTI files: nitrain's Rust reader against ants.image_read (alone, and with the checks that
nitrain's datasets ran after it before the Rust reader) and nibabel, in one run on the same files.

Workload: the MNI152 T1 template (197x233x189, from nilearn; a phantom of that shape without nilearn)
written by ants.image_write as float32 .nii.gz and .nii, read from the page cache into a float32 image.
One thread reading one file, and two threads reading two files at once (GIL released or not).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SHAPE = (197, 233, 189)


def _template():
    import ants

    try:
        from nilearn import datasets

        nii = datasets.load_mni152_template(resolution=1)
        data = np.asanyarray(nii.dataobj, dtype=np.float32)
        return ants.from_numpy(
            np.asfortranarray(data), spacing=tuple(float(z) for z in nii.header.get_zooms())
        )
    except ImportError:
        from nitrain.datasets import make_phantom_cohort

        with tempfile.TemporaryDirectory() as tmp:
            root = make_phantom_cohort(Path(tmp) / "p", n_subjects=1, seed=0, shape=SHAPE)
            return ants.image_read(str(next(Path(root).rglob("*.nii.gz"))))


def _best_ms(fn, repeats: int) -> float:
    fn()  # warm-up: page cache, first-call costs
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _pair_ms(fn, paths, repeats: int) -> float:
    """Best wall time of two threads each reading its own file."""
    with ThreadPoolExecutor(2) as pool:
        return _best_ms(lambda: list(pool.map(fn, paths)), repeats)


def run_reading(quick: bool = False, peers: bool = True) -> str:
    import ants

    from nitrain._nifti import read_nifti
    from nitrain.benchmarks._timing import recycling_off
    from nitrain.datasets._verify import check_before_read, check_read

    repeats = 3 if quick else 9
    img = _template()

    def ants_checked(path):
        check_before_read(path)
        out = ants.image_read(path)
        check_read(path, out)
        return out

    methods = [
        ("nitrain (Rust reader, verified)", read_nifti),
        ("nitrain, fresh buffers", read_nifti),
        ("ants.image_read", ants.image_read),
        ("ants.image_read + the Python checks (the previous read_image)", ants_checked),
    ]
    if peers:
        try:
            import nibabel as nib

            def nibabel_read(p):
                # nibabel's load() is typed as returning the FileBasedImage base, which has no get_fdata
                return nib.load(p, mmap=False).get_fdata(dtype=np.float32)  # type: ignore[attr-defined]

            methods.append(("nibabel get_fdata(float32)", nibabel_read))
        except ImportError:
            pass
    lines = [
        "## Reading benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs. The MNI152 T1 (197x233x189) written by "
        f"ants.image_write, read from the page cache as a float32 image. Best of {repeats}, milliseconds; "
        f"'2 threads' is the wall time of two threads reading two files at once. nitrain reads into a "
        f"recycled buffer, as in a training loop where images are freed batch after batch; 'fresh buffers' "
        f"is with recycling off, every image new memory the operating system must fault in.",
        "",
        "| file | method | 1 thread, ms | 2 threads, ms | files/s, 2 threads | nitrain speed-up, 1 thread |",
        "|---|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".nii.gz", ".nii"):
            paths = [os.path.join(tmp, f"mni{k}{suffix}") for k in range(2)]
            ants.image_write(img, paths[0])
            shutil.copyfile(paths[0], paths[1])
            ours = 0.0
            for i, (label, fn) in enumerate(methods):
                with recycling_off() if "fresh" in label else contextlib.nullcontext():
                    one = _best_ms(lambda fn=fn, path=paths[0]: fn(path), repeats)
                    two = _pair_ms(fn, paths, repeats)
                ours = one if i == 0 else ours
                speedup = "1.0x (reference)" if i == 0 else f"{one / ours:.1f}x"
                lines.append(
                    f"| {suffix} ({os.path.getsize(paths[0]) / 1e6:.1f} MB) | {label} | {one:.1f} | "
                    f"{two:.1f} | {2e3 / two:.0f} | {speedup} |"
                )
    return "\n".join(lines)
