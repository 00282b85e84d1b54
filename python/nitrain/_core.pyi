"""Private compiled kernels. Use the public API (`nitrain.samplers`, ...) instead."""

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

def gather_slices(
    images: Sequence[npt.NDArray[np.generic]],
    index: npt.NDArray[np.int64],
    axis: int,
    out: npt.NDArray[np.floating],
) -> None: ...
def gather_blocks(
    images: Sequence[npt.NDArray[np.generic]],
    origins: npt.NDArray[np.int64],
    size: Sequence[int],
    out: npt.NDArray[np.floating],
) -> None: ...
def num_threads() -> int: ...
def set_num_threads(n: int | None = None) -> int: ...
def empty_array(shape: Sequence[int], dtype: str, fortran: bool) -> npt.NDArray[np.generic]: ...
def buffer_pool(limit: int | None = None) -> tuple[int, int, int]: ...
def intensity_range(image: npt.NDArray[np.generic]) -> tuple[float, float]: ...
def intensity_stats(image: npt.NDArray[np.generic]) -> tuple[float, float, float, float, int]: ...
def rescale(
    image: npt.NDArray[np.generic], out: npt.NDArray[np.floating], scale: float, offset: float
) -> None: ...
def clip(image: npt.NDArray[np.generic], out: npt.NDArray[np.floating], low: float, high: float) -> None: ...
def quantiles(image: npt.NDArray[np.generic], qs: Sequence[float]) -> list[float]: ...
def add_gaussian_noise(
    image: npt.NDArray[np.generic], out: npt.NDArray[np.floating], sd: float, seed: int, stream: int
) -> None: ...
def gaussian_smooth(
    image: npt.NDArray[np.generic],
    out: npt.NDArray[np.floating],
    sigma: Sequence[float],
    truncate: float = 4.0,
) -> None: ...
def affine_warp(
    image: npt.NDArray[np.generic],
    out: npt.NDArray[np.generic],
    matrix: npt.NDArray[np.float64],
    interpolation: str,
    fill: float = 0.0,
) -> None: ...
def bspline_warp(
    image: npt.NDArray[np.generic],
    out: npt.NDArray[np.generic],
    grid: npt.NDArray[np.float64],
    interpolation: str,
    fill: float = 0.0,
) -> None: ...
def occluded_copies(
    image: npt.NDArray[np.generic],
    origins: npt.NDArray[np.int64],
    size: Sequence[int],
    value: float,
    out: npt.NDArray[np.floating],
) -> None: ...
def accumulate_blocks(
    blocks: npt.NDArray[np.float32],
    origins: npt.NDArray[np.int64],
    window: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32],
    weights: npt.NDArray[np.float32],
) -> None: ...
def add_noise_to_blocks(
    batch: npt.NDArray[np.floating],
    origins: npt.NDArray[np.int64],
    shapes: npt.NDArray[np.int64],
    sds: npt.NDArray[np.float64],
    seeds: npt.NDArray[np.uint64],
) -> None: ...

NiftiDamagedError: type[OSError]  # raised by read_nifti for a short or damaged file

def read_nifti(path: str | os.PathLike[str]) -> dict[str, Any]: ...
