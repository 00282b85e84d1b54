import ants
import numpy as np
import pytest

import nitrain
from nitrain import transforms as tx
from nitrain.transforms._ants import empty_like_image


def _image(arr, **geometry):
    return ants.from_numpy(np.asfortranarray(arr), **geometry)


@pytest.fixture
def img3d():
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((20, 30, 40)) * 50 + 300).astype(np.float32)
    return _image(arr, spacing=(2.0, 1.5, 3.0), origin=(10.0, -5.0, 2.0), direction=np.eye(3)[[1, 0, 2]])


def test_new_images_share_memory_with_the_kernel_buffer(img3d):
    out, buf = empty_like_image(img3d)
    assert np.shares_memory(out.view(), buf)
    buf[:] = 7
    assert out.numpy().min() == 7 == out.numpy().max()
    assert out.spacing == img3d.spacing and out.origin == img3d.origin
    np.testing.assert_array_equal(out.direction, img3d.direction)


def test_range_normalize_matches_numpy_and_keeps_geometry(img3d):
    out = tx.RangeNormalize(-1, 2)(img3d)
    a = img3d.numpy().astype(np.float64)
    ref = (a - a.min()) / (a.max() - a.min()) * 3 - 1
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    assert out.spacing == img3d.spacing and out.origin == img3d.origin
    np.testing.assert_array_equal(out.direction, img3d.direction)
    assert out.pixeltype == "float"


def test_normalize_intensity_matches_numpy(img3d):
    out = tx.NormalizeIntensity(5, 2)(img3d)
    a = img3d.numpy().astype(np.float64)
    np.testing.assert_allclose(out.numpy(), (a - a.mean()) / a.std() * 2 + 5, atol=1e-4)
    z = tx.StandardNormalize()(img3d).numpy()
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-5


def test_2d_and_integer_images():
    arr = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7)
    img = ants.from_numpy(arr)
    out = tx.RangeNormalize()(img)
    assert out.dimension == 2 and out.numpy().dtype == np.float32
    np.testing.assert_allclose(out.numpy(), arr / arr.max(), atol=1e-6)


def test_constant_image_does_not_divide_by_zero():
    img = _image(np.full((4, 5, 6), 3.0, np.float32))
    np.testing.assert_array_equal(tx.RangeNormalize(2, 9)(img).numpy(), 2)
    np.testing.assert_array_equal(tx.NormalizeIntensity(4, 1)(img).numpy(), 4)


def test_nan_voxels_are_ignored_and_stay_nan():
    arr = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    arr[0, 0, 0] = np.nan
    out = tx.RangeNormalize()(_image(arr)).numpy()
    assert np.isnan(out[0, 0, 0])
    assert np.nanmin(out) == 0 and np.nanmax(out) == 1


def test_real_mri_and_thread_count_independence(mni_t1):
    before = nitrain.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            nitrain.set_num_threads(n)
            results.append(tx.NormalizeIntensity(0, 1)(mni_t1).numpy())
    finally:
        nitrain.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])
    a = mni_t1.numpy().astype(np.float64)
    np.testing.assert_allclose(results[0], (a - a.mean()) / a.std(), atol=1e-4)


def test_bad_parameters_are_rejected_at_construction():
    with pytest.raises(ValueError, match=r"RangeNormalize: min must not exceed max, got min=2 > max=1"):
        tx.RangeNormalize(2, 1)
    with pytest.raises(ValueError, match="NormalizeIntensity: sd must be >= 0, got -1"):
        tx.NormalizeIntensity(0, -1)
    with pytest.raises(TypeError, match="RangeNormalize: min must be a number"):
        tx.RangeNormalize("0", 1)
    with pytest.raises(TypeError, match="RangeNormalize: image 0 must be an ants.ANTsImage, got str"):
        tx.RangeNormalize()("brain.nii.gz")


def test_subclassing_base_transform_as_in_the_seed(img3d):
    class AddOne(tx.BaseTransform):
        def __init__(self, amount):
            self.amount = amount

        def __call__(self, image):
            return image + self.amount

    t = AddOne(amount=1)
    draws = t.sample(img3d, n=3)
    assert len(draws) == 3
    np.testing.assert_allclose(draws[0].numpy(), img3d.numpy() + 1)
    assert repr(t) == "AddOne(amount=1)"
