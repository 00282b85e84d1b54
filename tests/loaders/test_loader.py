import threading

import numpy as np
import pytest

import nitrain
from nitrain import datasets, loaders, samplers
from nitrain import transforms as tx


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("c") / "ds"
    return datasets.make_phantom_cohort(root, n_subjects=7, seed=5, shape=(20, 22, 24), labels=True)


@pytest.fixture(scope="module")
def dataset(cohort):
    return datasets.FolderDataset(
        cohort,
        x={"pattern": "sub-*/anat/*_T1w.nii.gz"},
        y={"file": "participants.tsv", "column": "age"},
        x_transforms=[tx.NormalizeIntensity(0, 1)],
        cache="memory",
    )


def _epoch(loader):
    return [(np.array(x), np.array(y)) for x, y in loader]


def test_seed_quickstart_loop_serves_every_slice_once(dataset):
    loader = loaders.DatasetLoader(
        dataset,
        batch_size=4,
        shuffle=True,
        sampler=samplers.SliceSampler(sub_batch_size=32, axis=2),
        x_transforms=[tx.RandomNoise(sd=0.2)],
        seed=0,
    )
    batches = _epoch(loader)
    assert len(batches) == len(loader) == 2 * 3  # ceil(4*24/32) + ceil(3*24/32)
    assert sum(len(y) for _, y in batches) == 7 * 24
    x, y = batches[0]
    assert x.shape == (32, 20, 22, 1) and x.dtype == np.float32 and y.dtype == np.float32
    ages = sorted(set(np.concatenate([y for _, y in batches]).tolist()))
    assert ages == sorted(np.float32(a) for a in set(dataset[:][1]))
    counts = np.unique(np.concatenate([y for _, y in batches]), return_counts=True)[1]
    assert all(c % 24 == 0 for c in counts)  # each subject's age once per slice of its image


def test_same_seed_same_batches_with_and_without_prefetch_and_threads(dataset):
    def run(prefetch, threads):
        before = nitrain.get_num_threads()
        nitrain.set_num_threads(threads)
        try:
            ld = loaders.DatasetLoader(
                dataset,
                3,
                shuffle=True,
                sampler=samplers.SliceSampler(16, axis=1, shuffle=True),
                x_transforms=[tx.RandomNoise(sd=(0.1, 0.5)), tx.RandomSmoothing(0, 1)],
                seed=42,
                prefetch=prefetch,
            )
            return _epoch(ld) + _epoch(ld)  # two epochs
        finally:
            nitrain.set_num_threads(before)

    a, b, c = run(0, 1), run(2, 2), run(1, 1)
    for (xa, ya), (xb, yb), (xc, _) in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(xa, xc)
        np.testing.assert_array_equal(ya, yb)
    n = len(a) // 2
    assert not all(np.array_equal(a[i][0], a[n + i][0]) for i in range(n))  # epochs differ


def test_shuffle_is_really_used(dataset):
    plain = [y for _, y in loaders.DatasetLoader(dataset, 7, shuffle=False)][0]
    np.testing.assert_array_equal(plain, np.float32(dataset[:][1]))
    shuffled = [y for _, y in loaders.DatasetLoader(dataset, 7, shuffle=True, seed=3)][0]
    assert sorted(shuffled) == sorted(plain) and not np.array_equal(shuffled, plain)


def test_whole_images_and_expand_dims(dataset):
    last = next(iter(loaders.DatasetLoader(dataset, 2, expand_dims=-1)))[0]
    first = next(iter(loaders.DatasetLoader(dataset, 2, expand_dims=0)))[0]
    none = next(iter(loaders.DatasetLoader(dataset, 2, expand_dims=None)))[0]
    assert (
        last.shape == (2, 20, 22, 24, 1)
        and first.shape == (2, 1, 20, 22, 24)
        and none.shape == (2, 20, 22, 24)
    )
    np.testing.assert_array_equal(last[..., 0], none)
    assert len(loaders.DatasetLoader(dataset, 2)) == 4
    assert len(loaders.DatasetLoader(dataset, 2, drop_last=True)) == 3


def test_image_targets_are_sliced_like_x(cohort):
    ds = datasets.FolderDataset(
        cohort, x={"pattern": "sub-*/anat/*_T1w.nii.gz"}, y={"pattern": "sub-*/anat/*_dseg.nii.gz"}
    )
    ld = loaders.DatasetLoader(ds, 2, sampler=samplers.SliceSampler(8, axis=0, shuffle=True), seed=1)
    x, y = next(iter(ld))
    assert x.shape == y.shape == (8, 22, 24, 1)
    # Background in the label map is background in the image: same slices, same order.
    assert np.all(x[y == 0].mean() < x[y == 3].mean())


def test_block_and_patch_samplers(dataset):
    ld = loaders.DatasetLoader(
        dataset, 2, sampler=samplers.BlockSampler((10, 11, 12), sub_batch_size=5), seed=0
    )
    batches = _epoch(ld)
    # image-batches of 2, 2, 2, 1 records x 8 grid blocks each = 16, 16, 16, 8 blocks -> 4 + 4 + 4 + 2
    assert len(batches) == len(ld) == 14
    assert all(x.shape[1:] == (10, 11, 12, 1) for x, _ in batches)
    rnd = loaders.DatasetLoader(
        dataset, 7, sampler=samplers.BlockSampler(8, n_blocks=3, sub_batch_size=21), seed=0
    )
    ((x, y),) = _epoch(rnd)
    assert x.shape == (21, 8, 8, 8, 1) and len(set(y.tolist())) == len(set(dataset[:][1]))
    sp = loaders.DatasetLoader(
        dataset,
        7,
        sampler=samplers.SlicePatchSampler((10, 11), axis=2, n_patches=4, sub_batch_size=28),
        seed=0,
    )
    ((x, y),) = _epoch(sp)
    assert x.shape == (28, 10, 11, 1)


def test_early_break_stops_the_background_thread(dataset):
    before = threading.active_count()
    ld = loaders.DatasetLoader(dataset, 1, sampler=samplers.SliceSampler(4), prefetch=2, seed=0)
    for i, _ in enumerate(ld):
        if i == 2:
            break
    assert threading.active_count() == before


def test_errors_in_the_worker_reach_the_caller(dataset):
    def boom(img):
        raise RuntimeError("transform exploded")

    with pytest.raises(RuntimeError, match="transform exploded"):
        list(loaders.DatasetLoader(dataset, 2, x_transforms=[boom]))


def test_bad_arguments(dataset):
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        loaders.DatasetLoader(dataset, 0)
    with pytest.raises(ValueError, match="expand_dims must be -1, 0, 1 or None, got 2"):
        loaders.DatasetLoader(dataset, 1, expand_dims=2)
    with pytest.raises(ValueError, match="sub_batch_size must be a positive integer"):
        samplers.SliceSampler(sub_batch_size=0)
    with pytest.raises(ValueError, match="give stride .* or n_blocks"):
        samplers.BlockSampler(8, stride=4, n_blocks=3)


def test_torch_adapter(dataset):
    torch = pytest.importorskip("torch")
    ld = loaders.DatasetLoader(dataset, 2, sampler=samplers.SliceSampler(8), seed=0)
    x, y = next(iter(ld.to_torch()))  # channels-first by default, what torch convolutions take
    assert isinstance(x, torch.Tensor) and x.shape == (8, 1, 20, 22) and x.dtype == torch.float32
    x, y = next(iter(ld.to_torch(channels="last")))
    assert x.shape == (8, 20, 22, 1)


def test_label_sampler_centres_blocks_on_the_requested_labels(cohort):
    ds = datasets.FolderDataset(
        cohort, x={"pattern": "sub-*/anat/*_T1w.nii.gz"}, y={"pattern": "sub-*/anat/*_dseg.nii.gz"}
    )
    vent = datasets.LABELS["ventricles"]
    sampler = samplers.LabelSampler(
        (5, 5, 5), n_blocks=6, label_probabilities={vent: 1.0}, sub_batch_size=100
    )
    ((x, y),) = _epoch(loaders.DatasetLoader(ds, 7, sampler=sampler, seed=0))
    assert x.shape == y.shape == (42, 5, 5, 5, 1)
    assert all((block == vent).any() for block in y)  # every block contains the chosen label
    again = _epoch(loaders.DatasetLoader(ds, 7, sampler=sampler, seed=0))[0][1]
    np.testing.assert_array_equal(y, again)
    with pytest.raises(ValueError, match=r"none of the labels \[42\] occur"):
        _epoch(
            loaders.DatasetLoader(
                ds, 7, sampler=samplers.LabelSampler(4, label_probabilities={42: 1}), seed=0
            )
        )
    with pytest.raises(ValueError, match="targets must be label images"):
        _epoch(
            loaders.DatasetLoader(
                datasets.MemoryDataset([np.zeros((8, 8, 8))], [1.0]), 1, sampler=samplers.LabelSampler(4)
            )
        )


def test_rank_shards_are_disjoint_and_cover_the_epoch(dataset):
    seen = []
    for rank in range(3):
        ld = loaders.DatasetLoader(dataset, 2, shuffle=True, seed=8, rank=rank, world_size=3, prefetch=0)
        ys = np.concatenate([y for _, y in ld])
        assert len(ld) == len(list(ld))
        seen.append(ys)
    all_ys = np.sort(np.concatenate(seen))
    np.testing.assert_array_equal(all_ys, np.sort(np.float32(dataset[:][1])))
    assert [len(s) for s in seen] == [3, 2, 2]
    with pytest.raises(ValueError, match="give a seed when sharding"):
        loaders.DatasetLoader(dataset, 2, rank=0, world_size=2)
    with pytest.raises(ValueError, match="need 0 <= rank < world_size"):
        loaders.DatasetLoader(dataset, 2, rank=2, world_size=2, seed=0)


@pytest.mark.parametrize(
    "sampler",
    [
        samplers.SliceSampler(16, axis=1, shuffle=True),
        samplers.BlockSampler((8, 9, 10), n_blocks=3, sub_batch_size=7),
        samplers.SlicePatchSampler((8, 9), axis=0, n_patches=5, sub_batch_size=6),
    ],
)
def test_noise_fused_into_sampling_gives_the_same_bits(dataset, sampler):
    transforms = [tx.RandomSmoothing(0, 1), tx.RandomNoise(sd=(0.1, 0.5)), tx.RandomNoise(sd=0.3, p=0.5)]

    def run(defer):
        ld = loaders.DatasetLoader(
            dataset, 3, shuffle=True, sampler=sampler, x_transforms=transforms, seed=11, defer_noise=defer
        )
        return _epoch(ld)

    fused, eager = run(True), run(False)
    assert len(fused) == len(eager)
    for (xf, yf), (xe, ye) in zip(fused, eager, strict=True):
        np.testing.assert_array_equal(xf, xe)
        np.testing.assert_array_equal(yf, ye)


def test_slice_window(dataset):
    ld = loaders.DatasetLoader(dataset, 7, sampler=samplers.SliceSampler(100, axis=2, slices=(5, 10)), seed=0)
    ((x, y),) = _epoch(ld)
    assert len(ld) == 1 and x.shape == (35, 20, 22, 1)
    first = dataset[0][0].numpy()
    np.testing.assert_allclose(x[:5, ..., 0], np.moveaxis(first[:, :, 5:10], 2, 0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"slices \(20, 30\) exceed the 24 slices"):
        _epoch(loaders.DatasetLoader(dataset, 7, sampler=samplers.SliceSampler(8, slices=(20, 30)), seed=0))
    with pytest.raises(ValueError, match="slices must satisfy 0 <= start < stop"):
        samplers.SliceSampler(8, slices=(5, 5))


def test_to_torch_channels_first_moves_x_and_image_targets(cohort):
    torch = pytest.importorskip("torch")
    ds = datasets.FolderDataset(
        cohort, x={"pattern": "sub-*/anat/*_T1w.nii.gz"}, y={"pattern": "sub-*/anat/*_dseg.nii.gz"}
    )
    ld = loaders.DatasetLoader(ds, 2, sampler=samplers.SliceSampler(8, axis=2), seed=0)
    (x_last, y_last), (x, y) = next(iter(ld)), next(iter(ld.to_torch(channels="first")))
    assert x.shape == (8, 1, 20, 22) and y.shape == (8, 1, 20, 22) and x.is_contiguous()
    assert torch.equal(x, torch.from_numpy(np.moveaxis(x_last, -1, 1)))
    assert torch.equal(y, torch.from_numpy(np.moveaxis(y_last, -1, 1)))
    assert ld.to_torch(channels="first").channel == ld.to_torch().channel == "first"
    assert ld.to_torch(channels="last").channel == "last" and ld.to_torch(channels=None).channel == "last"
    flat = loaders.DatasetLoader(ds, 2, sampler=samplers.SliceSampler(8, axis=2), expand_dims=None, seed=0)
    x, y = next(iter(flat.to_torch(channels="first")))
    assert x.shape == (8, 1, 20, 22) and y.shape == (8, 1, 20, 22)  # the channel axis is inserted
    with pytest.raises(ValueError, match="channels must be 'first', 'last' or None"):
        ld.to_torch(channels="middle")
