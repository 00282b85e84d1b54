"""Co-transforms move any number of input images and image targets with one draw, pass scalar targets
through, and spatial transforms on inputs alone are flagged when the targets are label maps."""

import warnings

import ants
import numpy as np
import pytest

from nitrain import datasets, loaders, samplers
from nitrain import transforms as tx
from nitrain.transforms._co import co_transform, is_spatial


def _volume(seed, shape=(16, 18, 14)):
    rng = np.random.default_rng(seed)
    return ants.from_numpy(rng.normal(size=shape).astype(np.float32))


def _labels(shape=(16, 18, 14)):
    lab = np.zeros(shape, np.float32)
    lab[4:10, 5:12, 3:9] = 1
    lab[10:14, 2:6, 8:12] = 2
    return ants.from_numpy(lab)


def test_two_inputs_and_a_label_map_move_with_one_draw():
    t1, flair, seg = _volume(0), _volume(1), _labels()
    flair_is_t1 = ants.from_numpy(t1.numpy())  # a second input equal to the first
    t = tx.RandomRotate(-20, 20)
    (a, b), y = co_transform(t, [t1, flair_is_t1], seg, np.random.default_rng(5))
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # the same draw for both inputs
    assert not np.allclose(a.numpy(), t1.numpy())
    params = t.decide(t1, np.random.default_rng(5))
    expected = t.twin(params)(seg, labels=[True]) if hasattr(t, "twin") else None
    if expected is not None:
        np.testing.assert_array_equal(y.numpy(), expected.numpy())
    assert set(np.unique(y.numpy())) <= {0.0, 1.0, 2.0}  # nearest neighbour for the label map
    (a2, c), y2 = co_transform(t, [t1, flair], seg, np.random.default_rng(5))
    np.testing.assert_array_equal(a2.numpy(), a.numpy())
    np.testing.assert_array_equal(y2.numpy(), y.numpy())


def test_scalar_targets_pass_through_and_a_single_input_stays_an_image():
    t1 = _volume(2)
    x, y = co_transform(tx.RandomFlip(axis_p=1.0), t1, 42.0, np.random.default_rng(0))
    assert y == 42.0 and hasattr(x, "view")
    (x1, x2), y = co_transform(tx.Flip(0), [t1, t1], np.array([1.0, 2.0]))
    np.testing.assert_array_equal(y, [1.0, 2.0])
    np.testing.assert_array_equal(x1.numpy(), t1.numpy()[::-1])
    with pytest.raises(TypeError, match=r"co_transforms: Flip needs x to be an image or a list of images"):
        co_transform(tx.Flip(0), 3.0, 1.0)


def test_a_loader_co_transforms_two_inputs_with_label_maps(tmp_path):
    t1s = [_volume(i) for i in range(4)]
    segs = [_labels() for _ in range(4)]
    ds = datasets.MemoryDataset([[v, ants.from_numpy(v.numpy())] for v in t1s], segs)
    ld = loaders.DatasetLoader(
        ds,
        2,
        sampler=samplers.BlockSampler(8, n_blocks=2, sub_batch_size=4),
        co_transforms=[tx.RandomAffine(rotation=10, zoom=(0.9, 1.1))],
        seed=0,
    )
    for b in ld:
        x, y = b
        assert isinstance(x, list) and len(x) == 2
        np.testing.assert_array_equal(x[0], x[1])  # both inputs moved by the same draw
        assert set(np.unique(y)) <= {0.0, 1.0, 2.0}


def test_scalar_targets_with_a_spatial_co_transform_in_a_loader():
    ds = datasets.MemoryDataset([_volume(i) for i in range(3)], [1.0, 2.0, 3.0])
    ld = loaders.DatasetLoader(ds, 3, co_transforms=[tx.RandomRotate(-10, 10)], seed=0)
    (x, y) = next(iter(ld))
    np.testing.assert_array_equal(y, [1.0, 2.0, 3.0])


def test_spatial_x_transforms_with_label_map_targets_warn():
    ds = datasets.MemoryDataset([_volume(i) for i in range(2)], [_labels(), _labels()])
    ld = loaders.DatasetLoader(ds, 2, x_transforms=[tx.RandomRotate(-10, 10), tx.RandomNoise(0.1)], seed=0)
    with pytest.warns(
        UserWarning, match=r"RandomRotate.*x_transforms but the targets are images.*co_transforms"
    ):
        list(ld)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(loaders.DatasetLoader(ds, 2, x_transforms=[tx.RandomNoise(0.1)], seed=0))
        scalar = datasets.MemoryDataset([_volume(i) for i in range(2)], [1.0, 2.0])
        list(loaders.DatasetLoader(scalar, 2, x_transforms=[tx.RandomRotate(-10, 10)], seed=0))
    fixed = datasets.MemoryDataset(
        [_volume(i) for i in range(2)], [_labels(), _labels()], x_transforms=[tx.Flip(0)]
    )
    with pytest.warns(UserWarning, match=r"MemoryDataset: Flip.*co_transforms"):
        fixed[0]


def test_is_spatial_looks_inside_containers():
    assert is_spatial(tx.Compose([tx.RandomNoise(0.1), tx.RandomAffine(rotation=5)]))
    assert not is_spatial(tx.Compose([tx.RandomNoise(0.1), tx.RangeNormalize(0, 1)]))
