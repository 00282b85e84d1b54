"""Recycled image buffers: reused only once free, bounded, and invisible in results."""

import gc
import os
import subprocess
import sys

import ants
import numpy as np
import pytest

import nitrain
from nitrain import transforms as tx
from nitrain.transforms._ants import empty_like_image

SHAPE = (64, 70, 60)  # about 1 MiB of float32: big enough to be kept


def _address(arr: np.ndarray) -> int:
    return arr.__array_interface__["data"][0]


@pytest.fixture
def pool():
    old = nitrain.set_buffer_pool_limit(0)  # start empty: nothing kept by earlier tests
    nitrain.set_buffer_pool_limit(64 << 20)
    yield
    nitrain.set_buffer_pool_limit(old)


@pytest.fixture
def img():
    arr = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    return ants.from_numpy(np.asfortranarray(arr), spacing=(1.0, 2.0, 3.0))


def test_a_freed_image_buffer_serves_the_next_image(pool, img):
    out, buf = empty_like_image(img)
    addr = _address(buf)
    assert buf.flags.f_contiguous and buf.flags.writeable and buf.dtype == np.float32
    assert np.shares_memory(out.view(), buf)
    del out, buf
    gc.collect()
    assert nitrain.buffer_pool_state()["kept_buffers"] >= 1
    again, buf2 = empty_like_image(img)
    assert _address(buf2) == addr


def test_a_live_image_keeps_its_buffer(pool, img):
    a = tx.RangeNormalize(0, 1)(img)
    b = tx.RangeNormalize(-1, 1)(img)
    c = tx.NormalizeIntensity(0, 1)(img)
    views = [a.view(), b.view(), c.view()]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.shares_memory(views[i], views[j])
    src = img.numpy()
    np.testing.assert_allclose(a.numpy(), (src - src.min()) / (src.max() - src.min()), atol=1e-6)
    np.testing.assert_allclose(b.numpy(), 2 * (src - src.min()) / (src.max() - src.min()) - 1, atol=1e-6)


def test_recycled_buffers_do_not_change_results(pool, img):
    # Fill the pool with buffers holding other values, then check every transform still writes all voxels.
    junk = [empty_like_image(img)[1] for _ in range(3)]
    for j in junk:
        j[:] = np.nan
    del junk
    gc.collect()
    src = img.numpy()
    expected = (src - src.min()) / np.ptp(src)
    np.testing.assert_allclose(tx.RangeNormalize(0, 1)(img).numpy(), expected, atol=1e-6)
    noisy = tx.RandomNoise(0.1, seed=3)(img).numpy()
    assert np.isfinite(noisy).all()
    assert np.isfinite(tx.RandomSmoothing(1.0, 1.0, seed=0)(img).numpy()).all()


def test_the_limit_bounds_what_is_kept(pool, img):
    nitrain.set_buffer_pool_limit(3 << 20)
    bufs = [empty_like_image(img)[1] for _ in range(6)]
    del bufs
    gc.collect()
    state = nitrain.buffer_pool_state()
    assert state["limit"] == 3 << 20
    assert 0 < state["kept_bytes"] <= 3 << 20
    assert nitrain.set_buffer_pool_limit(0) == 3 << 20
    assert nitrain.buffer_pool_state() == {"limit": 0, "kept_bytes": 0, "kept_buffers": 0}
    # With nothing kept, freed buffers go back to the allocator.
    out, _ = empty_like_image(img)
    del out, _
    gc.collect()
    assert nitrain.buffer_pool_state()["kept_buffers"] == 0


def test_small_buffers_are_not_kept(pool):
    small = ants.from_numpy(np.zeros((8, 8, 8), np.float32))
    before = nitrain.buffer_pool_state()["kept_buffers"]
    out, _ = empty_like_image(small)
    del out, _
    gc.collect()
    assert nitrain.buffer_pool_state()["kept_buffers"] == before


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_bad_limits_are_refused(bad):
    with pytest.raises(ValueError, match="set_buffer_pool_limit: limit"):
        nitrain.set_buffer_pool_limit(bad)


def test_the_limit_comes_from_the_environment():
    code = "import nitrain; print(nitrain.buffer_pool_state()['limit'])"
    env = dict(os.environ, NITRAIN_BUFFER_POOL_MB="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == 3 << 20
    env["NITRAIN_BUFFER_POOL_MB"] = "lots"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "NITRAIN_BUFFER_POOL_MB" in bad.stderr


def test_sampled_batches_are_recycled_too(pool, img):
    from nitrain.samplers._extract import extract_slices

    index = np.array([[0, k] for k in range(60)])  # 60 slices of 64x70: just over 1 MiB, so kept
    first = extract_slices([img], index, 2, channel="last")
    assert first.flags.c_contiguous and first.shape == (60, 64, 70, 1)
    np.testing.assert_array_equal(first[..., 0], np.moveaxis(img.numpy(), 2, 0))
    addr = _address(first)
    del first
    gc.collect()
    again = extract_slices([img], index[::-1], 2, channel="last")
    assert _address(again) == addr
    np.testing.assert_array_equal(again[..., 0], np.moveaxis(img.numpy()[:, :, ::-1], 2, 0))
