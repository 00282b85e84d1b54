import ants
import numpy as np
import pytest

from nitrain.transforms import spatial as sp
from nitrain.transforms._geometry import centre
from nitrain.transforms.base import BaseTransform, Compose

PERMUTED = np.eye(3)[[1, 2, 0]]  # a non-trivial (but valid) direction matrix


def _image(arr, **geometry):
    return ants.from_numpy(np.asfortranarray(arr), **geometry)


def _physical(image, index):
    return np.asarray(ants.transform_index_to_physical_point(image, [int(i) for i in index]))


def _same_geometry(a, b):
    assert a.shape == b.shape
    np.testing.assert_allclose(a.spacing, b.spacing)
    np.testing.assert_allclose(a.origin, b.origin)
    np.testing.assert_allclose(a.direction, b.direction)


@pytest.fixture
def img3d():
    rng = np.random.default_rng(0)
    arr = rng.random((12, 14, 16)).astype(np.float32)
    return _image(arr, spacing=(2.0, 1.5, 3.0), origin=(10.0, -5.0, 2.0), direction=PERMUTED)


@pytest.fixture
def pair3d():
    """A smooth 3-D image and its label map (labels 0, 1, 2, 7) on a 1 mm grid."""
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in (20, 22, 24)), indexing="ij")
    arr = np.sin(z / 3) + np.cos(y / 4) + x / 10
    labels = np.zeros((20, 22, 24), np.uint8)
    labels[4:10, 5:15, 6:18] = 1
    labels[11:16, 3:9, 4:12] = 2
    labels[9:14, 14:20, 15:21] = 7
    geometry = dict(spacing=(1.0, 1.0, 1.0), origin=(-3.0, 4.0, 1.0))
    return _image(arr.astype(np.float32), **geometry), _image(labels, **geometry)


# -- resizing --------------------------------------------------------------------------------------------


def test_resize_keeps_the_field_of_view_and_centre(img3d):
    out = sp.Resize((6, 28, 8))(img3d)
    assert out.shape == (6, 28, 8)
    old_extent = np.asarray(img3d.shape) * np.asarray(img3d.spacing)
    np.testing.assert_allclose(np.asarray(out.shape) * np.asarray(out.spacing), old_extent)
    np.testing.assert_allclose(out.direction, img3d.direction)
    np.testing.assert_allclose(centre(out), centre(img3d))
    assert out.pixeltype == img3d.pixeltype


def test_resize_of_a_constant_image_stays_constant_and_a_label_map_keeps_its_labels(pair3d):
    const = _image(np.full((8, 9), 3.5, np.float32), spacing=(2.0, 0.5))
    np.testing.assert_allclose(sp.Resize((16, 5))(const).numpy(), 3.5, atol=1e-5)
    img, seg = pair3d
    _, out = sp.Resize((10, 30, 13))(img, seg)
    assert out.pixeltype == "unsigned char"
    assert set(np.unique(out.numpy())) == {0, 1, 2, 7}


def test_resample_to_a_spacing_and_to_a_shape(img3d):
    out = sp.Resample((1.0, 1.0, 1.0), use_spacing=True)(img3d)
    np.testing.assert_allclose(out.spacing, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(out.origin, img3d.origin)
    np.testing.assert_allclose(out.direction, img3d.direction)
    # ANTs keeps the physical size of the grid: shape x spacing is the same to within one new voxel
    extent = np.asarray(img3d.shape) * np.asarray(img3d.spacing)
    assert np.all(np.abs(np.asarray(out.shape) * 1.0 - extent) <= 1.0)

    out = sp.Resample((6, 7, 31))(img3d)
    assert out.shape == (6, 7, 31)
    # ... between the first and last voxel centres, with the origin fixed
    old = (np.asarray(img3d.shape) - 1) * np.asarray(img3d.spacing)
    np.testing.assert_allclose((np.asarray(out.shape) - 1) * np.asarray(out.spacing), old, rtol=1e-6)
    np.testing.assert_allclose(out.origin, img3d.origin)


def test_resample_real_mri_to_4mm_with_its_labels(mni_t1):
    seg = (mni_t1 > 0.5).clone("unsigned char")
    img, out = sp.Resample((4, 4, 4), use_spacing=True)(mni_t1, seg)
    np.testing.assert_allclose(img.spacing, (4.0, 4.0, 4.0))
    assert out.shape == img.shape and abs(img.shape[0] * 4 - 197) <= 4
    assert set(np.unique(out.numpy())) == {0, 1}
    assert abs(img.numpy().mean() - mni_t1.numpy().mean()) < 0.05 * mni_t1.numpy().mean()


# -- crop, pad, slice, flip, reorient --------------------------------------------------------------------


def test_crop_and_pad_keep_a_bright_voxel_at_the_same_physical_point(img3d):
    arr = img3d.numpy()
    arr[7, 9, 5] = 100.0
    img = img3d.new_image_like(arr)
    point = _physical(img, (7, 9, 5))

    crop = sp.Crop([(3, 10), (4, 12), (2, 15)])(img)
    assert crop.shape == (7, 8, 13)
    idx = np.argwhere(crop.numpy() == 100.0)[0]
    np.testing.assert_array_equal(idx, (4, 5, 3))
    np.testing.assert_allclose(_physical(crop, idx), point)
    np.testing.assert_allclose(crop.direction, img.direction)

    pad = sp.Pad([(1, 2), 3, (0, 4)], value=-1)(img)
    assert pad.shape == (15, 20, 20)
    idx = np.argwhere(pad.numpy() == 100.0)[0]
    np.testing.assert_array_equal(idx, (8, 12, 5))
    np.testing.assert_allclose(_physical(pad, idx), point)
    assert pad.numpy()[0, 0, 0] == -1 and pad.numpy()[-1, -1, -1] == -1
    np.testing.assert_array_equal(pad.numpy()[1:13, 3:17, 0:16], arr)


def test_crop_to_the_foreground_with_a_margin_takes_the_box_from_the_first_image():
    arr = np.zeros((10, 12, 14), np.float32)
    arr[3:6, 4:9, 5:7] = 1.0
    seg = np.zeros_like(arr, dtype=np.uint8)
    seg[4, 5, 6] = 3
    geometry = dict(spacing=(1.0, 2.0, 0.5), origin=(1.0, 2.0, 3.0), direction=PERMUTED)
    img, lab = _image(arr, **geometry), _image(seg, **geometry)
    out = sp.Crop("foreground")(img)
    assert out.shape == (3, 5, 2) and out.numpy().min() == 1.0
    np.testing.assert_allclose(out.origin, _physical(img, (3, 4, 5)))
    out, lab_out = sp.Crop(None, margin=(1, 0, 20))(img, lab)
    assert out.shape == lab_out.shape == (5, 5, 14)
    assert lab_out.pixeltype == "unsigned char" and lab_out.numpy().sum() == 3


def test_pad_pads_label_maps_with_zero(pair3d):
    img, seg = pair3d
    out, lab = sp.Pad(2, value=5)(img, seg)
    assert out.numpy()[0, 0, 0] == 5 and lab.numpy()[0, 0, 0] == 0
    assert set(np.unique(lab.numpy())) == {0, 1, 2, 7}


def test_slice_gives_a_2d_image(img3d):
    out = sp.Slice(1, 4)(img3d)
    assert out.dimension == 2 and out.shape == (12, 16)
    np.testing.assert_array_equal(out.numpy(), img3d.numpy()[:, 4, :])
    np.testing.assert_allclose(out.spacing, (2.0, 3.0))
    last = sp.Slice(2, -1)(_image(np.arange(24, dtype=np.float32).reshape(2, 3, 4)))
    np.testing.assert_array_equal(last.numpy(), np.arange(24).reshape(2, 3, 4)[:, :, -1])


def test_flip_reverses_the_array_and_keeps_the_geometry(img3d):
    out = sp.Flip(0)(img3d)
    np.testing.assert_array_equal(out.numpy(), img3d.numpy()[::-1])
    _same_geometry(out, img3d)
    out = sp.Flip([1, -1])(img3d)
    np.testing.assert_array_equal(out.numpy(), img3d.numpy()[:, ::-1, ::-1])
    seg = _image(np.arange(12, dtype=np.uint32).reshape(3, 4))
    assert sp.Flip(1)(seg).pixeltype == "unsigned int"


def test_reorient_to_ras_keeps_every_voxel_at_its_physical_point(img3d):
    arr = img3d.numpy()
    arr[2, 3, 4] = 50.0
    img = img3d.new_image_like(arr)
    out = sp.Reorient("RAS")(img)
    assert ants.get_orientation(out) == "RAS"
    assert ants.get_orientation(sp.Reorient("lpi")(img)) == "LPI"
    idx = np.argwhere(out.numpy() == 50.0)[0]
    np.testing.assert_allclose(_physical(out, idx), _physical(img, (2, 3, 4)))


# -- affine warps ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [9, 10])
def test_rotate_90_in_a_plane_is_rot90_of_the_array(n):
    arr = np.random.default_rng(n).random((n, n)).astype(np.float32)
    img = _image(arr, spacing=(1.5, 1.5), origin=(4.0, -2.0))
    np.testing.assert_array_equal(sp.Rotate(90, interpolation="nearest")(img).numpy(), np.rot90(arr))
    np.testing.assert_array_equal(sp.Rotate(-90, interpolation="nearest")(img).numpy(), np.rot90(arr, -1))
    np.testing.assert_allclose(sp.Rotate(180)(img).numpy(), np.rot90(arr, 2), atol=1e-5)
    out = sp.Rotate(90)(img)
    _same_geometry(out, img)


def test_rotate_in_3d_by_plane_and_by_per_axis_angles(img3d):
    arr = np.random.default_rng(1).random((7, 9, 9)).astype(np.float32)
    img = _image(arr)
    near = dict(interpolation="nearest")
    np.testing.assert_array_equal(sp.Rotate(90, axes=(1, 2), **near)(img).numpy(), np.rot90(arr, axes=(1, 2)))
    # about axis 0 turns axis 1 towards axis 2: the same rotation
    np.testing.assert_array_equal(sp.Rotate([90, 0, 0], **near)(img).numpy(), np.rot90(arr, axes=(1, 2)))
    cube = _image(np.random.default_rng(2).random((9, 9, 9)).astype(np.float32))
    np.testing.assert_array_equal(
        sp.Rotate([0, 0, 90], **near)(cube).numpy(), np.rot90(cube.numpy(), axes=(0, 1))
    )
    np.testing.assert_array_equal(sp.Rotate(90, **near)(cube).numpy(), np.rot90(cube.numpy(), axes=(0, 1)))
    _same_geometry(sp.Rotate([10, 20, 30])(img3d), img3d)


def test_rotate_turns_physical_space_with_anisotropic_voxels():
    arr = np.zeros((21, 11), np.float32)
    arr[14, 5] = 1.0  # 4 mm from the centre (10, 5) along axis 0
    img = _image(arr, spacing=(1.0, 2.0))
    out = sp.Rotate(90, interpolation="nearest")(img).numpy()
    # 4 mm along axis 1 = 2 voxels; the 2 mm-wide source voxel now spans 2 rows of 1 mm (a tie at row 11)
    assert out[10, 7] == 1.0
    hits = np.argwhere(out == 1.0)
    assert set(hits[:, 1]) == {7} and set(hits[:, 0]) <= {9, 10, 11}


def test_translate_by_whole_voxels_shifts_the_array(img3d):
    arr = np.random.default_rng(3).random((10, 11)).astype(np.float32)
    img = _image(arr, spacing=(2.0, 1.0))
    expected = np.zeros_like(arr)
    expected[3:, :-2] = arr[:-3, 2:]
    np.testing.assert_allclose(sp.Translate((3, -2), unit="voxel")(img).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(sp.Translate((6.0, -2.0))(img).numpy(), expected, atol=1e-6)  # mm
    # along the image axes, whatever the direction
    out = sp.Translate((4.0, 0.0, 0.0), interpolation="nearest")(img3d).numpy()
    np.testing.assert_array_equal(out[2:], img3d.numpy()[:-2])
    assert (out[:2] == 0).all()


def test_identity_warps_give_back_the_image(img3d):
    arr2 = np.random.default_rng(4).random((8, 13)).astype(np.float32)
    img2 = _image(arr2, spacing=(0.7, 1.3), origin=(1.0, 2.0), direction=np.array([[0.0, 1.0], [1.0, 0.0]]))
    for img, eye in ((img3d, np.eye(4)), (img2, np.eye(3))):
        for t in (sp.Zoom(1), sp.Affine(eye), sp.Rotate(0), sp.Shear(0), sp.Translate(0)):
            out = t(img)
            _same_geometry(out, img)
            np.testing.assert_allclose(out.numpy(), img.numpy(), atol=1e-5)
    np.testing.assert_allclose(sp.Affine(np.eye(4)[:3])(img3d).numpy(), img3d.numpy(), atol=1e-5)


def test_zoom_scales_about_the_centre():
    arr = np.zeros((21, 21), np.float32)
    arr[10, 10] = 9.0
    arr[12, 10] = 5.0  # 2 voxels from the centre
    out = sp.Zoom(2, interpolation="nearest")(_image(arr)).numpy()
    assert out[10, 10] == 9.0 and out[14, 10] == 5.0 and out[12, 10] == 0.0
    out = sp.Zoom((1, 2), interpolation="nearest")(_image(arr)).numpy()
    assert out[12, 10] == 5.0


@pytest.mark.parametrize(
    ("kwargs", "moved"),
    [
        (dict(rotation=90, translation=(2, 0, 1)), (1, 3, 1)),
        (dict(rotation=90, translation=(2, 0, 1), zoom=2), (0, 6, 1)),
        (dict(rotation=[0, 0, 90], zoom=(1, 2, 1), translation=(0, -1, 0)), (-2, 2, 0)),
    ],
)
def test_affine_moves_a_voxel_where_the_matrix_says(kwargs, moved):
    arr = np.zeros((15, 17, 13), np.float32)
    centre = np.array([7, 8, 6])
    arr[tuple(centre + (3, 1, 0))] = 1.0
    img = _image(arr, origin=(5.0, -3.0, 2.0), direction=PERMUTED)  # 1 mm voxels: mm = voxels
    out = sp.Affine(sp.affine_matrix(3, **kwargs), interpolation="nearest")(img).numpy()
    assert out[tuple(centre + moved)] == 1.0
    # nearest neighbour may spread the (zoomed) voxel over ties, never further than one voxel
    assert np.abs(np.argwhere(out == 1.0) - centre - moved).max() <= 1


def test_affine_matrix_composes_zoom_shear_rotation_translation():
    m = sp.affine_matrix(2, rotation=90, translation=(1, 2), shear=0.5, zoom=(2, 3))
    expected_lin = np.array([[0.0, -1.0], [1.0, 0.0]]) @ np.array([[1.0, 0.5], [0.0, 1.0]]) @ np.diag([2, 3])
    np.testing.assert_allclose(m[:2, :2], expected_lin, atol=1e-12)
    np.testing.assert_allclose(m[:, 2], (1, 2, 1))
    r = sp.rotation_matrix(3, [30, -50, 70])
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(r), 1.0)
    s = sp.affine_matrix(3, shear=(1, 2, 3, 4, 5, 6))[:3, :3]
    np.testing.assert_array_equal(s, [[1, 1, 2], [3, 1, 4], [5, 6, 1]])
    # a shear is applied the same way by Shear and by Affine
    img = _image(np.random.default_rng(5).random((9, 10)).astype(np.float32))
    np.testing.assert_allclose(
        sp.Shear((0.2, -0.1))(img).numpy(), sp.Affine(sp.affine_matrix(2, shear=(0.2, -0.1)))(img).numpy()
    )


# -- label maps and co-transforms ------------------------------------------------------------------------


def _check_label_map(seg_out, seg_in):
    values = seg_out.numpy()
    assert seg_out.pixeltype == seg_in.pixeltype
    np.testing.assert_array_equal(values, np.round(values))
    assert set(np.unique(values)) <= set(np.unique(seg_in.numpy()))


@pytest.mark.parametrize(
    "t",
    [
        sp.Rotate([10, -20, 15]),
        sp.Shear(0.2),
        sp.Zoom(1.3),
        sp.Translate((1.5, -2.5, 0.5)),
        sp.Resize((13, 30, 17)),
        sp.Resample((1.7, 0.8, 1.3), use_spacing=True),
        sp.RandomAffine(rotation=15, translation=2, shear=0.1, zoom=0.2, seed=0),
    ],
    ids=lambda t: type(t).__name__,
)
def test_label_maps_are_interpolated_with_nearest_neighbour(pair3d, t):
    img, seg = pair3d
    img_out, seg_out = t(img, seg)
    assert img_out.shape == seg_out.shape
    _check_label_map(seg_out, seg)
    assert set(np.unique(seg_out.numpy())) == {0, 1, 2, 7}
    # the image itself was interpolated linearly: it has values the input never had
    assert not set(np.unique(img_out.numpy())) <= set(np.unique(img.numpy()))


def test_random_rotate_draws_one_angle_per_axis_in_3d_and_one_in_2d(pair3d):
    img, _ = pair3d
    rng = np.random.default_rng(0)
    angles = sp.RandomRotate(5, 7).draw(rng, img)["angle"]
    assert len(angles) == 3 and all(5 <= a <= 7 for a in angles)
    flat = _image(np.zeros((5, 6), np.float32))
    params = sp.RandomRotate(5, 7).draw(rng, flat)
    assert isinstance(params["angle"], float) and 5 <= params["angle"] <= 7


def test_random_affine_on_real_mri_with_a_segmentation(mni_t1):
    seg = (mni_t1 > 0.35).clone("unsigned char") + (mni_t1 > 0.65).clone("unsigned char")
    t = sp.RandomAffine(rotation=10, translation=5, zoom=0.1, seed=3)
    img, lab = t(mni_t1, seg)
    _same_geometry(img, mni_t1)
    _check_label_map(lab, seg)
    assert set(np.unique(lab.numpy())) == {0, 1, 2}
    # the labels still cover the bright voxels of the moved image
    inside = img.numpy()[lab.numpy() == 2]
    assert np.median(inside) > 0.6


def test_random_crop_positions_vary_and_fit(pair3d):
    img, seg = pair3d
    t = sp.RandomCrop(8, seed=0)
    starts = set()
    for out in t.sample(img, n=10, seed=4):
        assert out.shape == (8, 8, 8)
        starts.add(tuple(np.round(out.origin, 6)))
    assert len(starts) > 1
    same = sp.RandomCrop((20, 22, 24))(img)
    np.testing.assert_array_equal(same.numpy(), img.numpy())


def test_random_flip_flips_each_axis_with_probability_axis_p(pair3d):
    img, _ = pair3d
    rng = np.random.default_rng(0)
    draws = [sp.RandomFlip([0, 2], p=1, axis_p=0.5).draw(rng, img)["axes"] for _ in range(400)]
    for axis in (0, 2):
        frac = np.mean([axis in d for d in draws])
        assert 0.4 < frac < 0.6
    assert sp.RandomFlip([0, 1], p=1.0, axis_p=1.0).draw(rng, img)["axes"] == [0, 1]
    assert sp.RandomFlip([0, -1], p=1.0, axis_p=1.0).draw(rng, img)["axes"] == [0, 2]


def test_random_flip_p_gates_the_call_and_all_given_axes_flip_together(pair3d):
    img, _ = pair3d
    t = sp.RandomFlip([0, 1], p=0.5, axis_p=1.0)
    flipped = [t.decide(img, np.random.default_rng(s)) for s in range(200)]
    assert {tuple(d["axes"]) for d in flipped if d is not None} == {(0, 1)}
    assert 0.4 < np.mean([d is None for d in flipped]) < 0.6
    # one axis: p is the probability of flipping it, one draw per call (as before the base took over p)
    draws = [sp.RandomFlip(1, p=0.3).decide(img, np.random.default_rng(s)) for s in range(5)]
    expected = [np.random.default_rng(s).random() < 0.3 for s in range(5)]
    assert [d is not None for d in draws] == expected


def test_random_flip_with_several_axes_and_no_axis_p_keeps_p_per_axis_but_is_deprecated(pair3d):
    img, _ = pair3d
    with pytest.warns(DeprecationWarning, match="RandomFlip: with several axes, p is the probability"):
        old = sp.RandomFlip([0, 2], p=0.5)
    new = sp.RandomFlip([0, 2], p=1, axis_p=0.5)
    for s in range(10):
        a, b = (t.decide(img, np.random.default_rng(s)) for t in (old, new))
        assert a == b


# -- seeding ---------------------------------------------------------------------------------------------

RANDOMS = [
    lambda **kw: sp.RandomFlip([0, 1, 2], axis_p=0.5, **kw),
    lambda **kw: sp.RandomRotate(-20, 20, **kw),
    lambda **kw: sp.RandomTranslate(-3, 3, **kw),
    lambda **kw: sp.RandomShear(-0.2, 0.2, **kw),
    lambda **kw: sp.RandomZoom(0.8, 1.2, **kw),
    lambda **kw: sp.RandomAffine(rotation=10, translation=2, shear=0.05, zoom=0.1, **kw),
    lambda **kw: sp.RandomCrop((10, 10, 10), **kw),
]


@pytest.mark.parametrize("make", RANDOMS)
def test_seeded_samples_are_reproducible_and_seeds_differ(pair3d, make):
    img, _ = pair3d
    t = make()
    a = [x.numpy() for x in t.sample(img, n=3, seed=1)]
    b = [x.numpy() for x in make().sample(img, n=3, seed=1)]
    c = [x.numpy() for x in t.sample(img, n=3, seed=2)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    seeded = [make(seed=5)(img).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*seeded)


@pytest.mark.parametrize("make", RANDOMS)
def test_p_zero_returns_the_input_unchanged(pair3d, make):
    img, seg = pair3d
    t = make(p=0)
    assert t(img) is img
    out_img, out_seg = t(img, seg)
    assert out_img is img and out_seg is seg


def test_spatial_transforms_compose_with_a_seed(pair3d):
    img, seg = pair3d
    chain = [sp.RandomFlip(0), sp.RandomRotate(-10, 10), sp.RandomCrop(12)]
    a = Compose(chain, seed=3)(img, seg)
    b = Compose(chain, seed=3)(img, seg)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert a[0].shape == a[1].shape == (12, 12, 12)


# -- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: sp.Rotate([1, 2]), r"Rotate: angle .*\[1, 2\]"),
        (lambda: sp.Rotate(10, axes=(0, 1, 2)), r"Rotate: axes must be a pair"),
        (lambda: sp.Zoom(0), r"Zoom: factor must be a positive number.*got 0"),
        (lambda: sp.Zoom((1, 1, 1, 1)), r"Zoom: factor .*\(2 or 3 values\).*\(1, 1, 1, 1\)"),
        (lambda: sp.Pad(-1), r"Pad: width must be a non-negative integer.*-1"),
        (lambda: sp.Pad([(1, -2), 3]), r"Pad: width .*\(1, -2\)"),
        (lambda: sp.Crop([(5, 2), (0, 3)]), r"Crop: indices .*\(5, 2\)"),
        (lambda: sp.Crop(margin=-1), r"Crop: margin must not be negative, got -1"),
        (lambda: sp.Slice(3, 0), r"Slice: axis must be 0, 1 or 2.*got 3"),
        (lambda: sp.Resize((4, 0, 4)), r"Resize: shape must be a positive integer.*\(4, 0, 4\)"),
        (lambda: sp.Resample((0, 1, 1), use_spacing=True), r"Resample: params must be a positive number"),
        (lambda: sp.Resize(4, interpolation="cubic"), r"Resize: interpolation must be one of.*'cubic'"),
        (lambda: sp.Translate((1, 2), unit="cm"), r"Translate: unit must be 'mm' or 'voxel', got 'cm'"),
        (lambda: sp.Shear((0.1, 0.2, 0.3)), r"Shear: shear .*\(2 or 6 values\)"),
        (lambda: sp.Affine(np.eye(5)), r"Affine: matrix must be 3x3 .*got shape \(5, 5\)"),
        (lambda: sp.Affine(np.zeros((3, 3))), r"Affine: the last row"),
        (lambda: sp.Affine(np.diag([1.0, 0.0, 1.0])), r"Affine: matrix must be invertible"),
        (lambda: sp.Flip([0, 0]), r"Flip: axis must not repeat an axis"),
        (lambda: sp.Reorient("RAX"), r"Reorient: orientation must be three letters.*'RAX'"),
        (lambda: sp.RandomRotate(10, -10), r"RandomRotate: min_angle must not exceed max_angle.*10.*-10"),
        (lambda: sp.RandomTranslate(3, 1), r"RandomTranslate: min_shift must not exceed max_shift"),
        (lambda: sp.RandomShear(0.3, 0.1), r"RandomShear: min_shear must not exceed max_shear"),
        (lambda: sp.RandomZoom(1.2, 0.9), r"RandomZoom: min_factor must not exceed max_factor"),
        (lambda: sp.RandomZoom(0, 1.1), r"RandomZoom: min_factor must be positive, got 0"),
        (lambda: sp.RandomAffine(zoom=1.5), r"RandomAffine: zoom must be a finite number in \[0, 1\).*1.5"),
        (lambda: sp.RandomAffine(rotation=(5, 1)), r"RandomAffine: rotation must satisfy -inf <= min <= max"),
        (lambda: sp.RandomAffine(zoom=(0, 1)), r"RandomAffine: zoom must satisfy 0 < min <= max"),
        (lambda: sp.RandomCrop((4, 0, 4)), r"RandomCrop: shape must be a positive integer.*\(4, 0, 4\)"),
        (lambda: sp.RandomCrop(0), r"RandomCrop: shape must be a positive integer.*got 0"),
        (lambda: sp.RandomFlip(0, p=2), r"RandomFlip: p must be a probability in \[0, 1\], got 2"),
        (lambda: sp.RandomFlip(0, axis_p=1.5), r"RandomFlip: axis_p must be a probability in \[0, 1\]"),
    ],
)
def test_bad_arguments_are_rejected_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: sp.Rotate("x"), r"Rotate: angle must be a number or one per axis.*'x'"),
        (lambda: sp.Rotate(10, axes="xy"), r"Rotate: axes must be a pair of axes"),
        (lambda: sp.Slice(0, 1.5), r"Slice: index must be an integer, got 1.5"),
        (lambda: sp.Slice("0", 1), r"Slice: axis must be 0, 1 or 2"),
        (lambda: sp.Resample((2.5, 2, 2)), r"Resample: params must be a positive integer.*2.5"),
        (lambda: sp.Resize("big"), r"Resize: shape must be a positive integer.*'big'"),
        (lambda: sp.Flip("x"), r"Flip: axis must be an integer or a list of integers, got 'x'"),
        (lambda: sp.Pad("1"), r"Pad: width must be a non-negative integer"),
        (lambda: sp.Pad(1, value="0"), r"Pad: value must be a number, got '0'"),
        (lambda: sp.Crop([("a", 2), (0, 3)]), r"Crop: indices must be 'foreground' or one"),
        (lambda: sp.Reorient(3), r"Reorient: orientation must be three letters"),
        (lambda: sp.Translate(1, unit=None), r"Translate: unit must be 'mm' or 'voxel', got None"),
        (lambda: sp.Zoom(2, interpolation=1), r"Zoom: interpolation must be one of"),
        (lambda: sp.Affine("eye"), r"Affine: matrix must be a 2-D array of numbers"),
        (lambda: sp.RandomAffine(shear="big"), r"RandomAffine: shear must be a number or a \(min, max\)"),
        (lambda: sp.RandomRotate("-10", 10), r"RandomRotate: min_angle must be a number, got '-10'"),
        (lambda: sp.RandomFlip(0, p="0.5"), r"RandomFlip: p must be a probability in \[0, 1\]"),
    ],
)
def test_arguments_of_the_wrong_type_are_type_errors(make, match):
    with pytest.raises(TypeError, match=match):
        make()


@pytest.mark.parametrize(
    ("t", "match"),
    [
        (
            sp.RandomCrop((30, 5, 5)),
            r"RandomCrop: crop shape \(30, 5, 5\) does not fit in image shape \(20, 22, 24\)",
        ),
        (sp.Zoom((1.0, 2.0)), r"Zoom: zoom has 2 values but the image is 3-D"),
        (sp.Translate((1.0, 2.0)), r"Translate: shift has 2 values but the image is 3-D"),
        (sp.Shear((0.1, 0.2)), r"Shear: shear has 2 values but the image is 3-D"),
        (sp.Resize((4, 4)), r"Resize: shape has 2 values but the image is 3-D"),
        (sp.Pad([1, 2]), r"Pad: width has 2 entries but the image is 3-D"),
        (
            sp.Crop([(0, 5), (0, 50), (0, 4)]),
            r"Crop: crop box .*\(0, 50\).*does not fit in image shape \(20, 22",
        ),
        (sp.Crop([(0, 5), (0, 5)]), r"Crop: crop indices are for 2 axes but the image is 3-D"),
        (sp.Flip(3), r"Flip: axis 3 is out of range for a 3-D image"),
        (sp.Slice(0, 20), r"Slice: index 20 is out of range for axis 0 of size 20"),
        (sp.Affine(np.eye(3)), r"Affine: matrix is for a 2-D image, got a 3-D image"),
        (sp.Rotate(10, axes=(0, 3)), r"Rotate: axis 3 is out of range for a 3-D image"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseTransform) else "",
)
def test_bad_combinations_with_the_image_are_rejected_at_call_time(pair3d, t, match):
    img, _ = pair3d
    with pytest.raises(ValueError, match=match):
        t(img)


def test_errors_for_images_of_the_wrong_dimension():
    flat = _image(np.ones((6, 7), np.float32))
    with pytest.raises(ValueError, match=r"Slice: expected a 3-D image, got a 2-D image"):
        sp.Slice(0, 1)(flat)
    with pytest.raises(ValueError, match=r"Reorient: expected a 3-D image"):
        sp.Reorient()(flat)
    with pytest.raises(ValueError, match=r"Rotate: angle has 3 values but the image is 2-D"):
        sp.Rotate([1, 2, 3])(flat)
    with pytest.raises(ValueError, match=r"Crop: the image has no non-zero voxels"):
        sp.Crop()(_image(np.zeros((4, 5), np.float32)))
