import ants
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

import nitrain
from nitrain import transforms as tx
from nitrain.transforms.random_intensity import smooth


def _image(arr, **geometry):
    return ants.from_numpy(np.asfortranarray(arr), **geometry)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 24), min_size=2, max_size=3),
    sigma=st.floats(0, 3),
    seed=st.integers(0, 2**31),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_smoothing_matches_scipy(shape, sigma, seed, dtype):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype) * 100
    out = smooth(_image(a), sigma).numpy()
    ref = ndi.gaussian_filter(a.astype(np.float64), sigma, mode="reflect", truncate=4.0)
    rng_ = a.max() - a.min() or 1.0
    assert np.abs(out - ref).max() <= 1e-4 * rng_


def test_smoothing_per_axis_and_in_mm_on_real_mri(mni_t1):
    a = mni_t1.numpy()
    out = smooth(mni_t1, (1.0, 2.0, 0.5)).numpy()
    ref = ndi.gaussian_filter(a, (1.0, 2.0, 0.5))
    assert np.abs(out - ref).max() <= 1e-4 * (a.max() - a.min())
    img2 = _image(np.random.default_rng(0).random((20, 20, 20), dtype=np.float32), spacing=(2.0, 1.0, 0.5))
    np.testing.assert_allclose(
        smooth(img2, 2.0, physical=True).numpy(),
        ndi.gaussian_filter(img2.numpy(), (1.0, 2.0, 4.0)),
        atol=1e-5,
    )


@pytest.mark.parametrize("shape", [(37, 61, 23), (40, 9), (5, 3, 7)])
def test_smoothing_gives_the_same_bits_on_any_thread_count(shape):
    # The kernel cuts planes into strips whose number follows the thread count; no value may change.
    a = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    before = nitrain.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            nitrain.set_num_threads(n)
            outs.append(smooth(_image(a), (1.2, 2.5, 0.7)[: len(shape)]).numpy())
    finally:
        nitrain.set_num_threads(before)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    ref = ndi.gaussian_filter(a.astype(np.float64), (1.2, 2.5, 0.7)[: len(shape)], mode="reflect")
    assert np.abs(outs[0] - ref).max() <= 1e-4 * (a.max() - a.min())


def test_integer_images_are_smoothed_into_float():
    a = (np.arange(6 * 7 * 8) % 11).astype(np.int16).reshape(6, 7, 8)
    img = ants.from_numpy(a.astype(np.float32)).clone("unsigned int")
    out = smooth(img, 1.0)
    assert out.pixeltype == "float"
    np.testing.assert_allclose(out.numpy(), ndi.gaussian_filter(a.astype(np.float64), 1.0), atol=1e-4)


def test_noise_statistics_and_geometry():
    img = _image(np.full((40, 50, 60), 10.0, np.float32), spacing=(1.0, 2.0, 3.0), origin=(4.0, 5.0, 6.0))
    out = tx.RandomNoise(sd=3.0, seed=0)(img)
    d = out.numpy() - 10
    assert abs(d.mean()) < 0.03 and abs(d.std() - 3) < 0.03
    assert abs(((d / 3) ** 4).mean() - 3) < 0.1  # Gaussian kurtosis
    assert out.spacing == img.spacing and out.origin == img.origin


def test_noise_is_seeded_and_thread_independent():
    img = _image(np.zeros((30, 31, 32), np.float32))
    t = tx.RandomNoise(sd=(0.1, 2.0))
    before = nitrain.get_num_threads()
    try:
        nitrain.set_num_threads(1)
        one = [x.numpy() for x in t.sample(img, n=3, seed=5)]
        nitrain.set_num_threads(2)
        two = [x.numpy() for x in t.sample(img, n=3, seed=5)]
    finally:
        nitrain.set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(one[0], one[1])  # independent draws
    other = t.sample(img, n=1, seed=6)[0].numpy()
    assert not np.array_equal(one[0], other)


def test_random_smoothing_draws_sigma_in_range_and_leaves_labels_alone():
    img = _image(np.random.default_rng(1).random((16, 16, 16), dtype=np.float32))
    seg = _image((np.arange(16**3) % 3).reshape(16, 16, 16).astype(np.float32))
    t = tx.RandomSmoothing(0.5, 1.5, seed=3)
    params = t.draw(np.random.default_rng(0), img)
    assert 0.5 <= params["sigma"] <= 1.5
    out_img, out_seg = t(img, seg, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out_img.numpy(), ndi.gaussian_filter(img.numpy(), params["sigma"]), atol=1e-5)
    assert out_seg is seg


def test_probability_zero_returns_the_input():
    img = _image(np.ones((4, 4, 4), np.float32))
    assert tx.RandomNoise(1.0, p=0)(img) is img


def test_clip_and_quantile_clip_match_numpy(mni_t1):
    a = mni_t1.numpy()
    np.testing.assert_array_equal(tx.Clip(10, 50)(mni_t1).numpy(), np.clip(a, 10, 50))
    lo, hi = np.nanquantile(a, [0.02, 0.98])
    np.testing.assert_allclose(tx.QuantileClip(0.02, 0.98)(mni_t1).numpy(), np.clip(a, lo, hi), rtol=1e-6)
    np.testing.assert_array_equal(tx.Clip(high=0)(mni_t1).numpy(), np.minimum(a, 0))


def test_quantile_clip_ignores_nan():
    a = np.arange(100, dtype=np.float32).reshape(4, 5, 5)
    a[0, 0, 0] = np.nan
    out = tx.QuantileClip(0.1, 0.9)(_image(a)).numpy()
    lo, hi = np.nanquantile(a, [0.1, 0.9])
    assert np.isnan(out[0, 0, 0])
    np.testing.assert_allclose(out[1:], np.clip(a[1:], lo, hi))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tx.RandomNoise(sd=-1), r"RandomNoise: sd must satisfy 0.0 <= min <= max"),
        (lambda: tx.RandomNoise(sd=(2, 1)), r"RandomNoise: sd must satisfy"),
        (lambda: tx.RandomSmoothing(-1, 1), r"RandomSmoothing: sigma must satisfy"),
        (lambda: tx.RandomSmoothing(2, 1), r"RandomSmoothing: sigma must satisfy"),
        (lambda: tx.Clip(5, 1), r"Clip: low must not exceed high, got low=5 > high=1"),
        (lambda: tx.QuantileClip(0.9, 0.1), r"QuantileClip: expected 0 <= lower <= upper <= 1"),
        (lambda: tx.RandomNoise(0.1, p=1.5), r"RandomNoise: p must be a probability in \[0, 1\], got 1.5"),
    ],
)
def test_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_parameters_of_the_wrong_type_are_type_errors():
    with pytest.raises(TypeError, match=r"RandomNoise: sd must be a number or a \(min, max\) pair, got 'a'"):
        tx.RandomNoise(sd="a")
    with pytest.raises(TypeError, match=r"RandomSmoothing: p must be a probability in \[0, 1\], got '1'"):
        tx.RandomSmoothing(p="1")


def test_wrong_dimensionality_is_a_clear_error():
    with pytest.raises(ValueError, match="gaussian smoothing: expected a 2-D or 3-D image"):
        from nitrain import _core

        _core.gaussian_smooth(np.zeros(5, np.float32), np.zeros(5, np.float32), [1.0])
