"""The one calling protocol of transforms (nitrain.transforms.base) and the argument-check policy."""

import inspect
import pathlib

import ants
import numpy as np
import pytest

import nitrain.transforms
from nitrain import transforms as tx
from nitrain.transforms import _checks
from nitrain.transforms.base import BaseTransform, RandomTransform, call_transform, takes_rng


def _image(arr, **geometry):
    return ants.from_numpy(np.asfortranarray(arr), **geometry)


def _pair(shape, **geometry):
    grids = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    arr = sum(np.sin(g / (3 + k)) for k, g in enumerate(grids)) + grids[-1] / 10 + 3
    labels = np.zeros(shape, np.uint8)
    labels[tuple(slice(n // 4, n // 2) for n in shape)] = 1
    labels[tuple(slice(n // 2, 3 * n // 4) for n in shape)] = 2
    return _image(arr.astype(np.float32), **geometry), _image(labels, **geometry)


PAIRS = {
    "3d": _pair(
        (20, 22, 24), spacing=(1.0, 1.5, 2.0), origin=(-3.0, 4.0, 1.0), direction=np.eye(3)[[1, 2, 0]]
    ),
    "2d": _pair((21, 18), spacing=(1.5, 0.5), origin=(2.0, -1.0)),
}

# One instance of every random transform the package exports (a new one must be added here).
RANDOM = {
    "RandomFlip": [tx.RandomFlip(0), tx.RandomFlip([0, 1], p=1, axis_p=0.5)],
    "RandomRotate": [tx.RandomRotate(-30, 30), tx.RandomRotate(-30, 30, axes=(1, 0), p=0.7)],
    "RandomTranslate": [tx.RandomTranslate(-3, 3), tx.RandomTranslate(-3, 3, unit="voxel")],
    "RandomShear": [tx.RandomShear(-0.2, 0.2, interpolation="bspline")],
    "RandomZoom": [tx.RandomZoom(0.7, 1.4), tx.RandomZoom(0.7, 1.4, isotropic=False)],
    "RandomAffine": [
        tx.RandomAffine(rotation=20, translation=(-2, 4), shear=0.1, zoom=(0.8, 1.2)),
        tx.RandomAffine(rotation=10, translation=2, unit="voxel", isotropic_zoom=True, zoom=0.2, p=0.5),
    ],
    "RandomCrop": [tx.RandomCrop((8, 9, 10)[:2]), tx.RandomCrop(7, p=0.6)],
    "RandomElasticDeformation": [
        tx.RandomElasticDeformation(max_displacement=3.0),
        tx.RandomElasticDeformation(num_control_points=5, max_displacement=2, locked_borders=1, p=0.6),
    ],
    "RandomNoise": [tx.RandomNoise(sd=(0.1, 0.5))],
    "RandomSmoothing": [tx.RandomSmoothing(0.5, 2.0), tx.RandomSmoothing(1, 3, physical=True)],
    "RandomGamma": [tx.RandomGamma()],
    "RandomBiasField": [tx.RandomBiasField(order=2)],
    "RandomMotion": [tx.RandomMotion(num_transforms=2)],
}
CASES = [
    pytest.param(t, dim, id=f"{type(t).__name__}{i}-{dim}")
    for ts in RANDOM.values()
    for i, t in enumerate(ts)
    for dim in PAIRS
    if not (isinstance(t, tx.RandomCrop) and isinstance(t.shape, tuple) and len(t.shape) != int(dim[0]))
]


def _exported(kind):
    return sorted(
        name
        for name in tx.__all__
        if isinstance(getattr(tx, name), type)
        and issubclass(getattr(tx, name), kind)
        and getattr(tx, name) not in (BaseTransform, RandomTransform)
    )


def test_every_exported_random_transform_is_in_the_twin_test():
    assert sorted(RANDOM) == _exported(RandomTransform)


def _bits(image):
    return image.pixeltype, image.shape, image.spacing, image.origin, image.direction.tolist(), image.numpy()


def _assert_same_bits(a, b):
    for x, y in zip(_bits(a), _bits(b), strict=True):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
        else:
            assert x == y


@pytest.mark.parametrize(("t", "dim"), CASES)
def test_the_draw_replayed_through_the_twin_gives_the_same_bits(t, dim):
    """A random transform called with a generator == its deterministic twin (or, for intensity transforms
    without one, ``apply``) given the parameters that ``decide`` draws from the same generator; and the
    call draws exactly what ``decide`` draws."""
    img, seg = PAIRS[dim]
    for seed in (3, 4, 5):
        rng_call, rng_decide = np.random.default_rng(seed), np.random.default_rng(seed)
        out = t(img, seg, rng=rng_call)
        params = t.decide(img, rng_decide)
        assert rng_call.random() == rng_decide.random()
        if params is None:  # skipped by p
            assert out[0] is img and out[1] is seg
            continue
        if type(t).twin is not RandomTransform.twin:
            twin = t.twin(params)
            if twin is None:  # the draw changes nothing (RandomFlip flipping no axis)
                assert out[0] is img and out[1] is seg
                continue
            assert not twin.random and takes_rng(twin)
            replayed = twin(img, seg)
        else:
            replayed = (t.apply(img, params), t.apply(seg, params, label=True))
        for a, b in zip(out, replayed, strict=True):
            _assert_same_bits(a, b)


# -- one way to call a transform -------------------------------------------------------------------------


class AddConstant(BaseTransform):
    """The README's custom transform."""

    def __init__(self, value):
        self.value = value

    def __call__(self, image):
        return image + self.value


class RotateThenAdd(tx.Rotate):
    """A library transform extended by a ``__call__(image)`` that calls the library's."""

    def __call__(self, image):
        return super().__call__(image) + 1


def test_a_custom_call_is_adapted_once_to_the_protocol():
    img, seg = PAIRS["3d"]
    t = AddConstant(2.0)
    assert not takes_rng(t) and not takes_rng(len)
    out_img, out_seg = t(img, seg, rng=np.random.default_rng(0), labels=[False, True])
    np.testing.assert_allclose(out_img.numpy(), img.numpy() + 2)
    np.testing.assert_allclose(out_seg.numpy(), seg.numpy() + 2)
    np.testing.assert_allclose(t(img).numpy(), img.numpy() + 2)
    assert repr(t) == "AddConstant(value=2.0)" and inspect.signature(type(t).__call__).parameters.keys() >= {
        "image"
    }
    # every caller goes through call_transform: each image alone, for plain functions too
    a, b = call_transform(t, (img, seg), rng=np.random.default_rng(0))
    np.testing.assert_allclose(b.numpy(), seg.numpy() + 2)
    (c,) = call_transform(lambda im: im * 2, (img,))
    np.testing.assert_allclose(c.numpy(), img.numpy() * 2)
    chained = tx.Compose([t, tx.RandomNoise(0.1)], seed=1)(img, seg)
    np.testing.assert_allclose(chained[1].numpy(), seg.numpy() + 2)
    assert [x.numpy().sum() for x in t.sample(img, n=2)] == [(img.numpy() + 2).sum()] * 2
    sub = RotateThenAdd(90, interpolation="nearest")
    np.testing.assert_allclose(sub(img).numpy(), tx.Rotate(90, interpolation="nearest")(img).numpy() + 1)


def test_library_transforms_never_override_call_or_handle_p_themselves():
    for name in _exported(BaseTransform):
        cls = getattr(tx, name)
        assert "__call__" not in vars(cls) and not cls._image_call, name
        assert cls.decide is BaseTransform.decide, name
        if issubclass(cls, RandomTransform):
            assert "p" in inspect.signature(cls).parameters, name


def test_p_is_handled_by_the_base_for_every_random_transform():
    img, seg = PAIRS["2d"]
    for ts in RANDOM.values():
        t = type(ts[0])(**({"shape": 5} if isinstance(ts[0], tx.RandomCrop) else {}), p=0)
        out = t(img, seg, rng=np.random.default_rng(0))
        assert out[0] is img and out[1] is seg
        assert t.decide(img, np.random.default_rng(0)) is None


def test_a_deterministic_transform_draws_nothing_and_labels_are_checked():
    img, seg = PAIRS["3d"]
    rng = np.random.default_rng(7)
    tx.Flip(0)(img, seg, rng=rng)
    assert rng.random() == np.random.default_rng(7).random()
    with pytest.raises(ValueError, match="Flip: labels has 1 entries for 2 images"):
        tx.Flip(0)(img, seg, labels=[True])
    with pytest.raises(TypeError, match="Flip: expected at least one image"):
        tx.Flip(0)()
    with pytest.raises(TypeError, match="Flip: image 1 must be an ants.ANTsImage, got ndarray"):
        tx.Flip(0)(img, seg.numpy())
    with pytest.raises(TypeError, match=r"RandomNoise.sample: n must be an integer >= 1, got 1.5"):
        tx.RandomNoise().sample(img, n=1.5)
    with pytest.raises(ValueError, match=r"Compose.sample: n must be an integer >= 1, got 0"):
        tx.Compose([tx.Flip(0)]).sample(img, n=0)


# -- argument checks: TypeError for a wrong type, ValueError for a wrong value ---------------------------


@pytest.mark.parametrize(
    ("check", "bad_type", "bad_value"),
    [
        (lambda v: _checks.number("T", "x", v), "1", float("nan")),
        (lambda v: _checks.number("T", "x", v, positive=True), True, 0),
        (lambda v: _checks.integer("T", "x", v, minimum=1), 2.0, 0),
        (lambda v: _checks.probability("T", "x", v), None, 1.5),
        (lambda v: _checks.span("T", "x", v), "ab", (2, 1)),
        (lambda v: _checks.symmetric_span("T", "x", v, centre=1, below=1), [1, "a"], 1.0),
        (lambda v: _checks.per_axis("T", "x", v, (2, 3), integer=True), (1, 2.5), (1, 2, 3, 4)),
        (lambda v: _checks.axes("T", v), "0", [1, 1]),
        (lambda v: _checks.interpolation("T", v), 3, "cubic"),
        (lambda v: _checks.length_unit("T", v), b"mm", "cm"),
    ],
)
def test_one_error_policy(check, bad_type, bad_value):
    with pytest.raises(TypeError, match=r"^T: "):
        check(bad_type)
    with pytest.raises(ValueError, match=r"^T: "):
        check(bad_value)


def test_one_image_test():
    img, _ = PAIRS["2d"]
    assert _checks.is_image(img)
    assert not any(_checks.is_image(v) for v in (img.numpy(), "img.nii.gz", None))


def test_no_transforms_module_passes_500_lines():
    folder = pathlib.Path(nitrain.transforms.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in folder.glob("*.py")}
    assert max(sizes.values()) <= 500, sizes
