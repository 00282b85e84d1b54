"""Elastic deformation: the B-spline field, the draw/apply split and the resampling rules."""

import ants
import numpy as np
import pytest

import nitrain
from nitrain import _core
from nitrain import transforms as tx

PERMUTED = np.eye(3)[[1, 2, 0]]


def _image(arr, **geometry):
    return ants.from_numpy(np.asfortranarray(arr), **geometry)


@pytest.fixture
def pair():
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in (26, 22, 20)), indexing="ij")
    arr = (np.sin(z / 4) + np.cos(y / 5) + x / 10).astype(np.float32)
    labels = (arr > 1).astype(np.uint8) + 3 * (arr > 1.8).astype(np.uint8)
    geometry = dict(spacing=(1.2, 0.9, 1.1), origin=(3.0, -2.0, 5.0), direction=PERMUTED)
    return _image(arr, **geometry), _image(labels, **geometry)


def _bspline_basis(n, m):
    """Cubic B-spline weights (n voxels, m control points; m - 3 intervals from first to last voxel)."""
    u = np.arange(n) * ((m - 3) / (n - 1))
    k = np.minimum(np.floor(u).astype(int), m - 4)
    t = u - k
    w = np.stack([(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3], 1) / 6
    out = np.zeros((n, m))
    out[np.arange(n)[:, None], k[:, None] + np.arange(4)] = w
    return out


def test_zero_displacements_give_the_image_back(pair):
    img, seg = pair
    grid = np.zeros((5, 6, 7, 3))
    out = tx.ElasticDeformation(grid)(img, seg)
    np.testing.assert_array_equal(out[0].numpy(), img.numpy())
    np.testing.assert_array_equal(out[1].numpy(), seg.numpy())
    assert out[1].pixeltype == "unsigned char"


def test_a_uniform_displacement_is_a_translation(pair):
    img, seg = pair
    d = np.array([2.5, -1.2, 0.7])  # mm along the image axes
    grid = np.broadcast_to(d, (6, 5, 7, 3))
    got = tx.ElasticDeformation(grid)(img, seg)
    # sampling at x + d moves the content by -d
    want = tx.Translate(-d)(img, seg)
    np.testing.assert_allclose(got[0].numpy(), want[0].numpy(), atol=1e-5)
    assert (got[1].numpy() != want[1].numpy()).mean() < 1e-3


def test_the_kernel_matches_a_dense_numpy_field():
    rng = np.random.default_rng(4)
    shape, m = (19, 17, 15), (6, 5, 7)
    arr = rng.random(shape).astype(np.float32)
    grid = rng.uniform(-2, 2, (*m, 3))
    basis = [_bspline_basis(n, k) for n, k in zip(shape, m, strict=True)]
    field = np.stack([np.einsum("ia,jb,kc,abc->ijk", *basis, grid[..., d]) for d in range(3)])
    p = np.indices(shape) + field
    # trilinear interpolation with ITK's rules (clamped neighbours inside, 0 outside)
    n = np.asarray(shape).reshape(3, 1, 1, 1)
    inside = np.all((p >= -0.5) & (p < n - 0.5), axis=0)
    f = np.floor(p)
    w = p - f
    lo = np.clip(f.astype(int), 0, n - 1)
    hi = np.clip(f.astype(int) + 1, 0, n - 1)
    want = np.zeros(shape)
    for corner in np.ndindex(2, 2, 2):
        up = np.asarray(corner).reshape(3, 1, 1, 1) == 1
        weight = np.prod(np.where(up, w, 1 - w), axis=0)
        want += weight * arr[tuple(np.where(up, hi, lo))]
    want = np.where(inside, want, 0)
    for layout in (np.asfortranarray(arr), np.ascontiguousarray(arr), np.ascontiguousarray(arr[::-1])[::-1]):
        out = np.empty(shape, np.float32, order="F")
        _core.bspline_warp(layout, out, grid, "linear")
        near_border = np.any((np.abs(p + 0.5) < 1e-4) | (np.abs(p - (n - 0.5)) < 1e-4), axis=0)
        np.testing.assert_allclose(out[~near_border], want[~near_border], atol=1e-5)


def test_random_draws_replay_through_the_twin_and_respect_the_limits(pair):
    img, seg = pair
    t = tx.RandomElasticDeformation(num_control_points=(6, 7, 8), max_displacement=(3.0, 2.0, 1.0))
    rng = np.random.default_rng(0)
    params = t.decide(img, rng)
    assert params is not None
    grid = np.asarray(params["displacements"])
    assert grid.shape == (6, 7, 8, 3)
    assert (np.abs(grid) <= [3.0, 2.0, 1.0]).all()
    # locked borders (2): the two outer layers do not move
    assert (grid[:2] == 0).all() and (grid[-2:] == 0).all()
    assert (grid[:, :2] == 0).all() and (grid[:, :, -2:] == 0).all()
    assert (grid[2:-2, 2:-2, 2:-2] != 0).all()
    a = t(img, seg, rng=np.random.default_rng(0))
    b = t.twin(params)(img, seg)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    # labels keep their values; the image moved
    assert set(np.unique(a[1].numpy())) <= set(np.unique(seg.numpy()))
    assert np.abs(a[0].numpy() - img.numpy()).max() > 0.05
    # a seed fixes the draw
    again = tx.RandomElasticDeformation(
        num_control_points=(6, 7, 8), max_displacement=(3.0, 2.0, 1.0), seed=5
    )
    other = tx.RandomElasticDeformation(
        num_control_points=(6, 7, 8), max_displacement=(3.0, 2.0, 1.0), seed=5
    )
    np.testing.assert_array_equal(again(img).numpy(), other(img).numpy())


def test_two_d_images_and_the_mni_template(mni_t1):
    flat = _image(np.random.default_rng(1).random((30, 24)).astype(np.float32), spacing=(1.5, 0.8))
    out = tx.RandomElasticDeformation(max_displacement=4.0, seed=1)(flat)
    assert out.shape == flat.shape and out.pixeltype == "float"
    np.testing.assert_allclose(out.spacing, flat.spacing)
    t = tx.RandomElasticDeformation(seed=2)
    before = nitrain.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            nitrain.set_num_threads(n)
            results.append(t.apply(mni_t1, t.decide(mni_t1, np.random.default_rng(3))).numpy())
    finally:
        nitrain.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])
    # displacements of at most 7.5 mm: the moved template still overlaps itself well
    a, b = results[0], mni_t1.numpy()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8


def test_chains_with_elastic_deformation_keep_working(pair):
    img, seg = pair
    chain = tx.Compose(
        [tx.RandomRotate(-5, 5), tx.RandomElasticDeformation(max_displacement=2.0), tx.Zoom(1.05)]
    )
    out = chain(img, seg, rng=3)
    rng = np.random.default_rng(3)
    want = (img, seg)
    for t in chain.transforms:
        want = t(*want, rng=rng)
    np.testing.assert_array_equal(out[0].numpy(), want[0].numpy())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_control_points": 3}, "at least 4"),
        ({"num_control_points": 4}, "every control point is locked"),
        ({"max_displacement": -1.0}, "negative"),
        ({"locked_borders": 3}, "0, 1 or 2"),
        ({"interpolation": "cubic"}, "interpolation"),
    ],
)
def test_arguments_are_checked_when_made(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tx.RandomElasticDeformation(**kwargs)


def test_fixed_deformation_checks_its_grid(pair):
    img, _ = pair
    with pytest.raises(ValueError, match="at least 4"):
        tx.ElasticDeformation(np.zeros((3, 5, 5, 3)))
    with pytest.raises(ValueError, match="2-D image"):
        tx.ElasticDeformation(np.zeros((5, 5, 2)))(img)
    # the resampling rule is the affine warps' (nearest for labels)
    grid = np.zeros((5, 5, 5, 3))
    grid[2, 2, 2] = [1.0, 0.0, 0.0]
    out = tx.ElasticDeformation(grid, interpolation="nearest")(img).numpy()
    assert set(np.unique(out)) <= set(np.unique(img.numpy())) | {0}
