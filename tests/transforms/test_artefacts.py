import ants
import numpy as np
import pytest

from nitrain.transforms.artefacts import (
    BiasCorrection,
    HistogramMatch,
    RandomBiasField,
    RandomGamma,
    RandomMotion,
    Threshold,
)

GEOMETRY = {"spacing": (2.0, 1.5, 3.0), "origin": (10.0, -5.0, 2.0), "direction": np.eye(3)[[1, 0, 2]]}


def _image(arr, **geometry):
    return ants.from_numpy(np.asfortranarray(arr), **geometry)


def _same_geometry(a, b):
    assert a.shape == b.shape
    assert a.spacing == b.spacing and a.origin == b.origin
    np.testing.assert_array_equal(a.direction, b.direction)


@pytest.fixture
def img3d():
    """A smooth blob plus texture, non-negative, with non-trivial geometry."""
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in (16, 18, 20)), indexing="ij")
    blob = 100 * np.exp(-(x**2 + y**2 + z**2) * 2) + 20
    noise = np.random.default_rng(0).random(blob.shape) * 10
    return _image((blob + noise).astype(np.float32), **GEOMETRY)


@pytest.fixture
def seg3d(img3d):
    return _image((img3d.numpy() > 60).astype(np.float32), **GEOMETRY)


@pytest.fixture(scope="module")
def mni_2mm(mni_t1):
    return ants.resample_image(mni_t1, (2, 2, 2), use_voxels=False, interp_type=0)


RANDOM = [
    lambda **kw: RandomGamma(log_gamma=0.5, **kw),
    lambda **kw: RandomBiasField(coefficients=0.5, order=3, **kw),
    lambda **kw: RandomMotion(degrees=10, translation=5, num_transforms=2, **kw),
]
RANDOM_IDS = ["gamma", "bias_field", "motion"]

DETERMINISTIC = [
    lambda img: Threshold(30, 80),
    lambda img: HistogramMatch(img * 2 + 5),
    lambda img: BiasCorrection(),
]


# --- shared behaviour -------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", RANDOM, ids=RANDOM_IDS)
def test_random_transforms_are_reproducible_and_vary(make, img3d):
    t = make()
    first = [o.numpy() for o in t.sample(img3d, n=2, seed=3)]
    again = [o.numpy() for o in make().sample(img3d, n=2, seed=3)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], first[1])  # two draws of one sample differ
    other = make().sample(img3d, n=1, seed=4)[0].numpy()
    assert not np.allclose(first[0], other)
    assert not np.allclose(first[0], img3d.numpy())


@pytest.mark.parametrize("make", RANDOM, ids=RANDOM_IDS)
def test_random_transforms_p0_returns_the_input(make, img3d, seg3d):
    t = make(p=0.0)
    assert t(img3d) is img3d
    a, b = t(img3d, seg3d)
    assert a is img3d and b is seg3d


@pytest.mark.parametrize("make", RANDOM, ids=RANDOM_IDS)
def test_random_transforms_keep_geometry_and_labels(make, img3d, seg3d):
    out, lab = make(seed=1)(img3d, seg3d)
    _same_geometry(out, img3d)
    assert out.pixeltype == "float"
    assert lab is seg3d


@pytest.mark.parametrize("make", DETERMINISTIC, ids=["threshold", "histogram_match", "bias_correction"])
def test_deterministic_transforms_keep_geometry_and_labels(make, img3d, seg3d):
    out, lab = make(img3d)(img3d, seg3d)
    _same_geometry(out, img3d)
    assert lab is seg3d
    assert out.pixeltype == "float"


# --- Threshold --------------------------------------------------------------------------------------------


def test_threshold_matches_numpy(img3d):
    a = img3d.numpy()
    np.testing.assert_array_equal(Threshold(30, 80)(img3d).numpy(), np.where((a < 30) | (a > 80), 0, a))
    np.testing.assert_array_equal(Threshold(low=50, value=-1)(img3d).numpy(), np.where(a < 50, -1, a))
    np.testing.assert_array_equal(Threshold(high=50)(img3d).numpy(), np.where(a > 50, 0, a))
    np.testing.assert_array_equal(Threshold()(img3d).numpy(), a)


def test_threshold_nan_stays_nan_and_nan_value_masks():
    arr = np.array([[np.nan, 1.0], [5.0, 10.0]], np.float32)
    out = Threshold(2, 8)(_image(arr)).numpy()
    assert np.isnan(out[0, 0]) and out[0, 1] == 0 and out[1, 0] == 5 and out[1, 1] == 0
    masked = Threshold(2, 8, value=np.nan)(_image(arr)).numpy()
    assert np.isnan(masked[1, 1]) and masked[1, 0] == 5


def test_threshold_errors():
    with pytest.raises(ValueError, match=r"Threshold: low must not exceed high, got low=5 > high=1"):
        Threshold(5, 1)
    with pytest.raises(TypeError, match="Threshold: low must be a number or None, got 'a'"):
        Threshold("a")
    with pytest.raises(ValueError, match="Threshold: high must not be NaN"):
        Threshold(high=float("nan"))
    with pytest.raises(TypeError, match="Threshold: value must be a number"):
        Threshold(value=None)


# --- HistogramMatch ---------------------------------------------------------------------------------------


def test_histogram_match_moves_quantiles_towards_the_reference(mni_2mm):
    a = mni_2mm.numpy()
    reference = mni_2mm.new_image_like(np.asfortranarray((300 * a**2 + 40).astype(np.float32)))
    out = HistogramMatch(reference)(mni_2mm)
    _same_geometry(out, mni_2mm)
    q = np.linspace(0.05, 0.95, 19)
    target = np.quantile(reference.numpy(), q)
    before = np.abs(np.quantile(a, q) - target).mean()
    after = np.abs(np.quantile(out.numpy(), q) - target).mean()
    assert after < 0.1 * before


def test_histogram_match_of_an_integer_image(img3d):
    as_uint = img3d.clone("unsigned char")
    out = HistogramMatch(img3d * 3)(as_uint)
    assert out.pixeltype == "float"
    assert out.numpy().max() > 2 * img3d.numpy().max()


def test_histogram_match_errors(img3d):
    with pytest.raises(TypeError, match="HistogramMatch: reference must be an ants.ANTsImage, got ndarray"):
        HistogramMatch(img3d.numpy())
    with pytest.raises(ValueError, match="HistogramMatch: bins must be an integer >= 2, got 0"):
        HistogramMatch(img3d, bins=0)
    with pytest.raises(ValueError, match="the image is 2-D but the reference is 3-D"):
        HistogramMatch(img3d)(_image(np.ones((4, 4), np.float32)))


# --- BiasCorrection ---------------------------------------------------------------------------------------


def _synthetic_field(shape):
    x = np.linspace(-1, 1, shape[0])[:, None, None]
    y = np.linspace(-1, 1, shape[1])[None, :, None]
    z = np.linspace(-1, 1, shape[2])[None, None, :]
    return np.exp(0.4 * x + 0.3 * y**2 - 0.2 * z).astype(np.float32)


def test_bias_correction_removes_a_synthetic_field(mni_2mm):
    a = mni_2mm.numpy()
    biased = mni_2mm.new_image_like(np.asfortranarray(a * _synthetic_field(a.shape)))
    out = BiasCorrection()(biased)
    _same_geometry(out, mni_2mm)
    white = a > 0.8 * a.max()  # a near-uniform tissue class of the clean template
    brain = a > 0.2 * a.max()

    def cv(arr, mask):
        return arr[mask].std() / arr[mask].mean()

    assert cv(biased.numpy(), white) > 3 * cv(a, white)  # the field really is visible
    assert cv(out.numpy(), white) < 0.5 * cv(biased.numpy(), white)
    assert cv(out.numpy(), brain) < cv(biased.numpy(), brain)
    residual = np.log(out.numpy()[brain] / a[brain]).std()  # what is left of the field
    assert residual < 0.5 * np.log(biased.numpy()[brain] / a[brain]).std()


def test_bias_correction_arguments(img3d):
    t = BiasCorrection(shrink_factor=2, convergence={"iters": [10], "tol": 1e-6}, mask=None)
    assert t.n4_kwargs["shrink_factor"] == 2 and t.n4_kwargs["mask"] is None
    assert t(img3d).shape == img3d.shape
    with pytest.raises(TypeError, match=r"BiasCorrection: unknown N4 argument\(s\) \['shrink'\]"):
        BiasCorrection(shrink=2)
    with pytest.raises(TypeError, match="BiasCorrection: mask must be 'auto', None or an ants.ANTsImage"):
        BiasCorrection(mask="brain")
    with pytest.raises(ValueError, match="BiasCorrection: shrink_factor must be an integer >= 1, got 0"):
        BiasCorrection(shrink_factor=0)


# --- RandomGamma ------------------------------------------------------------------------------------------


def test_random_gamma_formula_with_negative_values():
    arr = np.linspace(-50, 150, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    img = _image(arr)
    t = RandomGamma()
    for gamma in (0.5, 1.0, 2.0):
        out = t.apply(img, {"gamma": gamma}).numpy()
        ref = ((arr.astype(np.float64) + 50) / 200) ** gamma * 200 - 50
        np.testing.assert_allclose(out, ref, atol=1e-3)
        assert out.min() == pytest.approx(-50) and out.max() == pytest.approx(150)
    gammas = [t.draw(np.random.default_rng(s), img)["gamma"] for s in range(200)]
    assert np.exp(-0.3) <= min(gammas) < 0.8 and 1.25 < max(gammas) <= np.exp(0.3)


def test_random_gamma_constant_and_nan():
    const = _image(np.full((3, 4, 5), 7.0, np.float32))
    np.testing.assert_array_equal(RandomGamma(seed=0)(const).numpy(), 7)
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    arr[0, 0, 0] = np.nan
    out = RandomGamma(seed=0)(_image(arr)).numpy()
    assert np.isnan(out[0, 0, 0]) and np.isfinite(out[1:]).all()


def test_random_gamma_errors():
    with pytest.raises(ValueError, match="RandomGamma: log_gamma must be a finite number >= 0"):
        RandomGamma(log_gamma=-1)
    with pytest.raises(ValueError, match="RandomGamma: log_gamma must satisfy"):
        RandomGamma(log_gamma=(0.5, 0.1))
    with pytest.raises(ValueError, match="RandomGamma: p must be a probability"):
        RandomGamma(p=2)


# --- RandomBiasField --------------------------------------------------------------------------------------


def test_bias_field_is_positive_smooth_and_multiplicative(img3d):
    t = RandomBiasField(coefficients=0.5, order=3)
    params = t.draw(np.random.default_rng(7), img3d)
    assert len(params["coefficients"]) == 20  # monomials of degree <= 3 in 3 variables
    field = t.field(img3d, params)
    _same_geometry(field, img3d)
    f = field.numpy().astype(np.float64)
    assert (f > 0).all() and f.std() > 0.01
    log_f = np.log(f)
    for axis in range(3):
        # |d^2 log f / du^2| <= sum |c| e (e - 1) <= 0.5 * 36 with du = 2 / (n - 1): small second differences
        du = 2 / (f.shape[axis] - 1)
        assert np.abs(np.diff(log_f, n=2, axis=axis)).max() <= 18 * du**2 + 1e-6
    out = t.apply(img3d, params).numpy()
    np.testing.assert_allclose(out, img3d.numpy() * f, rtol=1e-5)


def test_bias_field_uses_physical_coordinates():
    arr = np.ones((8, 9, 10), np.float32)
    flipped = _image(arr, direction=np.diag([-1.0, 1.0, 1.0]))
    plain = _image(arr)
    t = RandomBiasField(coefficients=1.0, order=2)
    params = t.draw(np.random.default_rng(0), plain)
    a = t.field(plain, params).numpy()
    b = t.field(flipped, params).numpy()
    np.testing.assert_allclose(b, a[::-1], rtol=1e-5)
    # a permuted direction: index axis 0 runs along world axis 1, so the field transposes accordingly
    swapped = _image(np.ones((9, 8, 10), np.float32), direction=np.eye(3)[[1, 0, 2]])
    np.testing.assert_allclose(t.field(swapped, params).numpy(), a.transpose(1, 0, 2), rtol=1e-5)


def test_bias_field_order_zero_and_2d():
    img2 = _image(np.full((10, 12), 2.0, np.float32), spacing=(1.0, 3.0))
    t0 = RandomBiasField(coefficients=(0.2, 0.2), order=0)
    np.testing.assert_allclose(t0(img2).numpy(), 2 * np.exp(0.2), rtol=1e-6)
    t = RandomBiasField(order=2, seed=0)
    out = t(img2)
    assert out.shape == (10, 12) and len(t.draw(np.random.default_rng(0), img2)["coefficients"]) == 6
    with pytest.raises(ValueError, match="RandomBiasField: 20 coefficients given"):
        RandomBiasField(order=2).apply(img2, {"coefficients": [0.0] * 20})


def test_bias_field_errors():
    with pytest.raises(ValueError, match="RandomBiasField: order must be an integer >= 0, got -1"):
        RandomBiasField(order=-1)
    with pytest.raises(TypeError, match="RandomBiasField: order must be an integer >= 0, got 1.5"):
        RandomBiasField(order=1.5)
    with pytest.raises(ValueError, match="RandomBiasField: coefficients must be a finite number >= 0"):
        RandomBiasField(coefficients=-0.5)


# --- RandomMotion -----------------------------------------------------------------------------------------


def test_motion_without_movement_returns_the_input(img3d):
    out = RandomMotion(degrees=0, translation=0, num_transforms=3, seed=0)(img3d)
    np.testing.assert_allclose(out.numpy(), img3d.numpy(), atol=1e-3)
    img2 = _image(img3d.numpy()[:, :, 10])
    np.testing.assert_allclose(RandomMotion(degrees=0, translation=0)(img2).numpy(), img2.numpy(), atol=1e-3)


def test_motion_ghosting_keeps_the_image_recognisable(img3d):
    a = img3d.numpy()
    t = RandomMotion(degrees=15, translation=8, num_transforms=3)
    params = t.draw(np.random.default_rng(1), img3d)
    assert len(params["times"]) == 3 and np.all(np.diff(params["times"]) >= 0)
    assert np.asarray(params["degrees"]).shape == (3, 3) and np.asarray(params["translation"]).shape == (3, 3)
    out = t.apply(img3d, params).numpy()
    assert (out >= 0).all()
    assert np.abs(out - a).mean() > 0.5  # visibly changed
    assert np.corrcoef(out.ravel(), a.ravel())[0, 1] > 0.5  # the k-space centre is from the unmoved image


def test_motion_splices_kspace_along_the_last_axis():
    """Against a hand-made splice: whole-voxel translations along the last axis are exact shifts, the
    k-space centre segment comes from the unmoved image, the outer segments from the moved copies."""
    arr = np.zeros((12, 12, 16), np.float32)
    arr[4:8, 3:9, 5:11] = np.random.default_rng(0).random((4, 6, 6)) + 1
    t = RandomMotion()
    params = {
        "times": [0.25, 0.75],  # lines [0, 4) | [4, 12) holds the centre (8) | [12, 16)
        "degrees": [[0, 0, 0], [0, 0, 0]],
        "translation": [[0, 0, 2], [0, 0, -3]],  # mm, spacing 1: whole voxels
    }
    out = t.apply(_image(arr), params).numpy()

    def shifted(shift):  # ITK resampling: moved(x) = image(x + shift), zero outside
        moved = np.zeros_like(arr)
        if shift > 0:
            moved[..., :-shift] = arr[..., shift:]
        else:
            moved[..., -shift:] = arr[..., :shift]
        return moved

    def spectrum(a):
        return np.fft.fftshift(np.fft.fftn(a.astype(np.float64)), axes=-1)

    spliced = spectrum(arr)
    spliced[..., :4] = spectrum(shifted(2))[..., :4]
    spliced[..., 12:] = spectrum(shifted(-3))[..., 12:]
    expected = np.abs(np.fft.ifftn(np.fft.ifftshift(spliced, axes=-1)))
    np.testing.assert_allclose(out, expected, atol=1e-4)
    assert np.abs(out - arr).max() > 0.05  # the outer lines really did change the image


def test_motion_errors():
    with pytest.raises(ValueError, match="RandomMotion: num_transforms must be an integer >= 1, got 0"):
        RandomMotion(num_transforms=0)
    with pytest.raises(ValueError, match="RandomMotion: degrees must be a finite number >= 0"):
        RandomMotion(degrees=-5)
    with pytest.raises(
        TypeError, match="RandomMotion: translation must be a number or a \\(min, max\\) pair"
    ):
        RandomMotion(translation="far")
