"""Intensity artefacts and corrections: thresholding, histogram matching, N4 bias correction, and random
gamma, bias-field and k-space motion artefacts.

All are intensity transforms: label maps in a co-transform pass through unchanged. Results are float32
images with the input's spacing, origin and direction.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from nitrain._typing import Image
from nitrain.transforms._ants import empty_like_image
from nitrain.transforms._checks import bounds, integer, is_image, number, symmetric_span
from nitrain.transforms.base import RandomTransform
from nitrain.transforms.intensity import IntensityTransform


def _float_array(image: Image) -> np.ndarray:
    return np.asarray(image.numpy(), dtype=np.float64)


def _image_like(image: Image, arr: np.ndarray) -> Image:
    out, buf = empty_like_image(image)
    buf[...] = arr
    return out


def _physical_axes(image: Image) -> list[np.ndarray]:
    """Each voxel's physical coordinate along every world axis, normalised to [-1, 1] over the image's
    bounding box, as arrays that broadcast to the image's shape (1-D views for axis-aligned images)."""
    shape = tuple(image.shape)
    dim = len(shape)
    spacing = np.asarray(image.spacing, dtype=float)
    direction = np.asarray(image.direction, dtype=float).reshape(dim, dim)
    step = direction * spacing[None, :]  # world axis d, index axis j: mm per voxel
    coords = []
    for d in range(dim):
        extent = step[d] * (np.asarray(shape) - 1)
        lo = np.minimum(extent, 0).sum()
        width = np.abs(extent).sum()
        u = np.full([1] * dim, -1.0 if width > 0 else 0.0)
        for j in range(dim):
            if width > 0 and step[d, j] != 0 and shape[j] > 1:
                idx_shape = [1] * dim
                idx_shape[j] = shape[j]
                u = u + (2.0 * step[d, j] / width * np.arange(shape[j], dtype=float)).reshape(idx_shape)
        coords.append(u - 2.0 * lo / width if width > 0 else u)
    return coords


def _exponents(dim: int, order: int) -> list[tuple[int, ...]]:
    return [e for e in itertools.product(range(order + 1), repeat=dim) if sum(e) <= order]


class Threshold(IntensityTransform):
    """Set voxels below ``low`` or above ``high`` to ``value`` (default 0); either bound may be ``None``.
    NaN voxels stay NaN."""

    def __init__(self, low: float | None = None, high: float | None = None, value: float = 0) -> None:
        self.low, self.high = bounds("Threshold", "low", low, "high", high, optional=True, allow_inf=True)
        self.value = number("Threshold", "value", value, allow_inf=True, allow_nan=True)

    def _apply(self, image: Image, params: dict) -> Image:
        out, buf = empty_like_image(image)
        buf[...] = image.view()
        outside = np.zeros(buf.shape, dtype=bool)
        if self.low is not None:
            outside |= buf < self.low
        if self.high is not None:
            outside |= buf > self.high
        buf[outside] = self.value
        return out


class HistogramMatch(IntensityTransform):
    """Match the image's intensity histogram to ``reference`` (an ANTs image), with
    ``ants.histogram_match_image`` (``bins`` histogram bins, ``points`` quantile match points)."""

    def __init__(self, reference: Any, bins: int = 255, points: int = 64) -> None:
        if not is_image(reference):
            raise TypeError(
                f"HistogramMatch: reference must be an ants.ANTsImage, got {type(reference).__name__}"
            )
        self.reference = reference
        self.bins = integer("HistogramMatch", "bins", bins, minimum=2)
        self.points = integer("HistogramMatch", "points", points, minimum=1)

    def __repr__(self) -> str:
        ref = f"<{self.reference.dimension}-D image {tuple(self.reference.shape)}>"
        return f"HistogramMatch(reference={ref}, bins={self.bins}, points={self.points})"

    def _apply(self, image: Image, params: dict) -> Image:
        import ants

        if image.dimension != self.reference.dimension:
            raise ValueError(
                f"HistogramMatch: the image is {image.dimension}-D but the reference is "
                f"{self.reference.dimension}-D"
            )
        src = image if image.pixeltype == "float" else image.clone("float")
        ref = self.reference if self.reference.pixeltype == "float" else self.reference.clone("float")
        matched = ants.histogram_match_image(
            src, ref, number_of_histogram_bins=self.bins, number_of_match_points=self.points
        )
        return _image_like(image, matched.numpy())


_N4_SKIP = {"image", "return_bias_field", "verbose"}


class BiasCorrection(IntensityTransform):
    """N4 bias-field correction (``ants.n4_bias_field_correction``).

    Keyword arguments go to N4. Defaults chosen for speed: ``shrink_factor=4`` and two fitting levels of
    50 iterations (``convergence={'iters': [50, 50], 'tol': 1e-7}``). ``mask='auto'`` (the default) fits
    the field inside ``ants.get_mask(image)``, which is both faster and more accurate than fitting over the
    background; pass ``mask=None`` for the whole image or an ANTs image of your own. The field is removed
    everywhere.
    """

    def __init__(self, **n4_kwargs: Any) -> None:
        import ants

        allowed = set(inspect.signature(ants.n4_bias_field_correction).parameters) - _N4_SKIP
        unknown = sorted(set(n4_kwargs) - allowed)
        if unknown:
            raise TypeError(
                f"BiasCorrection: unknown N4 argument(s) {unknown}; expected some of {sorted(allowed)}"
            )
        kwargs = {"shrink_factor": 4, "convergence": {"iters": [50, 50], "tol": 1e-7}, "mask": "auto"}
        kwargs.update(n4_kwargs)
        mask = kwargs["mask"]
        if not (mask is None or (isinstance(mask, str) and mask == "auto") or is_image(mask)):
            raise TypeError(f"BiasCorrection: mask must be 'auto', None or an ants.ANTsImage, got {mask!r}")
        integer("BiasCorrection", "shrink_factor", kwargs["shrink_factor"], minimum=1)
        self.n4_kwargs = kwargs

    def _apply(self, image: Image, params: dict) -> Image:
        import ants

        src = image if image.pixeltype == "float" else image.clone("float")
        kwargs = dict(self.n4_kwargs)
        if isinstance(kwargs["mask"], str):
            kwargs["mask"] = ants.get_mask(src)
        corrected = ants.n4_bias_field_correction(src, **kwargs)
        return _image_like(image, corrected.numpy())


class RandomGamma(RandomTransform):
    """Gamma contrast change: rescale the image to [0, 1], raise it to ``gamma = exp(u)`` with ``u`` drawn
    uniformly from ``log_gamma`` (a number ``x`` means (-x, x)), and map it back to the original
    [min, max]. The rescaling makes negative intensities safe. A constant image is returned unchanged;
    NaN voxels stay NaN."""

    keeps_shape = True

    def __init__(
        self,
        log_gamma: float | tuple[float, float] = (-0.3, 0.3),
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.log_gamma = symmetric_span("RandomGamma", "log_gamma", log_gamma)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        return {"gamma": float(np.exp(rng.uniform(*self.log_gamma)))}

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        if label:
            return image
        arr = _float_array(image)
        finite = arr[np.isfinite(arr)]
        if finite.size == 0 or finite.min() == finite.max():
            return _image_like(image, arr)
        lo, hi = float(finite.min()), float(finite.max())
        x = np.clip((arr - lo) / (hi - lo), 0.0, 1.0)
        return _image_like(image, x ** params["gamma"] * (hi - lo) + lo)


class RandomBiasField(RandomTransform):
    """A smooth multiplicative bias field: the image is multiplied by ``exp(P)``, ``P`` a polynomial of
    degree ``order`` in the voxels' physical coordinates (each normalised to [-1, 1] over the image).
    Each coefficient is drawn uniformly from ``coefficients`` (a number ``x`` means (-x, x)). The field is
    positive everywhere; ``field(image, params)`` returns it as an image."""

    keeps_shape = True

    def __init__(
        self,
        coefficients: float | tuple[float, float] = 0.5,
        order: int = 3,
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.coefficients = symmetric_span("RandomBiasField", "coefficients", coefficients)
        self.order = integer("RandomBiasField", "order", order, minimum=0)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        n = len(_exponents(image.dimension, self.order))
        return {"coefficients": rng.uniform(*self.coefficients, size=n).tolist()}

    def _log_field(self, image: Image, coefficients: Sequence[float]) -> np.ndarray:
        terms = _exponents(image.dimension, self.order)
        if len(coefficients) != len(terms):
            raise ValueError(
                f"RandomBiasField: {len(coefficients)} coefficients given, a degree-{self.order} polynomial "
                f"in {image.dimension}-D has {len(terms)}"
            )
        coef = dict(zip(terms, coefficients, strict=True))
        coords = _physical_axes(image)
        powers = [[u**e for e in range(self.order + 1)] for u in coords]
        dim = image.dimension

        # Nested (Horner-like) sum so that only the outer level works on full-size arrays when the image is
        # axis-aligned: sum_i u0^i * (sum_j u1^j * (... sum_k c_ij..k u_last^k)).
        def nested(d: int, prefix: tuple, remaining: int) -> Any:
            if d == dim - 1:
                return sum(coef[prefix + (k,)] * powers[d][k] for k in range(remaining + 1))
            return sum(
                powers[d][i] * nested(d + 1, prefix + (i,), remaining - i) for i in range(remaining + 1)
            )

        return np.broadcast_to(nested(0, (), self.order), tuple(image.shape))

    def field(self, image: Image, params: dict) -> Image:
        """The multiplicative field of draw ``params`` on ``image``'s grid, as a float32 ANTs image."""
        return _image_like(image, np.exp(self._log_field(image, params["coefficients"])))

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        if label:
            return image
        field = np.exp(self._log_field(image, params["coefficients"]))
        return _image_like(image, _float_array(image) * field)


class RandomMotion(RandomTransform):
    """A k-space motion artefact (ghosting and blurring), simulated the way TorchIO's ``RandomMotion``
    describes it.

    ``num_transforms`` rigidly moved copies of the image are made, each rotated about the image centre by
    angles drawn from ``degrees`` and translated by ``translation`` mm (numbers ``x`` mean (-x, x); a
    (min, max) pair is used as is). The acquisition is split at ``num_transforms`` random times into
    segments of k-space lines along the phase-encode axis (the last axis): the segment holding the centre
    of k-space comes from the unmoved image (so the result stays aligned with the input) and each other
    segment from one moved copy. The spliced spectrum is inverse-transformed (``numpy.fft``, CPU) and its
    magnitude returned, so negative intensities come back positive (NaN voxels are taken as 0).
    """

    keeps_shape = True

    def __init__(
        self,
        degrees: Any = 10,
        translation: Any = 10,
        num_transforms: int = 2,
        p: float = 1.0,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed)
        self.degrees = symmetric_span("RandomMotion", "degrees", degrees)
        self.translation = symmetric_span("RandomMotion", "translation", translation)
        self.num_transforms = integer("RandomMotion", "num_transforms", num_transforms, minimum=1)

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        dim = image.dimension
        n_angles = 3 if dim == 3 else 1
        n = self.num_transforms
        return {
            "times": np.sort(rng.uniform(0.0, 1.0, size=n)).tolist(),
            "degrees": rng.uniform(*self.degrees, size=(n, n_angles)).tolist(),
            "translation": rng.uniform(*self.translation, size=(n, dim)).tolist(),
        }

    @staticmethod
    def _moved(image: Image, degrees: Sequence[float], translation: Sequence[float]) -> Image:
        import ants

        dim = image.dimension
        if dim not in (2, 3):
            raise ValueError(f"RandomMotion: images must be 2-D or 3-D, got {dim}-D")
        spacing = np.asarray(image.spacing, dtype=float)
        direction = np.asarray(image.direction, dtype=float).reshape(dim, dim)
        middle = (np.asarray(image.shape, dtype=float) - 1) / 2
        centre = np.asarray(image.origin, dtype=float) + direction @ (spacing * middle)
        angles = np.deg2rad(np.asarray(degrees, dtype=float)).tolist()
        kind = "Euler3DTransform" if dim == 3 else "Euler2DTransform"
        tx = ants.create_ants_transform(
            kind,
            dimension=dim,
            precision="double",
            center=centre.tolist(),
            parameters=angles + [float(t) for t in translation],
        )
        return ants.apply_ants_transform_to_image(tx, image, image, interpolation="linear").numpy()

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        if label:
            return image
        src = image if image.pixeltype in ("float", "double") else image.clone("float")
        arr = np.nan_to_num(_float_array(src))
        n_lines = arr.shape[-1]
        cuts = [0] + [int(round(t * n_lines)) for t in params["times"]] + [n_lines]
        centre = n_lines // 2  # index of the zero frequency after fftshift
        other = tuple(range(arr.ndim - 1))  # the frequency-encode axes
        spectrum = np.fft.fftshift(np.fft.fftn(arr), axes=-1)
        moved = iter(zip(params["degrees"], params["translation"], strict=True))
        for start, stop in itertools.pairwise(cuts):
            if start <= centre < stop:
                continue  # the k-space centre comes from the unmoved image
            degrees, translation = next(moved)
            if stop <= start:
                continue
            lines = np.fft.fftshift(np.fft.fft(self._moved(src, degrees, translation), axis=-1), axes=-1)
            spectrum[..., start:stop] = np.fft.fftn(lines[..., start:stop], axes=other)
        result = np.abs(np.fft.ifftn(np.fft.ifftshift(spectrum, axes=-1)))
        return _image_like(image, result)
