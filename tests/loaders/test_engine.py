"""The loader engine: epochs planned from the seed, records prepared on worker lanes, sub-batches mixed
across the records of a pool and made one at a time, every batch saying where its items came from."""

import threading
import time

import numpy as np
import pytest

import nitrain
from nitrain import datasets, loaders, samplers
from nitrain import transforms as tx


def _subjects(n, shape=(12, 10, 8)):
    """Record i: an image whose every voxel is i (so each item says which record it came from), target i."""
    import ants

    images = [ants.from_numpy(np.full(shape, float(i), np.float32)) for i in range(n)]
    return datasets.MemoryDataset(images, [float(i) for i in range(n)])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine") / "ds"
    return datasets.make_phantom_cohort(root, n_subjects=9, seed=3, shape=(20, 22, 18))


@pytest.fixture(scope="module")
def files(cohort):
    return datasets.FolderDataset(
        cohort,
        x={"pattern": "sub-*/anat/*_T1w.nii.gz"},
        y={"file": "participants.tsv", "column": "age"},
        x_transforms=[tx.NormalizeIntensity(0, 1)],
    )


def _epoch(loader):
    return [(np.array(b[0]), np.array(b[1]), np.array(b.records)) for b in loader]


def _same(a, b):
    assert len(a) == len(b)
    for (xa, ya, ra), (xb, yb, rb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(ra, rb)


@pytest.mark.parametrize("sampler", ["blocks", "slices", None])
def test_same_seed_same_batches_for_any_number_of_workers_threads_and_prefetch(files, sampler):
    """Random affine and noise, read from .nii.gz: every combination serves the same bits."""

    def run(workers, prefetch, threads):
        before = nitrain.get_num_threads()
        nitrain.set_num_threads(threads)
        try:
            s = {
                "blocks": samplers.BlockSampler(block_size=8, n_blocks=3, sub_batch_size=4, shuffle=True),
                "slices": samplers.SliceSampler(sub_batch_size=7, axis=2, shuffle=True),
                None: None,
            }[sampler]
            ld = loaders.DatasetLoader(
                files,
                batch_size=2,
                shuffle=True,
                sampler=s,
                x_transforms=[tx.RandomRotate(-10, 10), tx.RandomNoise(sd=0.1)],
                seed=11,
                num_workers=workers,
                prefetch=prefetch,
                pool=4 if s is not None else None,
            )
            return [_epoch(ld), _epoch(ld)]  # two epochs: the second draws anew
        finally:
            nitrain.set_num_threads(before)

    reference = run(0, 0, 1)
    assert not np.array_equal(reference[0][0][0], reference[1][0][0])
    for workers, prefetch, threads in [(1, 1, 2), (2, 0, 1), (2, 2, 2), (3, 1, 1)]:
        got = run(workers, prefetch, threads)
        for e in range(2):
            _same(got[e], reference[e])


def test_batches_name_the_record_of_every_item():
    ds = _subjects(10)
    sampler = samplers.SliceSampler(sub_batch_size=5, axis=2, shuffle=True)
    ld = loaders.DatasetLoader(ds, batch_size=2, shuffle=True, sampler=sampler, seed=0, pool=4)
    served = []
    for b in ld:
        assert isinstance(b, loaders.Batch)
        x, y = b  # still an (x, y) pair
        np.testing.assert_array_equal(x[:, 0, 0, 0], b.records)
        np.testing.assert_array_equal(y, b.records)
        assert b.channel == "last" and b.origins.shape == (len(y), 1)
        served += list(zip(b.records.tolist(), b.origins[:, 0].tolist(), strict=True))
    assert sorted(served) == [(r, k) for r in range(10) for k in range(8)]  # each slice once

    whole = loaders.DatasetLoader(ds, batch_size=3, shuffle=True, seed=0)
    for b in whole:
        np.testing.assert_array_equal(b.y, b.records)
        assert b.origins is None


def test_sub_batches_mix_the_subjects_of_a_pool():
    ds = _subjects(24)
    sampler = samplers.SliceSampler(sub_batch_size=16, axis=2, shuffle=True)
    mixed = loaders.DatasetLoader(ds, batch_size=2, shuffle=True, sampler=sampler, seed=1, pool=12)
    assert mixed.pool_size() == 12
    batches = list(mixed)
    assert len(batches) == len(mixed) == 2 * (12 * 8 // 16)
    pools = [set(b.records.tolist()) for b in batches]
    # every sub-batch draws from many of its pool's 12 subjects, far more than an image-batch of 2
    assert min(len(p) for p in pools) >= 6
    first, second = set().union(*pools[:6]), set().union(*pools[6:])
    assert len(first) == len(second) == 12 and not first & second  # pools are disjoint, streamed in turn

    unmixed = loaders.DatasetLoader(ds, batch_size=2, shuffle=True, sampler=sampler, seed=1, pool=2)
    assert max(len(set(b.records.tolist())) for b in unmixed) == 2


def test_default_pool_is_bounded_in_bytes_and_only_for_shuffling_samplers():
    ds = _subjects(30, shape=(16, 16, 16))  # a record counts 2 * 4 bytes per voxel: 32 KiB
    shuffling = samplers.SliceSampler(sub_batch_size=8, axis=2, shuffle=True)
    assert loaders.DatasetLoader(ds, 4, sampler=shuffling).pool_size() == 30  # all fit in 1 GiB
    assert loaders.DatasetLoader(ds, 4, sampler=shuffling, pool_bytes=10 * 32768).pool_size() == 10
    assert loaders.DatasetLoader(ds, 4, sampler=shuffling, pool_bytes=1).pool_size() == 4  # >= batch_size
    in_order = samplers.SliceSampler(sub_batch_size=8, axis=2)
    assert loaders.DatasetLoader(ds, 4, sampler=in_order).pool_size() == 4
    assert loaders.DatasetLoader(ds, 4).pool_size() == 4
    with pytest.raises(ValueError, match="pool must be a positive integer"):
        loaders.DatasetLoader(ds, 4, sampler=shuffling, pool=0)
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0"):
        loaders.DatasetLoader(ds, 4, num_workers=-1)


class _Counting(samplers.SliceSampler):
    gathered = 0

    def gather(self, images, table, channel):
        type(self).gathered += 1
        return super().gather(images, table, channel)


def test_sub_batches_are_made_when_asked_for():
    ds = _subjects(8)
    ld = loaders.DatasetLoader(
        ds, 2, sampler=_Counting(sub_batch_size=4, axis=2, shuffle=True), pool=8, seed=0
    )
    it = iter(ld)
    next(it)
    assert _Counting.gathered == 1  # not the pool's 16 sub-batches at once
    next(it)
    assert _Counting.gathered == 2
    it.close()


class _Slow(datasets.MemoryDataset):
    """Each fetch sleeps (as a read waiting on a disk or a server does, without the GIL) and records how
    many fetches were in progress at once."""

    def __init__(self, n):
        super().__init__([np.full((4, 4), float(i), np.float32) for i in range(n)], list(range(n)))
        self.lock, self.now, self.most = threading.Lock(), 0, 0

    def __getitem__(self, index):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        return super().__getitem__(index)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_records_are_prepared_on_num_workers_lanes(workers):
    ds = _Slow(12)
    ld = loaders.DatasetLoader(ds, 3, num_workers=workers, prefetch=1, seed=0)
    assert [b.records.tolist() for b in ld] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert ds.most == workers


def test_a_failing_record_raises_in_the_loop_and_stops_the_lanes():
    class Broken(datasets.MemoryDataset):
        def __getitem__(self, index):
            if int(index) == 5:
                raise OSError("record 5: the file is truncated")
            return super().__getitem__(index)

    ds = Broken([np.zeros((4, 4), np.float32)] * 8, list(range(8)))
    before = {t for t in threading.enumerate() if t.name.startswith("nitrain-loader")}
    with pytest.raises(OSError, match="record 5"):
        list(loaders.DatasetLoader(ds, 2, num_workers=2, seed=0))
    time.sleep(0.2)
    after = {t for t in threading.enumerate() if t.name.startswith("nitrain-loader") and t.is_alive()}
    assert after <= before


@pytest.mark.parametrize("expand_dims, axis", [(-1, -1), (1, 1)])
def test_several_inputs_stack_as_channels(expand_dims, axis):
    import ants

    rng = np.random.default_rng(0)
    t1 = [ants.from_numpy(rng.normal(size=(8, 8, 8)).astype(np.float32)) for _ in range(4)]
    flair = [ants.from_numpy(rng.normal(size=(8, 8, 8)).astype(np.float32)) for _ in range(4)]
    ds = datasets.MemoryDataset([[a, b] for a, b in zip(t1, flair, strict=True)], [1.0, 2.0, 3.0, 4.0])
    whole = loaders.DatasetLoader(ds, 2, expand_dims=expand_dims, stack_inputs=True, seed=0)
    x, y = next(iter(whole))
    assert x.shape == ((2, 8, 8, 8, 2) if axis == -1 else (2, 2, 8, 8, 8))
    np.testing.assert_array_equal(np.take(x, 0, axis=axis)[1], t1[1].numpy())
    np.testing.assert_array_equal(np.take(x, 1, axis=axis)[0], flair[0].numpy())
    blocks = loaders.DatasetLoader(
        ds, 2, sampler=samplers.BlockSampler(4, sub_batch_size=8), expand_dims=expand_dims, stack_inputs=True
    )
    b = next(iter(blocks))
    assert b.x.shape == ((8, 4, 4, 4, 2) if axis == -1 else (8, 2, 4, 4, 4))
    with pytest.raises(ValueError, match="stack_inputs=True needs a channel axis"):
        loaders.DatasetLoader(ds, 2, expand_dims=None, stack_inputs=True)


def test_a_two_channel_torch_model_trains_on_stacked_inputs():
    torch = pytest.importorskip("torch")
    import ants

    from nitrain import trainers

    rng = np.random.default_rng(1)
    vols = [
        [ants.from_numpy(rng.normal(size=(8, 8, 8)).astype(np.float32)) for _ in range(2)] for _ in range(4)
    ]
    ds = datasets.MemoryDataset(vols, [0.0, 1.0, 2.0, 3.0])
    ld = loaders.DatasetLoader(ds, 2, stack_inputs=True, seed=0)
    model = torch.nn.Sequential(
        torch.nn.Conv3d(2, 4, 3), torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(), torch.nn.Linear(4, 1)
    )
    trainer = trainers.ModelTrainer(model, "mse", verbose=0)
    history = trainer.fit(ld, epochs=1)
    assert np.isfinite(history["loss"][0])
