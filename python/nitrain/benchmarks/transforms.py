"""Transforms on one 197x233x189 float32 ANTs image: nitrain against the numpy/scipy formulas, ANTs,
TorchIO and MONAI, image in and image out, in one run."""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from nitrain.benchmarks._timing import recycling_off

SHAPE = (197, 233, 189)


def _best_ms(fn, repeats: int) -> float:
    fn()  # warm-up: first-call costs (thread pools, tables, imports) are not what is compared
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _to_image(ants, arr, like):
    return ants.from_numpy(arr, spacing=like.spacing, origin=like.origin, direction=like.direction)


def run_transforms(quick: bool = False, peers: bool = True, seed: int = 0) -> str:
    import ants
    import scipy.ndimage as ndi

    from nitrain import get_num_threads
    from nitrain import transforms as tx

    rng = np.random.default_rng(seed)
    img = ants.from_numpy(
        np.asfortranarray(rng.random(SHAPE, dtype=np.float32) * 1000), spacing=(1.0, 1.0, 1.0)
    )
    repeats = 2 if quick else 5

    def numpy_range():
        a = img.numpy()
        lo, hi = a.min(), a.max()
        return _to_image(ants, (a - lo) / (hi - lo), img)

    def numpy_zscore():
        a = img.numpy()
        return _to_image(ants, (a - a.mean()) / a.std(), img)

    def numpy_noise():
        a = img.numpy()
        return _to_image(ants, a + rng.standard_normal(a.shape, dtype=np.float32) * 0.2, img)

    def scipy_smooth():
        return _to_image(ants, ndi.gaussian_filter(img.numpy(), 1.5), img)

    noise, smoothing = tx.RandomNoise(0.2, seed=1), tx.RandomSmoothing(1.5, 1.5, seed=1)
    affine = tx.RandomAffine(rotation=10, translation=5, zoom=0.1, seed=1)

    def ants_affine():
        t = ants.create_ants_transform(transform_type="AffineTransform", dimension=3)
        t.set_parameters(np.array([1.02, 0.1, 0, -0.1, 1.0, 0, 0, 0, 0.98, 2.0, -1.0, 0.5]))
        return t.apply_to_image(img, reference=img, interpolation="linear")

    cases = [
        ("RangeNormalize(0, 1)", lambda: tx.RangeNormalize(0, 1)(img), [("numpy formula", numpy_range)]),
        (
            "NormalizeIntensity(0, 1)",
            lambda: tx.NormalizeIntensity(0, 1)(img),
            [("numpy formula", numpy_zscore)],
        ),
        ("RandomNoise(sd=0.2)", lambda: noise(img), [("numpy standard_normal + add", numpy_noise)]),
        (
            "RandomAffine (rotation, translation, zoom)",
            lambda: affine(img),
            [("ANTs affine resampling", ants_affine)],
        ),
        (
            "RandomSmoothing(sigma=1.5)",
            lambda: smoothing(img),
            [
                ("scipy.ndimage.gaussian_filter", scipy_smooth),
                ("ants.smooth_image", lambda: ants.smooth_image(img, 1.5)),
            ],
        ),
    ]
    if peers:
        cases = _add_peers(cases, img, rng)
    lines = [
        "## Transform benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, nitrain on {get_num_threads()} threads. "
        f"One 197x233x189 float32 ANTs image in, a new image out (peers that work on arrays or tensors are "
        f"timed on those, without conversion). Best of {repeats}, milliseconds. nitrain writes each new "
        f"image into a recycled buffer, as it does in a training loop where images are freed batch after "
        f"batch; the 'fresh output' row and the last column are with recycling off "
        f"(`NITRAIN_BUFFER_POOL_MB=0`), where every output is new memory the operating system must fault in.",
        "",
        "| transform | method | ms | nitrain speed-up | speed-up of nitrain with fresh outputs |",
        "|---|---|---:|---:|---:|",
    ]
    for name, ours, others in cases:
        t_ours = _best_ms(ours, repeats)
        with recycling_off():
            t_fresh = _best_ms(ours, repeats)
        lines.append(f"| {name} | nitrain | {t_ours:.1f} | 1.0x (reference) | {t_ours / t_fresh:.1f}x |")
        lines.append(f"| {name} | nitrain, fresh output | {t_fresh:.1f} | {t_fresh / t_ours:.1f}x | 1.0x |")
        for label, fn in others:
            t = _best_ms(fn, repeats)
            lines.append(f"| {name} | {label} | {t:.1f} | {t / t_ours:.1f}x | {t / t_fresh:.1f}x |")
    lines += _affine_on_mni(repeats)
    return "\n".join(lines)


def _affine_on_mni(repeats: int) -> list[str]:
    """RandomAffine (nitrain's resampling kernel) against ``ants.apply_ants_transform_to_image`` with the
    same map, linear, on the MNI152 1 mm template, nitrain on 1 and 2 threads (ANTs on ITK's default)."""
    try:
        from nilearn import datasets
    except ImportError:
        return ["", "(The MNI152 affine rows need nilearn, which is not installed.)"]
    import ants

    from nitrain import get_num_threads, set_num_threads
    from nitrain import transforms as tx
    from nitrain.transforms import _geometry as geo

    nii = datasets.load_mni152_template(resolution=1)
    data = np.asfortranarray(np.asanyarray(nii.dataobj, dtype=np.float32))
    img = ants.from_numpy(data, spacing=tuple(float(z) for z in nii.header.get_zooms()))
    affine = tx.RandomAffine(rotation=10, translation=5, shear=0.05, zoom=0.1, seed=1)
    params = affine.decide(img, np.random.default_rng(0))
    assert params is not None  # p = 1
    index = affine.index_matrix(img, params)

    def ants_resampling():
        return geo._ants_resample(img, index, "linear")

    ours, theirs = affine.apply(img, params).numpy(), ants_resampling().numpy()
    error = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
    t_ants = _best_ms(ants_resampling, repeats)
    lines = [
        "",
        f"### RandomAffine on the MNI152 template ({'x'.join(str(n) for n in img.shape)}, 1 mm), linear",
        "",
        "nitrain's resampling kernel against `ants.apply_ants_transform_to_image` with the same map (ANTs on "
        f"ITK's default thread count), best of {repeats}, milliseconds. The two differ by at most "
        f"{error:.1e} of the image maximum (ANTs' transforms are single precision).",
        "",
        "| nitrain threads | RandomAffine (nitrain) | ANTs (apply_ants_transform_to_image) | speed-up |",
        "|---:|---:|---:|---:|",
    ]
    before = get_num_threads()
    try:
        for n in (1, 2):
            set_num_threads(n)
            t = _best_ms(lambda: affine(img), repeats)
            lines.append(f"| {n} | {t:.1f} | {t_ants:.1f} | {t_ants / t:.1f}x |")
    finally:
        set_num_threads(before)
    return lines


def _add_peers(cases, img, rng):
    out = []
    tensor = None
    try:
        import torch
        import torchio as tio

        tensor = torch.from_numpy(img.numpy()[None])
        subject = tio.ScalarImage(tensor=tensor)
        tio_peers = {
            "RangeNormalize(0, 1)": ("TorchIO RescaleIntensity", tio.RescaleIntensity(out_min_max=(0, 1))),
            "NormalizeIntensity(0, 1)": ("TorchIO ZNormalization", tio.ZNormalization()),
            "RandomNoise(sd=0.2)": ("TorchIO RandomNoise", tio.RandomNoise(std=(0.2, 0.2))),
            "RandomSmoothing(sigma=1.5)": ("TorchIO RandomBlur", tio.RandomBlur(std=(1.5, 1.5))),
            "RandomAffine (rotation, translation, zoom)": (
                "TorchIO RandomAffine",
                tio.RandomAffine(scales=0.1, degrees=10, translation=5),
            ),
        }
    except ImportError:
        tio_peers = {}
    try:
        import monai.transforms as mt

        arr = img.numpy()[None]
        monai_peers = {
            "RangeNormalize(0, 1)": ("MONAI ScaleIntensity", mt.ScaleIntensity(minv=0.0, maxv=1.0)),
            "NormalizeIntensity(0, 1)": ("MONAI NormalizeIntensity", mt.NormalizeIntensity()),
            "RandomNoise(sd=0.2)": ("MONAI RandGaussianNoise", mt.RandGaussianNoise(prob=1.0, std=0.2)),
            "RandomSmoothing(sigma=1.5)": ("MONAI GaussianSmooth", mt.GaussianSmooth(sigma=1.5)),
            "RandomAffine (rotation, translation, zoom)": (
                "MONAI RandAffine",
                mt.RandAffine(
                    prob=1.0, rotate_range=(0.17,) * 3, translate_range=(5,) * 3, scale_range=(0.1,) * 3
                ),
            ),
        }
    except ImportError:
        monai_peers, arr = {}, None
    for name, ours, others in cases:
        others = list(others)
        if name in tio_peers:
            label, t = tio_peers[name]
            others.append((label, lambda t=t: t(subject)))
        if name in monai_peers:
            label, m = monai_peers[name]
            others.append((label, lambda m=m: m(arr)))
        out.append((name, ours, others))
    return out
