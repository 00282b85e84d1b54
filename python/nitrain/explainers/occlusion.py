"""Occlusion sensitivity: how much does the prediction change when a patch of the image is hidden?"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nitrain import _core
from nitrain._progress import progress_bar
from nitrain._typing import Image, Model, Transforms
from nitrain.explainers._model import expected_shape, predictor
from nitrain.samplers._extract import extract_slices, image_array

BASELINES = ("blur", "mean", "zero")


def _positions(n: int, size: int, step: int) -> np.ndarray:
    """Corners along one axis: every ``step``, plus one flush with the far edge so every voxel is covered."""
    pos = list(range(0, n - size + 1, step))
    if pos[-1] != n - size:
        pos.append(n - size)
    return np.array(pos)


def _to_image(arr: np.ndarray, like: Image) -> Image:
    from nitrain.transforms._ants import empty_like_image

    out, buf = empty_like_image(like)
    buf[...] = arr
    return out


class OcclusionExplainer:
    """Occlusion map of a model's prediction, returned as an ANTs image in the input's space.

    Each patch of ``patch_size`` (moved by ``stride``, default half the patch) is replaced by ``baseline``;
    a voxel's value is the mean over the patches that cover it of ``prediction(original) -
    prediction(occluded)`` for output ``target``. Positive: hiding the region lowers the prediction.
    ``stride`` may not exceed ``patch_size`` on any axis (``ValueError``): a larger stride would leave
    voxels that no patch covers, and they would read 0, "no effect", without having been measured.

    ``baseline``: what a patch is replaced by.

    - ``'blur'`` (the default): the same region of a Gaussian-blurred copy of the image, ``blur_sigma``
      voxels per axis (default half the patch size on each axis). The patch keeps the local tissue's
      intensity but loses the detail at the patch's scale, so hiding healthy tissue changes little and
      hiding a lesion removes it (the blur perturbation of Fong & Vedaldi's "meaningful perturbations",
      2017). Blurring costs one pass of the Rust Gaussian kernel per explained image.
    - ``'mean'``: the image's mean intensity. In a brain volume with background this is darker than most
      tissue, so every patch becomes a dark blob and can itself look like a lesion to the model: the map
      can read negative over the whole brain and peak away from what drives the prediction.
    - ``'zero'``, or a number: that constant, e.g. a typical tissue intensity.

    ``blur_sigma``: the blur's standard deviation in voxels, one number or one per axis (only with
    ``baseline='blur'``).

    A prediction that is NaN or infinite is an error (``ValueError``) naming where it came from: the
    unoccluded image (or which of its slices, with a ``sampler``), or the corner of the patch whose
    occluded copy gave it.

    ``model``: a torch module (fed channels-first), a keras 3 model (fed channels-last, called with
    ``predict_on_batch``) or any callable taking a channels-last numpy batch; ``channels`` overrides the
    layout.
    ``sampler``: a ``SliceSampler`` to explain a 2-D model applied slice by slice to a 3-D image (the
    volume's prediction is the mean over its slices, as ``ModelTrainer.predict(reduce='record')`` does);
    only the slices it serves (its ``slices=`` window) are predicted, so voxels outside the window read 0.
    ``transforms``: applied to the image first; the map is in the transformed image's space.
    ``progress``: ``True`` shows a progress bar over the patches, ``False`` hides it, ``None`` shows it
    when stderr is a terminal or in a Jupyter notebook.
    The occluded copies are built in batches by a Rust kernel.
    """

    def __init__(
        self,
        model: Model,
        patch_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        baseline: str | float = "blur",
        batch_size: int = 16,
        target: int = 0,
        sampler: Any = None,
        transforms: Transforms = None,
        channels: str = "auto",
        progress: bool | None = None,
        blur_sigma: float | Sequence[float] | None = None,
    ) -> None:
        if isinstance(patch_size, int | np.integer):
            patch_size = (int(patch_size),)
        self.patch_size = tuple(int(p) for p in patch_size)
        if any(p <= 0 for p in self.patch_size):
            raise ValueError(f"OcclusionExplainer: patch_size must be positive, got {patch_size!r}")
        self.stride: tuple[int, ...] | None
        if stride is not None:
            st = (int(stride),) if isinstance(stride, int | np.integer) else tuple(int(s) for s in stride)
            if any(s <= 0 for s in st):
                raise ValueError(f"OcclusionExplainer: stride must be positive, got {stride!r}")
            ps = self.patch_size
            if len(st) == 1 or len(ps) == 1 or len(st) == len(ps):
                n = max(len(st), len(ps))
                pairs = zip(st * n if len(st) == 1 else st, ps * n if len(ps) == 1 else ps, strict=True)
                if any(s > p for s, p in pairs):
                    raise ValueError(
                        f"OcclusionExplainer: stride {stride!r} is larger than patch_size {patch_size!r} on "
                        "some axis; the voxels between patches would never be occluded and would read 0 "
                        "('no effect') without being measured. Use a stride <= patch_size"
                    )
            self.stride = st
        else:
            self.stride = None
        if isinstance(baseline, bool) or not (
            (isinstance(baseline, str) and baseline in BASELINES) or isinstance(baseline, int | float)
        ):
            raise ValueError(
                f"OcclusionExplainer: baseline must be 'blur', 'mean', 'zero' or a number, got {baseline!r}"
            )
        self.blur_sigma: tuple[float, ...] | None = None
        if blur_sigma is not None:
            if baseline != "blur":
                raise ValueError(
                    "OcclusionExplainer: blur_sigma applies only to baseline='blur', "
                    f"got baseline={baseline!r}"
                )
            real = int | float | np.integer | np.floating
            sig = (blur_sigma,) if isinstance(blur_sigma, real) else tuple(np.atleast_1d(blur_sigma).tolist())
            if not sig or not all(isinstance(v, real) and not isinstance(v, bool) and v > 0 for v in sig):
                raise ValueError(
                    "OcclusionExplainer: blur_sigma must be a positive number or one per axis (voxels), "
                    f"got {blur_sigma!r}"
                )
            self.blur_sigma = tuple(float(v) for v in sig)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"OcclusionExplainer: batch_size must be a positive integer, got {batch_size!r}")
        self.model, self.baseline, self.batch_size, self.target = model, baseline, batch_size, int(target)
        if progress is not None and not isinstance(progress, bool):
            raise TypeError(f"OcclusionExplainer: progress must be True, False or None, got {progress!r}")
        self.sampler, self.transforms, self.progress = sampler, list(transforms or []), progress
        self._predict = predictor(model, channels, batch_size)

    def _sizes(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        nd = len(shape)
        ps = self.patch_size * nd if len(self.patch_size) == 1 else self.patch_size
        if len(ps) != nd:
            raise ValueError(
                f"OcclusionExplainer: patch_size {self.patch_size} does not match a {nd}-D image"
            )
        if any(p > s for p, s in zip(ps, shape, strict=True)):
            raise ValueError(f"OcclusionExplainer: patch_size {ps} is larger than the image {tuple(shape)}")
        st = self.stride or tuple(max(1, p // 2) for p in ps)
        st = st * nd if len(st) == 1 else st
        if len(st) != nd:
            raise ValueError(f"OcclusionExplainer: stride {self.stride} does not match a {nd}-D image")
        return ps, st

    def _finite(self, pred: np.ndarray, what: Callable[..., str]) -> None:
        """Raise naming ``what(k)`` for the first non-finite entry ``k`` of ``pred``."""
        bad = np.flatnonzero(~np.isfinite(pred))
        if len(bad):
            k = int(bad[0])
            more = f" ({len(bad)} of these {len(pred)} predictions are not finite)" if len(bad) > 1 else ""
            raise ValueError(
                f"OcclusionExplainer: the model's output {self.target} is {pred[k]} on {what(k)}{more}; "
                "an occlusion map needs finite predictions"
            )

    def _baseline(self, arr: np.ndarray, ps: Sequence[int]) -> tuple[float, np.ndarray | None]:
        """The constant a patch is set to, or (for ``'blur'``) the blurred image its values come from."""
        if self.baseline == "blur":
            sigma = self.blur_sigma or tuple(p / 2 for p in ps)
            sigma = sigma * arr.ndim if len(sigma) == 1 else sigma
            if len(sigma) != arr.ndim:
                raise ValueError(
                    f"OcclusionExplainer: blur_sigma {self.blur_sigma} does not match a {arr.ndim}-D image"
                )
            blurred = np.empty(arr.shape, np.float32, order="F")  # the kernel writes Fortran order
            _core.gaussian_smooth(arr, blurred, list(sigma))
            return 0.0, blurred
        if self.baseline == "mean":
            return float(arr.mean()), None
        return (0.0 if self.baseline == "zero" else float(self.baseline)), None

    def _checked(self, fn: Callable[[], Any], shape: tuple[int, ...]) -> Any:
        try:
            return fn()
        except Exception as e:
            raise ValueError(
                f"OcclusionExplainer: the model could not predict on an image of shape {shape}: {e}"
            ) from e

    def explain(self, image: Image) -> Image:
        for t in self.transforms:
            image = t(image)
        arr = np.asarray(image_array(image, "OcclusionExplainer: image"), dtype=np.float32)
        shape = arr.shape
        want = expected_shape(self.model)
        if want is not None and self.sampler is None and tuple(want) != tuple(shape):
            raise ValueError(f"OcclusionExplainer: the model expects images of shape {want}, got {shape}")
        ps, st = self._sizes(shape)
        grids = np.meshgrid(
            *[_positions(n, p, s) for n, p, s in zip(shape, ps, st, strict=True)], indexing="ij"
        )
        origins = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
        value, blurred = self._baseline(arr, ps)
        total = np.zeros(shape, np.float64)
        count = np.zeros(shape, np.float64)
        buf = np.empty((self.batch_size, *shape), np.float32)
        if self.sampler is None:
            base = float(self._checked(lambda: self._predict(arr[None])[0, self.target], shape))
            self._finite(np.array([base]), lambda k: "the unoccluded image (the baseline prediction)")
        else:
            # A 2-D model slice by slice: the volume's prediction is the mean over its slices, and a patch
            # changes only the slices it crosses, so only those are predicted again.
            a = self.sampler.axis % len(shape)
            window = (
                self.sampler.slice_range(shape) if hasattr(self.sampler, "slice_range") else range(shape[a])
            )
            n = len(window)
            per_slice = np.zeros(shape[a])
            served = np.array([(0, k) for k in window], np.int64)
            per_slice[window.start : window.stop] = self._checked(
                lambda: self._predict(extract_slices([arr], served, a))[:, self.target], shape
            )
            self._finite(
                per_slice[window.start : window.stop],
                lambda k: (
                    f"slice {window.start + k} along axis {a} of the unoccluded image (the baseline "
                    "prediction)"
                ),
            )
        bar = progress_bar(len(origins), "OcclusionExplainer", self.progress, "patch")
        for s in range(0, len(origins), self.batch_size):
            part = origins[s : s + self.batch_size]
            out = buf[: len(part)]
            _core.occluded_copies(arr, part, list(ps), value, out)
            corners = [tuple(int(v) for v in o) for o in part]
            if blurred is not None:  # the patch takes the blurred image's values instead of a constant
                for copy, o in zip(out, corners, strict=True):
                    region = tuple(slice(b, b + p) for b, p in zip(o, ps, strict=True))
                    copy[region] = blurred[region]
            if self.sampler is None:
                pred = self._predict(out)[:, self.target]
                self._finite(
                    pred,
                    lambda k, corners=corners: (
                        f"the copy occluded by the patch at corner {corners[k]} (size {ps})"
                    ),
                )
                change = base - pred
            else:
                # Only the served slices count; a patch outside the window changes nothing.
                spans = [range(max(o[a], window.start), min(o[a] + ps[a], window.stop)) for o in part]
                idx = np.array([(v, k) for v, span in enumerate(spans) for k in span], np.int64).reshape(
                    -1, 2
                )
                new: np.ndarray | list[float] = (
                    self._predict(extract_slices(list(out), idx, a))[:, self.target] if len(idx) else []
                )
                self._finite(
                    np.asarray(new, np.float64),
                    lambda k, idx=idx, corners=corners: (
                        f"slice {idx[k, 1]} along axis {a} of the copy occluded by the patch at corner "
                        f"{corners[idx[k, 0]]} (size {ps})"
                    ),
                )
                change = np.zeros(len(part))
                pos = 0
                for j, span in enumerate(spans):
                    change[j] = (per_slice[span.start : span.stop] - new[pos : pos + len(span)]).sum() / n
                    pos += len(span)
            for o, c in zip(part, change, strict=True):
                region = tuple(slice(b, b + p) for b, p in zip(o, ps, strict=True))
                total[region] += c
                count[region] += 1
            bar.update(len(part))
        bar.close()
        return _to_image((total / np.maximum(count, 1)).astype(np.float32), image)
