"""Loader faults found by fault injection: exact lengths with images of different shapes, errors naming the
record a sampler cannot serve, custom transforms in loaders, and leaving an epoch while a fetch hangs."""

import threading
import time
import warnings

import ants
import numpy as np
import pandas as pd
import pytest

from nitrain import datasets, loaders, samplers
from nitrain import transforms as tx
from nitrain.samplers import grid_origins
from nitrain.transforms import BaseTransform

SHAPES_3D = [(32, 32, 32), (40, 40, 40), (24, 32, 20), (33, 17, 40), (32, 32, 32)]
SHAPES_2D = [(32, 32), (40, 24), (17, 50), (32, 33)]


def _arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(np.float32) for s in shapes]


def _memory(shapes, seed=0):
    return datasets.MemoryDataset(_arrays(shapes, seed), [float(i) for i in range(len(shapes))])


def _served(loader):
    """(batches, items per record) of one epoch; y is the record index, so items can be told apart."""
    batches, per_record = 0, {}
    for _, y in loader:
        batches += 1
        for r in np.asarray(y).astype(int).tolist():
            per_record[r] = per_record.get(r, 0) + 1
    return batches, per_record


def _grid(shape, size, stride=None):
    return len(grid_origins(shape, size, stride))


# -- 1. len(loader) is exact with images of different shapes --------------------------------------------
CASES = [
    # (shapes, sampler, items per record)
    (SHAPES_3D, samplers.BlockSampler(16, sub_batch_size=5), lambda s: _grid(s, 16)),
    (SHAPES_3D, samplers.BlockSampler(8, stride=5, sub_batch_size=32), lambda s: _grid(s, 8, 5)),
    (SHAPES_3D, samplers.BlockSampler((8, 8, 4), n_blocks=3, sub_batch_size=4), lambda s: 3),
    # slices of one image-batch share an array: shapes differ along the slice axis only
    (
        [(20, 30, 16), (20, 12, 16), (20, 45, 16), (20, 7, 16)],
        samplers.SliceSampler(7, axis=1),
        lambda s: s[1],
    ),
    (SHAPES_3D, samplers.SlicePatchSampler(8, axis=2, sub_batch_size=30), lambda s: s[2] * _grid(s[:2], 8)),
    (SHAPES_2D, samplers.PatchSampler(8, sub_batch_size=6), lambda s: _grid(s, 8)),
    (SHAPES_2D, samplers.PatchSampler((8, 4), stride=3, sub_batch_size=64), lambda s: _grid(s, (8, 4), 3)),
]


@pytest.mark.parametrize("shapes, sampler, items", CASES, ids=lambda v: repr(v)[:40])
@pytest.mark.parametrize(
    "batch_size, shuffle, drop_last", [(1, False, False), (2, True, False), (3, True, True)]
)
def test_len_is_the_number_of_batches_served_with_mixed_shapes(
    shapes, sampler, items, batch_size, shuffle, drop_last
):
    ld = loaders.DatasetLoader(
        _memory(shapes), batch_size, shuffle=shuffle, sampler=sampler, drop_last=drop_last, seed=1
    )
    for _ in range(3):  # shuffled epochs group the records differently
        n = len(ld)
        batches, per_record = _served(ld)
        assert n == batches
        if not drop_last:
            assert per_record == {r: items(s) for r, s in enumerate(shapes)}


def test_the_two_image_case_serves_every_block():
    ld = loaders.DatasetLoader(
        _memory([(32, 32, 32), (40, 40, 40)]), 1, sampler=samplers.BlockSampler(8, stride=6), seed=0
    )
    n = len(ld)
    batches, per_record = _served(ld)
    # 32: starts 0..24 by 6; 40: 0..30 by 6 and 32 flush with the border
    assert per_record == {0: 5**3, 1: 7**3}  # not 2 x 5**3, as from the first record's shape
    assert n == batches == 4 + 11


def test_slice_sampler_records_of_different_slice_shapes_cannot_share_an_image_batch():
    ld = loaders.DatasetLoader(_memory(SHAPES_3D[:2]), 2, sampler=samplers.SliceSampler(axis=2))
    with pytest.raises(ValueError, match=r"MemoryDataset record 1 \(1\) has shape \(40, 40, 40\).*slices"):
        len(ld)
    one = loaders.DatasetLoader(_memory(SHAPES_3D), 1, sampler=samplers.SliceSampler(sub_batch_size=9))
    assert len(one) == _served(one)[0] == sum(-(-s[2] // 9) for s in SHAPES_3D)


def test_to_keras_serves_every_block_of_mixed_shapes():
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    ld = loaders.DatasetLoader(
        _memory([(32, 32, 32), (40, 40, 40), (24, 24, 24), (40, 40, 40)]),
        1,
        sampler=samplers.BlockSampler(8, stride=6, sub_batch_size=32),
        seed=0,
    )
    kd = ld.to_keras()
    expected = 5**3 + 7**3 + 4**3 + 7**3  # grids cover each image to its border
    assert len(kd) == 4 + 11 + 2 + 11  # not 4 x 4, as from the first record's shape
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 8, 1))
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling3D()(inp))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.SGD(0.01), "mse")
    seen = []

    class Count(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(0)

    original = type(kd).__getitem__

    def getitem(self, i):
        batch = original(self, i)
        if seen:
            seen[-1] += len(batch[1])
        return batch

    type(kd).__getitem__ = getitem
    try:
        model.fit(kd, epochs=2, verbose=0, shuffle=False, callbacks=[Count()])
    finally:
        type(kd).__getitem__ = original
    assert seen == [expected, expected]


def _nifti_dataset(tmp_path, shapes, **kw):
    rows = []
    for k, s in enumerate(shapes):
        path = tmp_path / f"img{k}.nii.gz"
        img = ants.from_numpy(np.asfortranarray(_arrays([s], k)[0]), spacing=(1.0 + 0.5 * k,) * len(s))
        ants.image_write(img, str(path))
        rows.append({"path": path.name, "y": float(k)})
    pd.DataFrame(rows).to_csv(tmp_path / "table.csv", index=False)
    return datasets.CSVDataset(tmp_path / "table.csv", x={"column": "path"}, y={"column": "y"}, **kw)


def test_len_reads_file_headers_only_when_the_transforms_effects_are_known(tmp_path, monkeypatch):
    from nitrain.datasets import base

    ds = _nifti_dataset(tmp_path, SHAPES_3D, x_transforms=[tx.NormalizeIntensity(0, 1)])
    assert [ds.record_shape(i) for i in range(len(ds))] == SHAPES_3D
    reads = []
    real = base.read_image
    monkeypatch.setattr(base, "read_image", lambda *a: reads.append(a) or real(*a))
    ld = loaders.DatasetLoader(
        ds,
        2,
        sampler=samplers.BlockSampler(8, sub_batch_size=16),
        x_transforms=[tx.RandomNoise(sd=0.1), tx.RandomFlip(axis=0), tx.Resize((16, 24, 24))],
        seed=0,
    )
    n = len(ld)
    assert reads == []  # headers only
    assert n == _served(ld)[0] == 3 * -(-2 * 2 * 3 * 3 // 16) - 1  # 18 blocks a record: 3 + 3 + 2
    assert len(reads) == len(SHAPES_3D)


class CropToHalf(BaseTransform):
    """A custom transform of unknown effect on shapes."""

    def __call__(self, image):
        return image[tuple(slice(0, d // 2) for d in image.shape)]


@pytest.mark.parametrize(
    "dataset_transforms, loader_transforms",
    [
        ([tx.Resample((2.0, 2.0, 2.0), use_spacing=True)], []),  # fixed, shape from the spacing
        ([], [CropToHalf()]),  # the loader's custom transform, run to learn the shape
        ([tx.Resample((2.0, 2.0, 2.0), use_spacing=True)], [tx.RandomNoise(sd=0.1), CropToHalf()]),
        ([], [tx.RandomCrop((20, 16, 18))]),  # random position, fixed shape
    ],
)
def test_len_is_exact_when_transforms_change_the_shapes(tmp_path, dataset_transforms, loader_transforms):
    ds = _nifti_dataset(tmp_path, SHAPES_3D, x_transforms=dataset_transforms)
    sampler = samplers.BlockSampler(6, stride=4, sub_batch_size=10)
    ld = loaders.DatasetLoader(ds, 2, shuffle=True, sampler=sampler, x_transforms=loader_transforms, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            n = len(ld)
            batches, per_record = _served(ld)
            assert n == batches
    shapes = [ld.record_shape(i) for i in range(len(ds))]
    assert len(set(shapes)) > 1 or isinstance(loader_transforms[-1], tx.RandomCrop)
    assert per_record == {r: _grid(s, 6, 4) for r, s in enumerate(shapes)}


def test_a_transform_that_changes_shapes_at_random_warns_that_len_cannot_be_exact():
    ld = loaders.DatasetLoader(
        _memory(SHAPES_3D),
        1,
        sampler=samplers.BlockSampler(8),
        x_transforms=[tx.RandomCrop((16, 16, 16), p=0.5)],
        seed=0,
    )
    with pytest.warns(UserWarning, match="RandomCrop.*changes image shapes at random"):
        len(ld)


# -- 2. samplers name the record they cannot serve ------------------------------------------------------
@pytest.mark.parametrize(
    "shapes, sampler, message",
    [
        (
            [(32, 32, 32), (32, 32, 32, 2)],
            samplers.BlockSampler(16),
            r"BlockSampler: MemoryDataset record 1 \(1\) has shape \(32, 32, 32, 2\) \(4-D\); "
            r"BlockSampler\(block_size=16\) needs 3-D or 2-D images",
        ),
        (
            [(32, 32, 32), (32, 32)],
            samplers.BlockSampler(16),
            r"BlockSampler: MemoryDataset record 1 \(1\) has shape \(32, 32\) but MemoryDataset record 0 "
            r"\(0\) has shape \(32, 32, 32\); the images must all have the same number of dimensions",
        ),
        (
            [(32, 32, 32), (32, 32)],
            samplers.BlockSampler((16, 16, 16)),
            r"MemoryDataset record 1 \(1\) has shape \(32, 32\) \(2-D\); "
            r"BlockSampler\(block_size=\(16, 16, 16\)\) needs 3-D images",
        ),
        (
            [(32, 32, 32), (32, 12, 32)],
            samplers.BlockSampler(16),
            r"block_size \(16, 16, 16\) does not fit in MemoryDataset record 1 \(1\), "
            r"of shape \(32, 12, 32\)",
        ),
        (
            [(32, 32), (32, 32, 32)],
            samplers.PatchSampler(8),
            r"PatchSampler: MemoryDataset record 1 \(1\) has shape \(32, 32, 32\) \(3-D\); "
            r"PatchSampler\(patch_size=8\) needs 2-D images",
        ),
        (
            [(32, 32, 32), (32, 32)],
            samplers.SlicePatchSampler(8),
            r"SlicePatchSampler: MemoryDataset record 1 \(1\) has shape \(32, 32\) \(2-D\); "
            r"SlicePatchSampler needs 3-D images",
        ),
        (
            [(32, 32, 32), (32, 32, 32, 2)],
            samplers.SlicePatchSampler(8),
            r"MemoryDataset record 1 \(1\) has shape \(32, 32, 32, 2\) \(4-D\); SlicePatchSampler needs 3-D",
        ),
        (
            [(32, 32, 32), (32, 4, 32)],
            samplers.SlicePatchSampler(8, axis=2),
            r"patch_size \(8, 8\) does not fit in the slices along axis 2 of MemoryDataset record 1 \(1\)",
        ),
        (
            [(32, 32, 32), (32, 32)],
            samplers.SliceSampler(axis=2),
            r"SliceSampler: axis 2 is out of range for MemoryDataset record 1 \(1\), of shape \(32, 32\)",
        ),
    ],
    ids=lambda v: repr(v)[:30],
)
@pytest.mark.parametrize("batch_size", [1, 2])
def test_samplers_name_the_record_and_its_shape(shapes, sampler, message, batch_size):
    ds = datasets.MemoryDataset([np.zeros(s, np.float32) for s in shapes], [0.0, 1.0])
    with pytest.raises(ValueError, match=message):
        len(loaders.DatasetLoader(ds, batch_size, sampler=sampler))
    with pytest.raises(ValueError, match=message):
        list(iter(loaders.DatasetLoader(ds, batch_size, sampler=sampler, prefetch=0)))


def test_a_sampler_used_directly_names_the_image_of_the_batch():
    images = [ants.from_numpy(np.zeros(s, np.float32)) for s in [(32, 32, 32), (32, 32)]]
    with pytest.raises(ValueError, match=r"image 1 of the image-batch has shape \(32, 32\)"):
        list(samplers.BlockSampler(16)(images, [0.0, 1.0], np.random.default_rng(0)))
    with pytest.raises(ValueError, match=r"PatchSampler: an image has shape \(9, 9, 9\)"):
        samplers.PatchSampler(4).n_items((9, 9, 9))


# -- 3. a custom transform with its own __call__(image) in a loader --------------------------------------
class AddConstant(BaseTransform):
    def __init__(self, value):
        self.value = value

    def __call__(self, image):
        return image + self.value


def _batches(loader):
    return [(np.array(x), np.array(y)) for x, y in loader]


def test_custom_transform_in_x_transforms_with_a_seeded_random_one():
    ds = _memory([(12, 12)] * 6)

    def run(transforms, seed):
        return _batches(loaders.DatasetLoader(ds, 2, shuffle=True, x_transforms=transforms, seed=seed))

    with_constant = run([AddConstant(5.0), tx.RandomNoise(sd=1.0)], seed=3)
    assert all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        for a, b in zip(with_constant, run([AddConstant(5.0), tx.RandomNoise(sd=1.0)], seed=3), strict=True)
    )  # the random transform draws from the loader's seed
    noise_only = run([tx.RandomNoise(sd=1.0)], seed=3)
    for (xa, _), (xb, _) in zip(with_constant, noise_only, strict=True):
        np.testing.assert_allclose(xa, xb + 5.0, atol=1e-5)  # the constant draws nothing
    other = run([AddConstant(5.0), tx.RandomNoise(sd=1.0)], seed=4)
    assert not np.array_equal(with_constant[0][0], other[0][0])


def test_custom_transform_in_co_transforms():
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(10, 10)).astype(np.float32) for _ in range(4)]
    labels = [(rng.random((10, 10)) > 0.5).astype(np.float32) for _ in range(4)]
    ds = datasets.MemoryDataset(xs, labels)

    def run(seed):
        ld = loaders.DatasetLoader(
            ds, 2, co_transforms=[AddConstant(2.0), tx.RandomFlip(axis=0, p=0.5)], seed=seed, prefetch=0
        )
        return _batches(ld)

    a, b = run(7), run(7)
    assert all(np.array_equal(u[0], v[0]) and np.array_equal(u[1], v[1]) for u, v in zip(a, b, strict=True))
    for x, y in a:  # +2 on both, then flipped together: each x still pairs with its label map
        for k in range(len(x)):
            src = next(
                i
                for i in range(4)
                if np.allclose(x[k, ..., 0], xs[i] + 2) or np.allclose(x[k, ..., 0], xs[i][::-1] + 2)
            )
            flipped = not np.allclose(x[k, ..., 0], xs[src] + 2)
            np.testing.assert_array_equal(y[k, ..., 0], (labels[src][::-1] if flipped else labels[src]) + 2)
    flips = [not np.allclose(x[k, ..., 0], xs[2 * j + k] + 2) for j, (x, _) in enumerate(a) for k in range(2)]
    assert any(flips) and not all(flips)


# -- 4. leaving an epoch while a fetch hangs ------------------------------------------------------------
class Stuck(datasets.MemoryDataset):
    """Record ``k``'s fetch hangs until ``release`` is set."""

    def __init__(self, k, n=6):
        super().__init__(_arrays([(8, 8)] * n), [float(i) for i in range(n)])
        self.k, self.release = k, threading.Event()

    def __getitem__(self, index):
        if int(index) == self.k:
            self.release.wait(60)
        return super().__getitem__(index)


def _workers():
    return [t for t in threading.enumerate() if t.name.startswith("nitrain-loader") and t.is_alive()]


@pytest.mark.parametrize("how", ["break", "exception", "close"])
def test_leaving_an_epoch_does_not_wait_for_a_hung_fetch(how):
    before = set(_workers())
    ds = Stuck(k=1)
    ld = loaders.DatasetLoader(ds, 1, prefetch=1, num_workers=2)
    left = {}
    if how == "close":
        it = iter(ld)
        assert next(it)[1].tolist() == [0.0]
        time.sleep(0.3)  # a lane prepares record 1 (the prefetched batch) and hangs there
        left["at"] = time.monotonic()
        it.close()
    else:
        try:
            for _x, y in ld:
                assert y.tolist() == [0.0]
                time.sleep(0.3)  # a lane prepares record 1 (the prefetched batch) and hangs there
                left["at"] = time.monotonic()
                if how == "break":
                    break
                raise KeyError("the training step failed")
        except KeyError:
            assert how == "exception"
    assert time.monotonic() - left["at"] < 2.5  # not the 60 s the fetch hangs
    stuck = [t for t in _workers() if t not in before]
    assert len(stuck) == 1  # abandoned, still in the fetch
    ds.release.set()
    stuck[0].join(5)
    assert not stuck[0].is_alive()  # it stopped at its next record; what it made was dropped


def test_a_whole_epoch_joins_its_worker():
    before = set(_workers())
    ld = loaders.DatasetLoader(_memory([(8, 8)] * 5), 2, prefetch=2)
    assert len(_served(ld)[1]) == 5
    assert [t for t in _workers() if t not in before] == []


def test_same_seed_same_batches_with_and_without_prefetch():
    def run(prefetch):
        ld = loaders.DatasetLoader(
            _memory(SHAPES_3D),
            2,
            shuffle=True,
            sampler=samplers.BlockSampler(8, n_blocks=4, sub_batch_size=3, shuffle=True),
            x_transforms=[AddConstant(1.0), tx.RandomNoise(sd=0.5)],
            seed=11,
            prefetch=prefetch,
        )
        return [_batches(ld) for _ in range(2)]

    a, b = run(0), run(2)
    assert len(a[0]) == len(b[0]) > 0
    for ea, eb in zip(a, b, strict=True):
        assert all(
            np.array_equal(u[0], v[0]) and np.array_equal(u[1], v[1]) for u, v in zip(ea, eb, strict=True)
        )
    assert not np.array_equal(a[0][0][0], a[1][0][0])  # epochs differ


def test_readme_custom_transform_as_a_dataset_co_transform():
    import ants

    from nitrain import datasets
    from nitrain.transforms import BaseTransform

    class AddConstant(BaseTransform):
        def __init__(self, value):
            self.value = value

        def __call__(self, image):
            return image + self.value

    rng = np.random.default_rng(0)
    arrays = [rng.random((6, 6, 6), dtype=np.float32) for _ in range(3)]
    segs = [(a > 0.5).astype(np.float32) for a in arrays]
    images = datasets.MemoryDataset(arrays, segs, co_transforms=[AddConstant(10)])
    x, y = images[1]
    assert isinstance(x, ants.ANTsImage) and isinstance(y, ants.ANTsImage)
    np.testing.assert_allclose(x.numpy(), arrays[1] + 10, rtol=1e-6)
    np.testing.assert_allclose(y.numpy(), segs[1] + 10, rtol=1e-6)
    scalars = datasets.MemoryDataset(arrays, [1.0, 2.0, 3.0], co_transforms=[AddConstant(10)])
    x, y = scalars[2]
    assert y == 3.0
    np.testing.assert_allclose(x.numpy(), arrays[2] + 10, rtol=1e-6)
