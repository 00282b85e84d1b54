"""The transform protocol: ANTs images in, ANTs images out.

Every transform is called one way, ``t(*images, rng=None, labels=None)`` (``BaseTransform.__call__``),
which makes its parameters once and applies them to every image given (TorchIO v2's split):

- ``decide(image, rng) -> params | None``: ``None`` with probability ``1 - p`` (the transform is skipped:
  the images come back unchanged), otherwise ``draw(rng, image)``;
- ``draw(rng, image) -> params``: the random parameters, from a ``numpy.random.Generator`` (deterministic
  transforms return ``{}``);
- ``apply(image, params, label=False) -> image``: a pure, deterministic function of the image and the
  parameters. ``label=True`` marks a label map: spatial transforms then interpolate with nearest neighbour
  and intensity transforms leave it unchanged. A random transform with a deterministic *twin*
  (``RandomRotate`` -> ``Rotate``) applies ``twin(params)``.

So ``t(image, segmentation)`` moves both together (a co-transform); images after the first are treated as
label maps unless ``labels`` says otherwise. ``call_transform`` runs any transform, or a plain function,
on a tuple of images; ``run_transforms`` runs a sequence of them (what ``Compose`` does), resampling
consecutive affine warps once.

A subclass that overrides ``__call__(image)`` (the README's custom transform) is adapted once, when the
class is made: its ``__call__`` then also takes ``t(*images, rng=..., labels=...)`` and transforms each
image on its own (``rng`` and ``labels`` unused). Library classes never override ``__call__``: a
container (``Compose``, ``RandomChoice``) overrides ``_transform`` instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nitrain._typing import Image, Transform
from nitrain.transforms import _geometry as geo
from nitrain.transforms._checks import check_images, integer, probability


def _label_flags(owner: str, n: int, labels: Sequence[bool] | None) -> list[bool]:
    if labels is None:
        return [False] + [True] * (n - 1)
    flags = [bool(v) for v in labels]
    if len(flags) != n:
        raise ValueError(f"{owner}: labels has {len(flags)} entries for {n} images")
    return flags


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator, a seed or ``None`` (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _takes_one_image(call: Callable[..., Any]) -> bool:
    """Whether ``call(self, image)`` is a valid call of a ``__call__``: a positional parameter after
    ``self``, and no other required one."""
    try:
        params = list(inspect.signature(call).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [
        q for q in params if q.default is inspect.Parameter.empty and q.kind in (*positional, q.KEYWORD_ONLY)
    ]
    return bool(params) and params[0].kind in positional and len(required) <= 1


def _per_image(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call(self, image)`` as ``__call__(self, *images, rng=None, labels=None)``: each image on its own."""

    @functools.wraps(call)
    def __call__(
        self: Any,
        *images: Any,
        rng: np.random.Generator | int | None = None,
        labels: Sequence[bool] | None = None,
        **kwargs: Any,
    ) -> Any:
        if not images:
            raise TypeError(f"{type(self).__name__}: expected at least one image")
        out = tuple(call(self, image, **kwargs) for image in images)
        return out[0] if len(out) == 1 else out

    return __call__


class BaseTransform:
    """Base class of every nitrain transform.

    To write your own, subclass it with an ``__init__`` that stores the parameters and a
    ``__call__(image)`` that returns the transformed ``ants.ANTsImage`` — or, to take part in
    co-transforms and seeded sampling, implement ``apply`` (and ``draw`` for random parameters) instead.
    """

    #: Whether the output has the input's shape whatever the parameters (intensity, noise, artefacts,
    #: flips, affine and elastic warps onto the image's own grid). The loader counts a sampler's items from
    #: header shapes through such transforms without running them (``len(loader)``). A subclass that
    #: overrides ``apply`` outside the library is trusted only when it declares ``keeps_shape`` itself.
    keeps_shape: bool = False

    #: random transforms set this; ``sample`` and loaders use it to decide whether draws differ
    random = False
    #: the probability that a call applies the transform (``RandomTransform(p=...)``); ``decide`` uses it
    p = 1.0
    #: set on classes with a ``__call__(image)`` of their own: they transform each image alone
    _image_call = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is None:
            return
        cls._image_call = True
        if inspect.isfunction(call) and _takes_one_image(call):
            cls.__call__ = _per_image(call)  # type: ignore[method-assign]  # wraps the one-image __call__

    def draw(self, rng: np.random.Generator, image: Image) -> dict:
        return {}

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        raise NotImplementedError(
            f"{type(self).__name__} must define apply(image, params) or __call__(image)"
        )

    def decide(self, image: Image, rng: np.random.Generator | int | None = None) -> dict | None:
        """The parameters a call on ``image`` would use (``None``: skipped by ``p``), drawing exactly what
        that call would draw. Lets a loader apply the transform later, fused with sampling."""
        gen = self._generator(rng)
        if self.p < 1 and gen.random() >= self.p:
            return None
        return self.draw(gen, image)

    def __call__(
        self,
        *images: Image,
        rng: np.random.Generator | int | None = None,
        labels: Sequence[bool] | None = None,
    ) -> Any:
        name = type(self).__name__
        if not images:
            raise TypeError(f"{name}: expected at least one image")
        flags = _label_flags(name, len(images), labels)
        out = self._transform(images, flags, self._generator(rng))
        return out[0] if len(out) == 1 else out

    def _transform(self, images: tuple, flags: list[bool], rng: np.random.Generator) -> tuple:
        """The images transformed (a tuple): one ``decide`` on the first, ``apply`` to each."""
        check_images(type(self).__name__, images)
        params = self.decide(images[0], rng)
        if params is None:
            return images
        return tuple(self.apply(img, params, label=flag) for img, flag in zip(images, flags, strict=True))

    def _generator(self, rng: np.random.Generator | int | None) -> np.random.Generator:
        if rng is not None:
            return as_generator(rng)
        own = getattr(self, "_rng", None)
        if own is None:
            own = self._rng = np.random.default_rng()
        return own

    def sample(self, image: Image, n: int = 1, seed: np.random.Generator | int | None = None) -> list:
        """``n`` independent draws of this transform on ``image`` (a seed makes them reproducible)."""
        n = integer(f"{type(self).__name__}.sample", "n", n, minimum=1)
        rng = self._generator(seed) if takes_rng(self) else None
        return [call_transform(self, (image,), rng=rng)[0] for _ in range(n)]

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class RandomTransform(BaseTransform):
    """A transform with random parameters, applied with probability ``p``.

    ``seed`` seeds the transform's own generator, used when the caller passes no ``rng``. A subclass defines
    ``draw`` and either ``twin`` (the deterministic transform that applies a draw) or ``apply``.
    """

    random = True

    def __init__(self, p: float = 1.0, seed: np.random.Generator | int | None = None) -> None:
        self.p = probability(type(self).__name__, "p", p)
        self._rng = np.random.default_rng(seed)

    def twin(self, params: dict) -> BaseTransform | None:
        """The deterministic transform that applies draw ``params`` (``None``: the draw changes nothing)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define twin(params) or apply(image, params, label)"
        )

    def apply(self, image: Image, params: dict, label: bool = False) -> Image:
        fixed = self.twin(params)
        return image if fixed is None else fixed.apply(image, {}, label=label)


def takes_rng(t: object) -> bool:
    """Whether ``t`` draws from the generator it is given: a ``BaseTransform`` without a ``__call__(image)``
    of its own (``Compose`` and ``RandomChoice`` included). ``False`` for a transform with its own
    ``__call__(image)`` (the README's custom transform) and for plain functions: those transform each image
    on its own, and only images (``call_transform``)."""
    return isinstance(t, BaseTransform) and not t._image_call


def call_transform(
    t: Transform,
    images: tuple,
    rng: np.random.Generator | int | None = None,
    labels: Sequence[bool] | None = None,
) -> tuple:
    """Run ``t`` on ``images`` (a tuple; returns one): a library transform draws once from ``rng`` for all
    of them; a transform with its own ``__call__(image)``, or a plain function, gets each image alone."""
    if takes_rng(t):
        out = t(*images, rng=rng, labels=labels)
        return out if isinstance(out, tuple) else (out,)
    return tuple(t(image) for image in images)


def _merges(t: object) -> bool:
    """Whether ``t`` is an affine warp (``fixed_spatial._Warp``) that ``run_transforms`` may merge: a
    library transform whose class keeps the warps' ``apply`` and ``BaseTransform._transform``."""
    cls = type(t)
    return (
        takes_rng(t)
        and getattr(cls, "_merged_apply", None) is not None
        and getattr(cls, "apply", None) is getattr(cls, "_merged_apply", None)
        and getattr(cls, "_transform", None) is BaseTransform._transform
    )


class _PendingWarp:
    """Consecutive affine warps not yet applied: the product of their index matrices, one interpolation
    per image, and their names (for messages)."""

    def __init__(self, matrix: np.ndarray, interpolations: list[str], name: str) -> None:
        self.matrix, self.interpolations, self.names = matrix, interpolations, [name]

    def apply(self, images: tuple) -> tuple:
        owner = "+".join(self.names)
        return tuple(
            geo.resample(owner, img, self.matrix, interp)
            for img, interp in zip(images, self.interpolations, strict=True)
        )


def run_transforms(
    transforms: Sequence,
    *images: Image,
    rng: np.random.Generator | int | None = None,
    labels: Sequence[bool] | None = None,
) -> tuple:
    """Run ``transforms`` in order on ``images`` (a co-transform, as ``Compose`` runs them; returns a tuple).

    Library transforms draw their parameters from ``rng`` (a generator, or a seed for one generator for the
    whole sequence; ``None``: each transform's own generator); ``labels`` marks label maps (default: every
    image after the first). Transforms with their own ``__call__(image)`` and plain functions get each image
    alone (``call_transform``).

    Consecutive affine warps (``Rotate``, ``Translate``, ``Shear``, ``Zoom``, ``Affine`` and their ``Random``
    twins) with the same interpolation are resampled once, by the product of their index matrices: the
    image is interpolated once instead of once per warp, so it is less blurred, and content that one warp
    moves out of the grid and the next moves back is kept rather than zeroed. Each warp still makes its
    draw from ``rng`` in turn (on the image before the run: warps keep the grid, and their draws depend only
    on it), so a seed gives the same parameters as running the warps one by one.
    """
    if not images:
        raise TypeError("run_transforms: expected at least one image")
    flags = _label_flags("run_transforms", len(images), labels)
    gen = rng if rng is None or isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pending: _PendingWarp | None = None
    for i, t in enumerate(transforms):
        if not callable(t):
            raise TypeError(f"run_transforms: transforms[{i}] is not callable: {t!r}")
        if not _merges(t):
            if pending is not None:
                images, pending = pending.apply(images), None
            images = call_transform(t, images, rng=gen, labels=flags)
            continue
        name = type(t).__name__
        check_images(name, images)
        params = t.decide(images[0], gen)
        if params is None:  # skipped (p): the identity, which does not end the run
            continue
        warp: Any = t  # a _Warp (fixed_spatial), which this module cannot import
        matrix = warp.index_matrix(images[0], params)
        interpolations = [warp.interpolation_for(params, flag) for flag in flags]
        if pending is not None and pending.interpolations == interpolations:
            pending.matrix = pending.matrix @ matrix
            pending.names.append(name)
        else:
            if pending is not None:
                images = pending.apply(images)
            pending = _PendingWarp(matrix, interpolations, name)
    return images if pending is None else pending.apply(images)


class Compose(BaseTransform):
    """Apply transforms in order; random ones draw from one generator, so a seed fixes the whole chain.

    Consecutive affine warps are resampled once, by the product of their matrices (``run_transforms``):
    less blur than resampling after each, with the same draws."""

    def __init__(self, transforms: Sequence, seed: np.random.Generator | int | None = None) -> None:
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{i}] is not callable: {t!r}")
        self._rng = np.random.default_rng(seed)
        self.random = any(getattr(t, "random", True) for t in self.transforms)

    def _transform(self, images: tuple, flags: list[bool], rng: np.random.Generator) -> tuple:
        return run_transforms(self.transforms, *images, rng=rng, labels=flags)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class RandomChoice(BaseTransform):
    """Apply one of ``transforms``, picked at random (with ``weights``, default uniform)."""

    random = True

    def __init__(
        self,
        transforms: Sequence,
        weights: Sequence[float] | None = None,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        self.transforms = list(transforms)
        if not self.transforms:
            raise ValueError("RandomChoice: expected at least one transform")
        if weights is None:
            w = np.full(len(self.transforms), 1.0 / len(self.transforms))
        else:
            w = np.asarray(weights, dtype=float)
            if w.shape != (len(self.transforms),) or (w < 0).any() or w.sum() <= 0:
                raise ValueError(
                    f"RandomChoice: weights must be {len(self.transforms)} non-negative numbers with a "
                    f"positive sum, got {weights!r}"
                )
            w = w / w.sum()
        self.weights = w.tolist()
        self._rng = np.random.default_rng(seed)

    def _transform(self, images: tuple, flags: list[bool], rng: np.random.Generator) -> tuple:
        t = self.transforms[rng.choice(len(self.transforms), p=self.weights)]
        return call_transform(t, images, rng=rng, labels=flags)


OneOf = RandomChoice
