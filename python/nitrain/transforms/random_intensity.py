"""Random noise and smoothing, computed by the Rust kernels.

Each draw makes its parameters (and, for noise, a 63-bit seed) from the generator it is given; the kernel's
randomness is counter-based, so the same draw gives the same image on any number of threads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nitrain import _core
from nitrain._typing import Image
from nitrain.samplers._extract import image_array
from nitrain.transforms._ants import empty_like_image
from nitrain.transforms._checks import span
from nitrain.transforms.base import RandomTransform


class RandomNoise(RandomTransform):
    """Add Gaussian noise of standard deviation ``sd`` (intensity units; a number or a (min, max) range
    drawn uniformly per call)."""

    keeps_shape = True

    def __init__(
        self,
        sd: float | tuple[float, float] = 0.1,
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.sd = span("RandomNoise", "sd", sd, minimum=0.0)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        return {"sd": float(rng.uniform(*self.sd)), "seed": int(rng.integers(0, 2**63))}

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        if label:
            return image
        src = image_array(image, "RandomNoise: image")
        out, buf = empty_like_image(image)
        _core.add_gaussian_noise(src, buf, params["sd"], params["seed"], 0)
        return out

    @staticmethod
    def apply_to_items(
        view: np.ndarray, origins: np.ndarray, item_shapes: np.ndarray, params: Sequence[Sequence[dict]]
    ) -> None:
        """Add the noise of ``params[j]`` (the draws of item j's image, in order) to item j of ``view``
        (its corner ``origins[j]`` in an image of shape ``item_shapes[j]``), in place: the same bits as
        ``apply`` on the whole image, then cutting the item out (the deviates are a function of the seed
        and each voxel's index in the image). Samplers call this for noise deferred by a loader."""
        steps = max((len(p) for p in params), default=0)
        if steps == 0:
            return
        sds = np.full((len(params), steps), np.nan)
        seeds = np.zeros((len(params), steps), np.uint64)
        for j, item in enumerate(params):
            for m, p in enumerate(item):
                sds[j, m], seeds[j, m] = p["sd"], p["seed"]
        _core.add_noise_to_blocks(view, origins, item_shapes, sds, seeds)


def smooth(
    image: Image, sigma: float | Sequence[float], physical: bool = False, truncate: float = 4.0
) -> Image:
    """Gaussian-smooth an ANTs image (``sigma`` per axis or one for all, in voxels or, with
    ``physical=True``, in mm through the image spacing). Same numbers as ``scipy.ndimage.gaussian_filter``
    with mode 'reflect'."""
    src = image_array(image, "smooth: image")
    sig = np.broadcast_to(np.asarray(sigma, dtype=float), (src.ndim,)).copy()
    if physical:
        sig = sig / np.asarray(image.spacing, dtype=float)
    out, buf = empty_like_image(image)
    _core.gaussian_smooth(src, buf, sig.tolist(), truncate)
    return out


class RandomSmoothing(RandomTransform):
    """Gaussian blur with a sigma drawn uniformly from [``min_sigma``, ``max_sigma``] (the same on every
    axis; in voxels, or in mm with ``physical=True``)."""

    keeps_shape = True

    def __init__(
        self,
        min_sigma: float = 0.0,
        max_sigma: float = 1.0,
        physical: bool = False,
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        lo, hi = span("RandomSmoothing", "sigma", (min_sigma, max_sigma), minimum=0.0)
        self.min_sigma, self.max_sigma = lo, hi
        self.physical = bool(physical)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        return {"sigma": float(rng.uniform(self.min_sigma, self.max_sigma))}

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        if label:
            return image
        return smooth(image, params["sigma"], physical=self.physical)
