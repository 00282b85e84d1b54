"""The affine warp (nitrain's kernel, ``_core.affine_warp``) against ANTs and a numpy reference, and the
merging of consecutive warps into one resampling (``run_transforms`` / ``Compose``)."""

import itertools

import ants
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nitrain
from nitrain import _core
from nitrain import transforms as tx
from nitrain.transforms import _geometry as geo
from nitrain.transforms.base import run_transforms

PERMUTED = np.eye(3)[[1, 2, 0]]


def _image(arr, **geometry):
    return ants.from_numpy(np.asfortranarray(arr), **geometry)


def _ants_warp(image, matrix, interpolation):
    """The warp as nitrain did it before its kernel: an ITK affine transform about the image centre,
    ``ants.apply_ants_transform_to_image`` on the image's own grid."""
    ndim = int(image.dimension)
    direction = np.asarray(image.direction, dtype=float)
    lin, shift = matrix[:ndim, :ndim], matrix[:ndim, ndim]
    back = direction @ np.linalg.inv(lin) @ np.linalg.inv(direction)
    t = ants.create_ants_transform(
        transform_type="AffineTransform",
        dimension=ndim,
        matrix=back,
        center=geo.centre(image).tolist(),
        translation=(-back @ (direction @ shift)).tolist(),
    )
    return ants.apply_ants_transform_to_image(t, image, image, interpolation=interpolation)


def _positions(image, matrix):
    """Each output voxel's continuous input index (float64), shape (ndim, *image.shape)."""
    index = geo.index_matrix("test", image, matrix)
    ndim = int(image.dimension)
    grid = np.indices(image.shape).reshape(ndim, -1).astype(float)
    return (index[:ndim, :ndim] @ grid + index[:ndim, ndim:]).reshape(ndim, *image.shape)


def _ambiguous(image, matrix, nearest, eps=1e-3):
    """Voxels where single-precision positions (ANTs') may decide differently from double ones: near the
    half-voxel border of the image and, for nearest neighbour, near a rounding tie."""
    p = _positions(image, matrix)
    n = np.asarray(image.shape, dtype=float).reshape(-1, *([1] * (p.ndim - 1)))
    near = (np.abs(p + 0.5) < eps) | (np.abs(p - (n - 0.5)) < eps)
    if nearest:
        near |= np.abs(p - np.floor(p) - 0.5) < eps
    return near.any(axis=0)


def _reference(arr, index, interpolation):
    """ITK's rules in numpy, float64: inside when -0.5 <= p < n - 0.5 on every axis (else 0); linear with
    the neighbours clamped into the image; nearest rounds half up."""
    nd = arr.ndim
    n = np.asarray(arr.shape)[:, None]
    grid = np.indices(arr.shape).reshape(nd, -1).astype(float)
    p = index[:nd, :nd] @ grid + index[:nd, nd:]
    inside = np.all((p >= -0.5) & (p < n - 0.5), axis=0)
    if interpolation == "nearest":
        r = np.clip(np.floor(p + 0.5).astype(np.int64), 0, n - 1)
        out = arr[tuple(r)].astype(float)
    else:
        f = np.floor(p)
        w = p - f
        lo = np.clip(f.astype(np.int64), 0, n - 1)
        hi = np.clip(f.astype(np.int64) + 1, 0, n - 1)
        out = np.zeros(p.shape[1])
        for corner in itertools.product((0, 1), repeat=nd):
            up = np.asarray(corner)[:, None] == 1
            weight = np.prod(np.where(up, w, 1 - w), axis=0)
            out += weight * arr[tuple(np.where(up, hi, lo))].astype(float)
    return np.where(inside, out, 0.0).reshape(arr.shape)


def _random_matrix(rng, ndim, scale=1.0):
    if ndim == 2:
        rotation = float(rng.uniform(-20, 20)) * scale
    else:
        rotation = (rng.uniform(-20, 20, 3) * scale).tolist()
    return geo.affine_matrix(
        ndim,
        rotation=rotation,
        translation=rng.uniform(-3, 3, ndim) * scale,
        shear=rng.uniform(-0.1, 0.1, ndim * (ndim - 1)) * scale,
        zoom=1 + rng.uniform(-0.15, 0.15, ndim) * scale,
    )


def _random_image(rng, shape, dtype):
    ndim = len(shape)
    q, _ = np.linalg.qr(rng.standard_normal((ndim, ndim)))
    values = rng.random(shape) * (200 if np.dtype(dtype).kind in "ui" else 1000)
    return _image(
        values.astype(dtype),
        spacing=tuple(rng.uniform(0.6, 2.0, ndim).tolist()),
        origin=tuple(rng.uniform(-20, 20, ndim).tolist()),
        direction=q,
    )


# -- against ANTs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("interpolation", ["linear", "nearestneighbor"])
def test_mni_template_matches_ants(mni_t1, interpolation):
    matrix = geo.affine_matrix(
        3, rotation=[7.0, -5.0, 9.0], translation=[2.0, -3.0, 1.5], shear=[0.02] * 6, zoom=[1.05, 0.95, 1.02]
    )
    ours = geo.warp("test", mni_t1, matrix, interpolation)
    theirs = _ants_warp(mni_t1, matrix, interpolation)
    assert ours.pixeltype == theirs.pixeltype == "float"
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.spacing, theirs.spacing)
    np.testing.assert_allclose(ours.origin, theirs.origin)
    a, b = ours.numpy(), theirs.numpy()
    ambiguous = _ambiguous(mni_t1, matrix, nearest=interpolation != "linear")
    assert ambiguous.mean() < 1e-2
    if interpolation == "linear":
        # ANTs' transform is single precision: positions agree to ~1e-5 voxel
        assert np.abs(a - b)[~ambiguous].max() <= 1e-4 * np.abs(b).max()
    else:
        np.testing.assert_array_equal(a[~ambiguous], b[~ambiguous])
        assert (a != b).mean() < 1e-4


@pytest.mark.parametrize(
    ("shape", "dtype", "interpolation"),
    [
        (shape, dtype, interpolation)
        for shape in [(23, 19, 17), (31, 26)]
        for dtype in [np.float32, np.float64, np.uint8, np.uint32]
        for interpolation in ["linear", "nearestneighbor"]
    ],
)
def test_random_images_with_geometry_match_ants(shape, dtype, interpolation):
    rng = np.random.default_rng(hash((shape, np.dtype(dtype).name, interpolation)) % 2**32)
    img = _random_image(rng, shape, dtype)
    for _ in range(3):
        matrix = _random_matrix(rng, len(shape))
        ours = geo.warp("test", img, matrix, interpolation)
        theirs = _ants_warp(img, matrix, interpolation)
        assert ours.pixeltype == theirs.pixeltype == img.pixeltype
        a, b = ours.numpy().astype(float), theirs.numpy().astype(float)
        ok = ~_ambiguous(img, matrix, nearest=interpolation != "linear")
        if interpolation != "linear":
            np.testing.assert_array_equal(a[ok], b[ok])
        elif np.dtype(dtype).kind == "f":
            assert np.abs(a - b)[ok].max() <= 1e-4 * np.abs(b).max()
        else:
            # ITK truncates: a value within rounding of an integer may land on either side
            assert np.abs(a - b)[ok].max() <= 1
            assert (a != b)[ok].mean() < 0.01


def test_identity_and_integer_shifts_are_exact():
    rng = np.random.default_rng(3)
    img = _random_image(rng, (12, 10, 9), np.float32)
    for interpolation in ("linear", "nearestneighbor"):
        same = geo.warp("test", img, np.eye(4), interpolation)
        np.testing.assert_array_equal(same.numpy(), img.numpy())
    # Translate by whole voxels: an exact shift of the array (with zeros coming in)
    shifted = tx.Translate((2, -1, 0), unit="voxel")(img).numpy()
    want = np.zeros_like(img.numpy())
    want[2:, :-1, :] = img.numpy()[:-2, 1:, :]
    np.testing.assert_array_equal(shifted, want)


@pytest.mark.parametrize("interpolation", ["bspline", "gaussian", "lanczoswindowedsinc"])
def test_other_interpolations_still_go_to_ants_on_the_same_grid(interpolation):
    rng = np.random.default_rng(5)
    img = _random_image(rng, (16, 14, 12), np.float32)
    matrix = _random_matrix(rng, 3)
    ours = geo.warp("test", img, matrix, interpolation).numpy()
    theirs = _ants_warp(img, matrix, interpolation).numpy()
    ok = ~_ambiguous(img, matrix, nearest=False)
    assert np.abs(ours - theirs)[ok].max() <= 1e-3 * np.abs(theirs).max()


def test_singular_matrix_is_refused():
    img = _random_image(np.random.default_rng(0), (6, 6, 6), np.float32)
    with pytest.raises(ValueError, match="singular"):
        geo.warp("Affine", img, np.diag([1.0, 0.0, 1.0, 1.0]), "linear")


def test_unsigned_int_images_keep_their_pixel_type_and_share_the_kernel_buffer():
    img = _image(np.arange(6 * 5 * 4, dtype=np.uint32).reshape(6, 5, 4))
    assert img.pixeltype == "unsigned int"
    out = tx.Rotate(90, interpolation="nearest")(img)
    assert out.pixeltype == "unsigned int"
    assert set(np.unique(out.numpy())) <= set(np.unique(img.numpy())) | {0}


# -- the kernel against numpy ----------------------------------------------------------------------------


def _layouts(arr):
    """The same values in Fortran order, C order and with negative strides."""
    flipped = np.ascontiguousarray(arr[::-1, :, ...])[::-1, :, ...]
    return [np.asfortranarray(arr), np.ascontiguousarray(arr), flipped]


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 14), min_size=2, max_size=3),
    dtype=st.sampled_from([np.float32, np.float64, np.uint8, np.uint32, np.int16]),
    interpolation=st.sampled_from(["linear", "nearest"]),
    seed=st.integers(0, 2**31),
)
def test_kernel_matches_numpy_reference_for_any_layout(shape, dtype, interpolation, seed):
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    arr = (rng.random(shape) * 100).astype(dtype)
    index = np.eye(ndim + 1)
    index[:ndim] += rng.uniform(-0.4, 0.4, (ndim, ndim + 1))
    index[:ndim, ndim] += rng.uniform(-2, 2, ndim)
    want = _reference(arr, index, interpolation)
    results = []
    for a in _layouts(arr):
        out = np.empty(shape, dtype, order="F")
        _core.affine_warp(a, out, np.ascontiguousarray(index[:ndim]), interpolation)
        results.append(out)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    got = results[0].astype(float)
    if np.dtype(dtype).kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    elif interpolation == "nearest":
        np.testing.assert_array_equal(got, want)
    else:
        # truncated like ITK's cast (numpy's reference is exact; the kernel's value may round across)
        assert np.all((got == np.trunc(want)) | (np.abs(got - want) < 1e-6) | (np.abs(got + 1 - want) < 1e-9))


def test_kernel_fill_value_and_argument_errors():
    a = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    far = np.array([[1.0, 0, 0, 50], [0, 1, 0, 0], [0, 0, 1, 0]])
    out = np.empty((3, 3, 3), np.float32, order="F")
    _core.affine_warp(a, out, far, "linear", fill=-7.0)
    assert (out == -7).all()
    with pytest.raises(TypeError, match="dtype"):
        _core.affine_warp(a, np.empty((3, 3, 3), np.float64, order="F"), far, "linear")
    with pytest.raises(ValueError, match="Fortran"):
        _core.affine_warp(a, np.empty((3, 3, 3), np.float32), far, "linear")
    with pytest.raises(ValueError, match="interpolation"):
        _core.affine_warp(a, out, far, "cubic")
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        _core.affine_warp(a, out, far[:2, :3].copy(), "linear")


def test_results_do_not_depend_on_the_thread_count(mni_t1):
    matrix = _random_matrix(np.random.default_rng(11), 3)
    before = nitrain.get_num_threads()
    try:
        runs = []
        for n in (1, 2, 3):
            nitrain.set_num_threads(n)
            runs.append([geo.warp("test", mni_t1, matrix, i).numpy() for i in ("linear", "nearestneighbor")])
    finally:
        nitrain.set_num_threads(before)
    for r in runs[1:]:
        for a, b in zip(r, runs[0], strict=True):
            np.testing.assert_array_equal(a, b)


# -- composing consecutive warps -------------------------------------------------------------------------


@pytest.fixture
def pair():
    rng = np.random.default_rng(8)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in (24, 22, 20)), indexing="ij")
    arr = (np.sin(z / 4) + np.cos(y / 5) + x / 10).astype(np.float32)
    labels = (arr > 1).astype(np.uint8) + (arr > 1.8).astype(np.uint8)
    geometry = dict(spacing=(1.2, 0.9, 1.1), origin=(3.0, -2.0, 5.0), direction=PERMUTED)
    del rng
    return _image(arr, **geometry), _image(labels, **geometry)


def test_a_chain_of_warps_is_one_resampling_by_the_product(pair):
    img, seg = pair
    chain = [tx.Rotate(12, axes=(0, 2)), tx.Translate((2, -1, 0.5)), tx.Zoom(1.1), tx.Shear(0.05)]
    got = tx.Compose(chain)(img, seg)
    product = np.linalg.multi_dot([t.index_matrix(img, {}) for t in chain])
    np.testing.assert_array_equal(got[0].numpy(), geo.resample("t", img, product, "linear").numpy())
    np.testing.assert_array_equal(got[1].numpy(), geo.resample("t", seg, product, "nearestneighbor").numpy())
    # the same as the content matrices multiplied the other way round, as one Affine
    content = np.linalg.multi_dot([t._matrix(img, 3) for t in reversed(chain)])
    np.testing.assert_allclose(got[0].numpy(), tx.Affine(content)(img).numpy(), atol=1e-5)
    # and close to resampling four times, inside (each resampling blurs a little)
    one_by_one = img
    for t in chain:
        one_by_one = t(one_by_one)
    inner = (slice(6, -6),) * 3
    assert np.abs(got[0].numpy() - one_by_one.numpy())[inner].max() < 0.1


def test_random_warps_in_a_chain_draw_what_they_draw_one_by_one(pair):
    img, seg = pair
    chain = [
        tx.RandomRotate(-15, 15),
        tx.RandomZoom(0.9, 1.1, p=0.5),
        tx.RandomTranslate(-3, 3),
        tx.RandomAffine(rotation=5, shear=0.05),
    ]
    for seed in range(6):
        got = run_transforms(chain, img, seg, rng=seed)
        rng = np.random.default_rng(seed)
        draws = [t.decide(img, rng) for t in chain]
        used = [t.index_matrix(img, d) for t, d in zip(chain, draws, strict=True) if d is not None]
        product = np.linalg.multi_dot([np.eye(4)] * 2 + used)
        want = [geo.resample("t", img, product, "linear"), geo.resample("t", seg, product, "nearestneighbor")]
        np.testing.assert_array_equal(got[0].numpy(), want[0].numpy())
        np.testing.assert_array_equal(got[1].numpy(), want[1].numpy())
        # a Compose seeded the same way gives the same images
        composed = tx.Compose(chain)(img, seg, rng=seed)
        np.testing.assert_array_equal(composed[0].numpy(), got[0].numpy())


def test_other_transforms_and_interpolations_end_a_run(pair):
    img, _ = pair
    chain = [tx.Rotate(10), tx.RangeNormalize(0, 1), tx.Zoom(1.1), tx.Translate(1.0, interpolation="nearest")]
    got = tx.Compose(chain)(img).numpy()
    want = img
    for t in chain:
        want = t(want)
    np.testing.assert_array_equal(got, want.numpy())
    # the draws after a run are unchanged: the rng is where running one by one leaves it
    seq = [tx.RandomRotate(-10, 10), tx.RandomNoise(0.1), tx.RandomZoom()]
    a = run_transforms(seq, img, rng=3)[0].numpy()
    rng = np.random.default_rng(3)
    b = img
    for t in seq:
        b = t(b, rng=rng)
    np.testing.assert_array_equal(a, b.numpy())


def test_a_warp_that_overrides_apply_is_not_merged(pair):
    img, _ = pair
    calls = []

    class Logged(tx.Rotate):
        def apply(self, image, params, label=False):
            calls.append(1)
            return super().apply(image, params, label)

    got = tx.Compose([tx.Zoom(1.1), Logged(10), tx.Zoom(0.95)])(img).numpy()
    assert calls == [1]
    want = tx.Zoom(0.95)(Logged(10)(tx.Zoom(1.1)(img))).numpy()
    np.testing.assert_array_equal(got, want)
