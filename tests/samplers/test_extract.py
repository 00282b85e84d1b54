"""The sampling kernels against numpy references, on every layout numpy can produce."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nitrain
from nitrain import samplers
from nitrain.samplers._extract import (
    extract_blocks,
    extract_slice_patches,
    extract_slices,
    grid_origins,
    random_origins,
)

DTYPES = [np.float32, np.float64, np.int16, np.uint8, np.int8, np.uint16, np.int32, np.uint32]


def _values(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype) * 100
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


@st.composite
def layouts(draw, ndim):
    """An array of random shape/dtype in C or F order, possibly transposed and with reversed axes."""
    shape = tuple(draw(st.lists(st.integers(1, 20), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    base = _values(np.random.default_rng(seed), shape, dtype)
    if draw(st.booleans()):
        base = np.asfortranarray(base)
    perm = draw(st.permutations(range(ndim)))
    arr = base.transpose(perm)
    flips = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
    arr = arr[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
    return arr


@st.composite
def slice_batches(draw, ndim):
    first = draw(layouts(ndim))
    axis = draw(st.integers(0, ndim - 1))
    count = draw(st.integers(1, 3))
    images = [first]
    for _ in range(count - 1):
        # Same in-plane shape, any length along the axis, any layout, same dtype.
        shape = list(first.shape)
        shape[axis] = draw(st.integers(1, 9))
        other = _values(np.random.default_rng(draw(st.integers(0, 2**31))), shape, first.dtype)
        if draw(st.booleans()):
            other = np.asfortranarray(other)
        if draw(st.booleans()):
            other = other[::-1]
        images.append(other)
    n = draw(st.integers(1, 12))
    rows = []
    for _ in range(n):
        i = draw(st.integers(0, count - 1))
        rows.append((i, draw(st.integers(0, images[i].shape[axis] - 1))))
    return images, np.array(rows), axis


@settings(max_examples=150, deadline=None)
@given(batch=slice_batches(3), channel=st.sampled_from([None, "first", "last"]))
def test_slices_match_numpy_3d(batch, channel):
    images, index, axis = batch
    out = extract_slices(images, index, axis, channel=channel)
    ref = np.stack([np.take(images[i], k, axis=axis) for i, k in index]).astype(np.float32)
    if channel == "last":
        ref = ref[..., None]
    elif channel == "first":
        ref = ref[:, None]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)


@settings(max_examples=60, deadline=None)
@given(batch=slice_batches(2))
def test_slices_of_2d_images_are_rows_or_columns(batch):
    images, index, axis = batch
    out = extract_slices(images, index, axis, dtype=np.float64)
    ref = np.stack([np.take(images[i], k, axis=axis) for i, k in index]).astype(np.float64)
    np.testing.assert_array_equal(out, ref)


@st.composite
def block_batches(draw, ndim):
    images = [draw(layouts(ndim))]
    if draw(st.booleans()):
        images.append(_values(np.random.default_rng(1), images[0].shape[::-1], images[0].dtype))
    size = tuple(draw(st.integers(1, min(im.shape[d] for im in images))) for d in range(ndim))
    n = draw(st.integers(1, 10))
    rows = []
    for _ in range(n):
        i = draw(st.integers(0, len(images) - 1))
        rows.append((i, *(draw(st.integers(0, images[i].shape[d] - size[d])) for d in range(ndim))))
    return images, np.array(rows), size


@settings(max_examples=150, deadline=None)
@given(batch=block_batches(3))
def test_blocks_match_numpy(batch):
    images, origins, size = batch
    out = extract_blocks(images, origins, size)
    ref = np.stack(
        [images[i][a : a + size[0], b : b + size[1], c : c + size[2]] for i, a, b, c in origins]
    ).astype(np.float32)
    np.testing.assert_array_equal(out, ref)


@settings(max_examples=100, deadline=None)
@given(batch=block_batches(2), channel=st.sampled_from([None, "first", "last"]))
def test_patches_from_2d_images_match_numpy(batch, channel):
    images, origins, size = batch
    out = extract_blocks(images, origins, size, channel=channel)
    ref = np.stack([images[i][a : a + size[0], b : b + size[1]] for i, a, b in origins]).astype(np.float32)
    ref = {None: ref, "first": ref[:, None], "last": ref[..., None]}[channel]
    np.testing.assert_array_equal(out, ref)


@settings(max_examples=100, deadline=None)
@given(image=layouts(3), axis=st.integers(0, 2), data=st.data())
def test_patches_from_slices_match_numpy(image, axis, data):
    plane = [d for a, d in enumerate(image.shape) if a != axis]
    size = tuple(data.draw(st.integers(1, p)) for p in plane)
    rows = [
        (
            0,
            data.draw(st.integers(0, image.shape[axis] - 1)),
            data.draw(st.integers(0, plane[0] - size[0])),
            data.draw(st.integers(0, plane[1] - size[1])),
        )
        for _ in range(data.draw(st.integers(1, 6)))
    ]
    out = extract_slice_patches([image], rows, axis, size)
    ref = np.stack(
        [np.take(image, k, axis=axis)[a : a + size[0], b : b + size[1]] for _, k, a, b in rows]
    ).astype(np.float32)
    np.testing.assert_array_equal(out, ref)


def test_ants_views_are_read_in_place(mni_t1):
    view = mni_t1.view()
    assert view.flags.f_contiguous and not view.flags.c_contiguous
    index = np.array([(0, 0), (0, 94), (0, 188)])
    out = extract_slices([mni_t1], index, 2, channel="last")
    assert out.shape == (3, 197, 233, 1)
    np.testing.assert_array_equal(out[..., 0], np.moveaxis(view[:, :, [0, 94, 188]], 2, 0))
    blocks = extract_blocks([mni_t1], [(0, 60, 70, 50)], (64, 64, 64))
    np.testing.assert_array_equal(blocks[0], view[60:124, 70:134, 50:114])


def test_same_result_on_one_and_two_threads(mni_t1):
    rng = np.random.default_rng(5)
    index = np.column_stack([np.zeros(64, int), rng.integers(0, 189, 64)])
    origins = np.column_stack([np.zeros(16, int), random_origins(mni_t1.shape, 48, 16, rng)])
    before = nitrain.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            assert nitrain.set_num_threads(threads) == threads
            results.append(
                (extract_slices([mni_t1], index, 2), extract_blocks([mni_t1], origins, (48, 48, 48)))
            )
    finally:
        nitrain.set_num_threads(before)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_out_argument_is_filled_in_place():
    img = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    out = np.zeros((2, 3, 4, 1), np.float64)
    got = extract_slices([img], [(0, 1), (0, 4)], 2, channel="last", dtype=np.float64, out=out)
    assert got is out
    np.testing.assert_array_equal(out[1, ..., 0], img[:, :, 4])


# ---- bad input ---------------------------------------------------------------------------------------


def test_wrong_ndim():
    with pytest.raises(ValueError, match=r"images\[0\] must be 2-D or 3-D, got shape \(5,\)"):
        extract_slices([np.zeros(5, np.float32)], [(0, 0)], 0)
    with pytest.raises(ValueError, match=r"images\[1\] is 2-D .* images\[0\] is 3-D"):
        extract_slices([np.zeros((3, 3, 3)), np.zeros((3, 3))], [(0, 0)], 0)


def test_mismatched_shapes_name_both_and_the_index():
    a, b = np.zeros((4, 5, 6), np.float32), np.zeros((4, 6, 6), np.float32)
    with pytest.raises(ValueError, match=r"image 1 has shape \(4, 6, 6\) and image 0 has shape \(4, 5, 6\)"):
        extract_slices([a, b], [(0, 0), (1, 0)], 2)


def test_axis_out_of_range():
    with pytest.raises(ValueError, match=r"axis must be an integer in \[-3, 2\], got 3"):
        extract_slices([np.zeros((3, 3, 3))], [(0, 0)], 3)


def test_negative_axis_counts_from_the_end():
    img = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(extract_slices([img], [(0, 3)], -1)[0], img[:, :, 3])


def test_empty_index():
    with pytest.raises(ValueError, match="index is empty"):
        extract_slices([np.zeros((3, 3, 3))], np.zeros((0, 2), int), 0)
    with pytest.raises(ValueError, match="non-empty list of images"):
        extract_slices([], [(0, 0)], 0)


def test_non_numeric_dtypes():
    with pytest.raises(TypeError, match="dtype complex128"):
        extract_slices([np.zeros((3, 3, 3), complex)], [(0, 0)], 0)
    with pytest.raises(TypeError, match="dtype bool"):
        extract_blocks([np.zeros((3, 3, 3), bool)], [(0, 0, 0, 0)], 2)
    with pytest.raises(TypeError, match="must hold integers"):
        extract_slices([np.zeros((3, 3, 3))], [(0.0, 1.5)], 0)
    with pytest.raises(TypeError, match="expected an ANTsImage or a numpy array, got str"):
        extract_slices(["brain.nii.gz"], [(0, 0)], 0)


def test_mixed_dtypes_in_one_batch():
    with pytest.raises(TypeError, match=r"images\[1\] has dtype .* but images\[0\] has dtype"):
        extract_slices([np.zeros((3, 3, 3), np.float32), np.zeros((3, 3, 3), np.int16)], [(0, 0)], 0)


def test_out_of_range_slice_and_image():
    img = np.zeros((4, 5, 6), np.float32)
    with pytest.raises(ValueError, match=r"slice 6 along axis 2 of image 0 with shape \(4, 5, 6\)"):
        extract_slices([img], [(0, 6)], 2)
    with pytest.raises(ValueError, match="names image 2, but there are 1 images"):
        extract_slices([img], [(2, 0)], 2)


def test_out_of_bounds_origin_names_origin_and_shape():
    img = np.zeros((10, 10, 10), np.float32)
    with pytest.raises(
        ValueError, match=r"origin 1 \(5, 0, 0\) with size \(6, 6, 6\) .* shape \(10, 10, 10\)"
    ):
        extract_blocks([img], [(0, 0, 0, 0), (0, 5, 0, 0)], (6, 6, 6))
    with pytest.raises(ValueError, match=r"origin 0 \(-1, 0\)"):
        extract_blocks([np.zeros((5, 5))], [(0, -1, 0)], (2, 2))


def test_bad_output_and_sizes():
    img = np.zeros((4, 5, 6), np.float32)
    with pytest.raises(ValueError, match=r"out has shape \(1, 4, 5\), expected \(1, 4, 5, 1\)"):
        extract_slices([img], [(0, 0)], 2, channel="last", out=np.zeros((1, 4, 5), np.float32))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        extract_slices([img], [(0, 0)], 2, dtype=np.int16)
    with pytest.raises(ValueError, match="size must be 3 positive integers"):
        extract_blocks([img], [(0, 0, 0, 0)], (2, 2))
    with pytest.raises(ValueError, match="channel must be None, 'first' or 'last'"):
        extract_slices([img], [(0, 0)], 2, channel=-2)


def test_output_cannot_alias_an_input():
    img = np.zeros((1, 4, 5), np.float32)
    with pytest.raises(TypeError, match="no input shares memory"):
        extract_slices([img], [(0, 0)], 0, out=img)


# ---- origin generators ------------------------------------------------------------------------------


def test_grid_origins_cover_every_position_with_stride_one():
    origins = grid_origins((5, 4, 3), (2, 2, 2), stride=1)
    assert origins.shape == (4 * 3 * 2, 3)
    assert {tuple(o) for o in origins} == {(a, b, c) for a in range(4) for b in range(3) for c in range(2)}


def test_grid_origins_default_stride_tiles_without_overlap():
    origins = grid_origins((64, 64), (32, 32))
    np.testing.assert_array_equal(origins, [[0, 0], [0, 32], [32, 0], [32, 32]])
    # axis 0: 0, 3, 6 (flush already); axis 1: 0, 5 and 6 flush; axis 2: 0 and 6 flush
    assert grid_origins((10, 10, 10), (4, 4, 4), stride=(3, 5, 10)).shape == (3 * 3 * 2, 3)


@pytest.mark.parametrize(
    "shape, size, stride",
    [((50, 59, 48), 32, None), ((50, 59, 48), 32, 16), ((7, 9), 4, 3), ((33, 20, 5), (8, 20, 2), (5, 7, 2))],
)
def test_grids_cover_every_voxel_and_the_sampler_counts_them(shape, size, stride):
    origins = grid_origins(shape, size, stride)
    size_ = (size,) * len(shape) if isinstance(size, int) else size
    covered = np.zeros(shape, bool)
    for o in origins:
        covered[tuple(slice(a, a + s) for a, s in zip(o, size_, strict=True))] = True
    assert covered.all()
    assert (origins >= 0).all() and (origins + np.array(size_) <= np.array(shape)).all()
    assert len(np.unique(origins, axis=0)) == len(origins)
    sampler = samplers.BlockSampler(block_size=size, stride=stride)
    assert sampler.n_items(shape) == len(origins)


def test_random_origins_are_seeded_and_in_bounds():
    a = random_origins((20, 30, 40), (8, 9, 10), 500, 7)
    b = random_origins((20, 30, 40), (8, 9, 10), 500, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and (a.max(axis=0) <= np.array([12, 21, 30])).all()
    assert (a.max(axis=0) == np.array([12, 21, 30])).all()  # 500 draws reach every upper bound
    assert not np.array_equal(a, random_origins((20, 30, 40), (8, 9, 10), 500, 8))


def test_origin_generators_reject_blocks_larger_than_the_image():
    with pytest.raises(ValueError, match=r"size \(70, 64, 64\) does not fit in image shape \(64, 64, 64\)"):
        grid_origins((64, 64, 64), (70, 64, 64))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        random_origins((8, 8), (2, 2), 0)
