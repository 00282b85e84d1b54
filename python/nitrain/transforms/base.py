"""The transform protocol: ANTs images in, ANTs images out.

Every library transform splits into two steps (TorchIO v2's design):

- ``draw(rng, image) -> params``: make the random parameters from a ``numpy.random.Generator``
  (deterministic transforms return ``{}``);
- ``apply(image, params, label=False) -> image``: a pure, deterministic function of the image and the
  parameters. ``label=True`` marks a label map: spatial transforms then interpolate with nearest neighbour
  and intensity transforms leave it unchanged.

Calling a transform draws once and applies that draw to every image given, so ``t(image, segmentation)``
moves both together (a co-transform). Images after the first are treated as label maps unless ``labels``
says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_images(owner: str, images: tuple) -> None:
    if not images:
        raise TypeError(f"{owner}: expected at least one image")
    for i, img in enumerate(images):
        if not (callable(getattr(img, "view", None)) and hasattr(img, "spacing")):
            raise TypeError(f"{owner}: image {i} must be an ants.ANTsImage, got {type(img).__name__}")


def _label_flags(owner: str, n: int, labels) -> list[bool]:
    if labels is None:
        return [False] + [True] * (n - 1)
    flags = [bool(v) for v in labels]
    if len(flags) != n:
        raise ValueError(f"{owner}: labels has {len(flags)} entries for {n} images")
    return flags


def as_generator(rng) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator, a seed or ``None`` (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class BaseTransform:
    """Base class of every nitrain transform.

    To write your own, subclass it with an ``__init__`` that stores the parameters and a
    ``__call__(image)`` that returns the transformed ``ants.ANTsImage`` — or, to take part in
    co-transforms and seeded sampling, implement ``apply`` (and ``draw`` for random parameters) instead.
    """

    #: random transforms set this; ``sample`` and loaders use it to decide whether draws differ
    random = False

    def draw(self, rng: np.random.Generator, image) -> dict:
        return {}

    def apply(self, image, params: dict, label: bool = False):
        raise NotImplementedError(
            f"{type(self).__name__} must define apply(image, params) or __call__(image)"
        )

    def __call__(self, *images, rng=None, labels: Sequence[bool] | None = None):
        name = type(self).__name__
        _check_images(name, images)
        flags = _label_flags(name, len(images), labels)
        params = self.draw(self._generator(rng), images[0])
        out = tuple(self.apply(img, params, label=flag) for img, flag in zip(images, flags, strict=True))
        return out[0] if len(out) == 1 else out

    def _generator(self, rng) -> np.random.Generator:
        if rng is not None:
            return as_generator(rng)
        own = getattr(self, "_rng", None)
        if own is None:
            own = self._rng = np.random.default_rng()
        return own

    def sample(self, image, n: int = 1, seed=None) -> list:
        """``n`` independent draws of this transform on ``image`` (a seed makes them reproducible)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"{type(self).__name__}.sample: n must be a positive integer, got {n!r}")
        if not takes_rng(self):
            return [self(image) for _ in range(int(n))]  # a user transform with its own __call__(image)
        rng = self._generator(seed if seed is not None else None)
        return [self(image, rng=rng) for _ in range(int(n))]

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class RandomTransform(BaseTransform):
    """A transform with random parameters, applied with probability ``p``.

    ``seed`` seeds the transform's own generator, used when the caller passes no ``rng``.
    """

    random = True

    def __init__(self, p: float = 1.0, seed=None):
        if isinstance(p, bool) or not isinstance(p, int | float | np.floating) or not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self._rng = np.random.default_rng(seed)

    def decide(self, image, rng=None) -> dict | None:
        """The parameters a call on ``image`` would use (``None``: skipped by ``p``), drawing exactly what
        that call would draw. Lets a loader apply the transform later, fused with sampling."""
        gen = self._generator(rng)
        if self.p < 1 and gen.random() >= self.p:
            return None
        return self.draw(gen, image)

    def __call__(self, *images, rng=None, labels: Sequence[bool] | None = None):
        gen = self._generator(rng)
        if self.p < 1 and gen.random() >= self.p:
            _check_images(type(self).__name__, images)
            return images[0] if len(images) == 1 else images
        return super().__call__(*images, rng=gen, labels=labels)


def takes_rng(t) -> bool:
    """Whether ``t`` follows the library's calling protocol, ``t(*images, rng=..., labels=...)``: a
    ``BaseTransform`` whose ``__call__`` is the library's (``draw`` / ``apply``), or a ``Compose`` /
    ``RandomChoice``. ``False`` for a transform with its own ``__call__(image)`` (the README's custom
    transform) and for plain functions: those are called with the image alone. Every place that calls
    transforms (``Compose``, ``RandomChoice``, ``sample``, loaders) decides with this."""
    if isinstance(t, Compose | RandomChoice):
        return True
    return isinstance(t, BaseTransform) and type(t).__call__ in (
        BaseTransform.__call__,
        RandomTransform.__call__,
    )


def _call_member(t, images: tuple, rng, labels):
    if takes_rng(t):
        return t(*images, rng=rng, labels=labels)
    # A user transform with its own __call__(image): applied to each image on its own.
    out = tuple(t(img) for img in images)
    return out[0] if len(out) == 1 else out


class Compose(BaseTransform):
    """Apply transforms in order; random ones draw from one generator, so a seed fixes the whole chain."""

    def __init__(self, transforms: Sequence, seed=None):
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{i}] is not callable: {t!r}")
        self._rng = np.random.default_rng(seed)
        self.random = any(getattr(t, "random", True) for t in self.transforms)

    def __call__(self, *images, rng=None, labels: Sequence[bool] | None = None):
        gen = self._generator(rng)
        for t in self.transforms:
            out = _call_member(t, images, gen, labels)
            images = out if isinstance(out, tuple) else (out,)
        return images[0] if len(images) == 1 else images

    def sample(self, image, n: int = 1, seed=None) -> list:
        rng = self._generator(seed)
        return [self(image, rng=rng) for _ in range(int(n))]

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class RandomChoice(BaseTransform):
    """Apply one of ``transforms``, picked at random (with ``weights``, default uniform)."""

    random = True

    def __init__(self, transforms: Sequence, weights: Sequence[float] | None = None, seed=None):
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

    def __call__(self, *images, rng=None, labels: Sequence[bool] | None = None):
        gen = self._generator(rng)
        t = self.transforms[gen.choice(len(self.transforms), p=self.weights)]
        return _call_member(t, images, gen, labels)

    def sample(self, image, n: int = 1, seed=None) -> list:
        rng = self._generator(seed)
        return [self(image, rng=rng) for _ in range(int(n))]


OneOf = RandomChoice
