"""Gradient explanations for torch and keras models: saliency, SmoothGrad, Integrated Gradients, Grad-CAM.

The methods are written once, on numpy; a framework only supplies gradients (``_autograd.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nitrain._typing import Image, Model, Transforms
from nitrain.explainers._autograd import gradient_backend
from nitrain.explainers._model import channels_of, expected_shape, predictor
from nitrain.explainers.occlusion import _to_image
from nitrain.samplers._extract import extract_slices, image_array

METHODS = ("saliency", "smoothgrad", "integrated_gradients", "gradcam")


def resize_linear(a: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize ``(N, *spatial)`` to ``(N, *size)`` by separable linear interpolation with half-voxel centres
    (torch's ``interpolate(mode='bilinear'/'trilinear', align_corners=False)``)."""
    for axis, n_out in enumerate(size, start=1):
        n_in = a.shape[axis]
        if n_in == n_out:
            continue
        src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        w = (src - lo).reshape([-1 if d == axis else 1 for d in range(a.ndim)])
        a = np.take(a, lo, axis=axis) * (1 - w) + np.take(a, hi, axis=axis) * w
    return a


def gradcam_map(act: np.ndarray, grad: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Grad-CAM from a layer's activations and gradients ``(N, C, *spatial)``: the ReLU of the activations
    weighted by their spatially averaged gradients, summed over channels and upsampled to ``size``."""
    if act.ndim != len(size) + 2:
        raise ValueError(
            f"GradientExplainer: gradcam needs a layer whose output has a channel axis and {len(size)} "
            f"spatial axes, like the input; the layer's output has shape {act.shape}"
        )
    weights = grad.mean(axis=tuple(range(2, act.ndim)), keepdims=True)
    cam = np.maximum((weights * act).sum(axis=1), 0)
    return resize_linear(cam, size)


class GradientExplainer:
    """A gradient map of output ``target`` with respect to the input, as an ANTs image in the input's space.

    ``model``: a torch module (fed channels-first) or a keras 3 model (fed channels-last; gradients through
    ``tf.GradientTape`` on the tensorflow backend, torch autograd on the torch backend); ``channels``
    overrides the layout.
    ``method``: ``'saliency'`` (|gradient|), ``'smoothgrad'`` (mean |gradient| over ``n_samples`` noisy
    copies, noise sd ``noise`` times the image's intensity range, drawn from
    ``numpy.random.default_rng(seed)``),
    ``'integrated_gradients'`` ((x - baseline) times the mean gradient along ``steps`` points of the straight
    path from ``baseline``), or ``'gradcam'`` (the ReLU of the gradient-weighted activations of ``layer``, a
    layer or its name, default the last convolution, upsampled to the input; for keras the layer's output
    must be reachable from the model's inputs, as in a functional or Sequential model). ``sampler``: a
    ``SliceSampler`` for a 2-D model applied slice by slice to a 3-D image (each slice's map comes from its
    own prediction); only the slices it serves (its ``slices=`` window) are explained, the others read 0.
    Gradients are computed ``batch_size`` inputs at a time.
    """

    def __init__(
        self,
        model: Model,
        method: str = "saliency",
        target: int = 0,
        n_samples: int = 16,
        noise: float = 0.1,
        steps: int = 24,
        baseline: float = 0.0,
        layer: Any = None,
        sampler: Any = None,
        batch_size: int = 16,
        seed: int | np.random.Generator | None = 0,
        channels: str = "auto",
        transforms: Transforms = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"GradientExplainer: method must be one of {METHODS}, got {method!r}")
        for name, value in (("n_samples", n_samples), ("steps", steps), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"GradientExplainer: {name} must be a positive integer, got {value!r}")
        if isinstance(target, bool) or not isinstance(target, int | np.integer) or target < 0:
            raise ValueError(f"GradientExplainer: target must be a non-negative integer, got {target!r}")
        if not noise >= 0:
            raise ValueError(f"GradientExplainer: noise must be >= 0, got {noise!r}")
        self.channels = channels_of(model, channels)
        self._grads = gradient_backend(model, self.channels)
        self.model, self.method, self.target = model, method, int(target)
        self.n_samples, self.noise, self.steps = int(n_samples), float(noise), int(steps)
        self.baseline = float(baseline)
        self.sampler, self.batch_size, self.seed = sampler, int(batch_size), seed
        self.transforms = list(transforms or [])
        self.layer = None
        if method == "gradcam":
            self.layer = self._grads.default_layer() if layer is None else self._grads.resolve_layer(layer)
        self._predict = predictor(model, self.channels, self.batch_size)

    def _mean_grad(
        self, x: np.ndarray, count: int, make: Callable[[int, int], np.ndarray], absolute: bool
    ) -> np.ndarray:
        """Mean over ``k < count`` of the gradient at ``make(k, i)`` for each input ``x[i]``; the
        ``count * N`` gradient inputs go through the model ``batch_size`` at a time."""
        total = np.zeros(x.shape, np.float64)
        pairs = [(k, i) for k in range(count) for i in range(len(x))]
        for s in range(0, len(pairs), self.batch_size):
            part = pairs[s : s + self.batch_size]
            g = self._grads.input_grads(np.stack([make(k, i) for k, i in part]), self.target)
            for (_, i), gi in zip(part, g, strict=True):
                total[i] += np.abs(gi) if absolute else gi
        return total / count

    def _maps(self, x: np.ndarray, span: float, rng: np.random.Generator) -> np.ndarray:
        """Maps for a batch of inputs of shape (N, *spatial)."""
        if self.method == "saliency":
            return self._mean_grad(x, 1, lambda k, i: x[i], absolute=True)
        if self.method == "smoothgrad":
            sd = self.noise * span

            def noisy(k: int, i: int) -> np.ndarray:
                return (x[i] + rng.normal(0.0, sd, x.shape[1:])).astype(np.float32)

            return self._mean_grad(x, self.n_samples, noisy, absolute=True)
        if self.method == "integrated_gradients":
            b = np.float32(self.baseline)

            def on_path(k: int, i: int) -> np.ndarray:
                return (b + (x[i] - b) * np.float32((k + 1) / self.steps)).astype(np.float32)

            return (x - b) * self._mean_grad(x, self.steps, on_path, absolute=False)
        act, grad = self._grads.layer_grads(x, self.target, self.layer)
        return gradcam_map(act, grad, x.shape[1:])

    def _check(self, first: np.ndarray, shape: tuple[int, ...]) -> None:
        """One plain prediction first, so a model that cannot take the input says so plainly."""
        try:
            n_out = self._predict(first).shape[1]
        except Exception as e:
            raise ValueError(
                f"GradientExplainer: the model could not predict on an image of shape {shape}: {e}"
            ) from e
        if self.target >= n_out:
            raise ValueError(
                f"GradientExplainer: target {self.target} is out of range for a model with {n_out} outputs"
            )

    def explain(self, image: Image) -> Image:
        for t in self.transforms:
            image = t(image)
        arr = np.asarray(image_array(image, "GradientExplainer: image"), dtype=np.float32)
        shape = arr.shape
        span = float(arr.max() - arr.min()) or 1.0
        rng = np.random.default_rng(self.seed)
        if self.sampler is None:
            want = expected_shape(self.model)
            if want is not None and tuple(want) != tuple(shape):
                raise ValueError(f"GradientExplainer: the model expects images of shape {want}, got {shape}")
            self._check(arr[None], shape)
            result = self._maps(arr[None], span, rng)[0]
        else:
            # Only the slices the sampler serves (its ``slices=`` window) are explained; the others read 0.
            a = self.sampler.axis % arr.ndim
            window = (
                self.sampler.slice_range(shape) if hasattr(self.sampler, "slice_range") else range(shape[a])
            )
            n = len(window)
            slices = extract_slices([arr], np.array([(0, k) for k in window], np.int64).reshape(-1, 2), a)
            self._check(slices[:1], shape)
            maps = np.concatenate(
                [self._maps(slices[s : s + self.batch_size], span, rng) for s in range(0, n, self.batch_size)]
            )
            full = np.zeros((shape[a], *maps.shape[1:]), np.float64)
            full[window.start : window.stop] = maps
            result = np.moveaxis(full, 0, a)
        return _to_image(result.astype(np.float32), image)
