"""Gradient-based explanations for torch models: saliency, SmoothGrad, Integrated Gradients, Grad-CAM."""

from __future__ import annotations

import numpy as np

from nitrain.explainers._model import channels_of, is_torch_module
from nitrain.explainers.occlusion import _to_image
from nitrain.samplers._extract import extract_slices, image_array

METHODS = ("saliency", "smoothgrad", "integrated_gradients", "gradcam")


class GradientExplainer:
    """A gradient map of output ``target`` with respect to the input, as an ANTs image in the input's space.

    ``method``: ``'saliency'`` (|gradient|), ``'smoothgrad'`` (mean |gradient| over ``n_samples`` noisy
    copies, noise sd ``noise`` times the image's intensity range, seeded by ``seed``),
    ``'integrated_gradients'`` ((x - baseline) times the mean gradient along ``steps`` points of the straight
    path from ``baseline``), or ``'gradcam'`` (the ReLU of the gradient-weighted activations of ``layer``,
    default the last convolution, upsampled to the input). ``sampler``: a ``SliceSampler`` for a 2-D model
    applied slice by slice to a 3-D image (each slice's map comes from its own prediction).
    """

    def __init__(
        self,
        model,
        method: str = "saliency",
        target: int = 0,
        n_samples: int = 16,
        noise: float = 0.1,
        steps: int = 24,
        baseline: float = 0.0,
        layer=None,
        sampler=None,
        batch_size: int = 16,
        seed=0,
        channels: str = "auto",
        transforms=None,
    ):
        if not is_torch_module(model):
            raise TypeError(
                f"GradientExplainer: gradient methods need a torch model, got {type(model).__name__}"
            )
        if method not in METHODS:
            raise ValueError(f"GradientExplainer: method must be one of {METHODS}, got {method!r}")
        self.model, self.method, self.target = model, method, int(target)
        self.n_samples, self.noise, self.steps, self.baseline = (
            int(n_samples),
            float(noise),
            int(steps),
            baseline,
        )
        self.layer, self.sampler, self.batch_size, self.seed = layer, sampler, int(batch_size), seed
        self.channels = channels_of(model, channels)
        self.transforms = list(transforms or [])

    def _layer(self):
        import torch

        if self.layer is not None:
            return self.layer
        convs = [m for m in self.model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Conv3d)]
        if not convs:
            raise ValueError("GradientExplainer: gradcam needs a convolution layer; pass layer=")
        return convs[-1]

    def _maps(self, batch: np.ndarray) -> np.ndarray:
        """Maps for a batch of inputs of shape (N, *spatial)."""
        import torch
        import torch.nn.functional as F

        model = self.model.eval()
        device = next(model.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
        add = (lambda t: t.unsqueeze(1)) if self.channels == "first" else (lambda t: t.unsqueeze(-1))

        def grad_of(inp):
            inp = inp.detach().requires_grad_(True)
            out = model(add(inp))
            out.reshape(len(inp), -1)[:, self.target].sum().backward()
            return inp.grad.detach()

        if self.method == "saliency":
            g = grad_of(x).abs()
        elif self.method == "smoothgrad":
            gen = torch.Generator(device="cpu").manual_seed(int(self.seed or 0))
            span = float(x.max() - x.min()) or 1.0
            g = torch.zeros_like(x)
            for _ in range(self.n_samples):
                eps = torch.randn(x.shape, generator=gen).to(device) * self.noise * span
                g += grad_of(x + eps).abs()
            g /= self.n_samples
        elif self.method == "integrated_gradients":
            b = torch.full_like(x, float(self.baseline))
            g = torch.zeros_like(x)
            for k in range(1, self.steps + 1):
                g += grad_of(b + (x - b) * (k / self.steps))
            g = (x - b) * g / self.steps
        else:
            layer, store = self._layer(), {}
            h1 = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
            h2 = layer.register_full_backward_hook(lambda m, gi, go: store.__setitem__("g", go[0]))
            try:
                out = model(add(x.detach().requires_grad_(True)))
                out.reshape(len(x), -1)[:, self.target].sum().backward()
            finally:
                h1.remove()
                h2.remove()
            act, grad = store["a"], store["g"]
            dims = tuple(range(2, act.ndim))
            cam = F.relu((grad.mean(dim=dims, keepdim=True) * act).sum(dim=1, keepdim=True))
            mode = "bilinear" if act.ndim == 4 else "trilinear"
            g = F.interpolate(cam, size=tuple(x.shape[1:]), mode=mode, align_corners=False)[:, 0]
        model.zero_grad(set_to_none=True)
        return g.detach().float().cpu().numpy()

    def explain(self, image):
        for t in self.transforms:
            image = t(image)
        arr = np.asarray(image_array(image, "GradientExplainer: image"), dtype=np.float32)
        if self.sampler is None:
            result = self._maps(arr[None])[0]
        else:
            a = self.sampler.axis % arr.ndim
            n = arr.shape[a]
            slices = extract_slices([arr], np.array([(0, k) for k in range(n)]), a)
            maps = np.concatenate(
                [self._maps(slices[s : s + self.batch_size]) for s in range(0, n, self.batch_size)]
            )
            result = np.moveaxis(maps, 0, a)
        return _to_image(result.astype(np.float32), image)
