"""torch DataLoader over nitrain: ``DataLoader(loader.to_torch(), batch_size=None, num_workers=k)`` and
``DataLoader(dataset, batch_size=...)`` with ANTs images, in one process and in worker processes."""

import multiprocessing
import pickle
import sys
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader as _DataLoader  # noqa: E402

import nitrain.torch as nt  # noqa: E402
from nitrain import datasets, loaders, samplers  # noqa: E402
from nitrain import transforms as tx  # noqa: E402
from nitrain.loaders import torch as torch_loaders  # noqa: E402

SHAPE = (10, 12, 14)
TIMEOUT = 60  # a hung worker fails the test instead of the run


def _timeout(num_workers):
    return TIMEOUT if num_workers else 0  # torch takes a timeout with workers only


def DataLoader(*args, **kwargs):  # noqa: N802 - stands in for torch's class
    """torch's DataLoader; workers start from a fork server when tensorflow is loaded in this process (the
    test session imports it for the keras tests): tensorflow's threads make a plain fork crash at random."""
    if (
        kwargs.get("num_workers", 0)
        and "multiprocessing_context" not in kwargs
        and "tensorflow" in sys.modules
    ):
        multiprocessing.set_forkserver_preload(["torch", "nitrain", "nitrain.torch"])
        kwargs["multiprocessing_context"] = "forkserver"
    return _DataLoader(*args, **kwargs)


def _arrays(n=11, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=SHAPE).astype(np.float32) for _ in range(n)]
    ys = [float(20 + i) for i in range(n)]  # one distinct label per record
    return xs, ys


@pytest.fixture(scope="module")
def dataset():
    return datasets.MemoryDataset(*_arrays())


@pytest.fixture(scope="module")
def seg_dataset():
    xs, _ = _arrays(6, seed=1)
    labels = [(x > 0).astype(np.float32) + (x > 1) for x in xs]
    return datasets.MemoryDataset(xs, labels)


def _loader(ds, sampler=None, **kw):
    kw.setdefault("seed", 7)
    return loaders.DatasetLoader(
        ds, 3, shuffle=True, sampler=sampler, x_transforms=[tx.RandomNoise(sd=0.5)], **kw
    )


def _np(batches):
    return [(np.asarray(x), np.asarray(y)) for x, y in batches]


def _key(batch):
    x, y = batch
    return (x.shape, x.tobytes(), y.shape, y.tobytes())


def _multiset(batches):
    return Counter(_key(b) for b in batches)


def _same_sequence(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def _epochs(ld, n):
    """n epochs of ``ld`` served by the loader itself, as numpy, channels-first."""
    return [_np(ld.to_torch()) for _ in range(n)]


BLOCKS = samplers.BlockSampler((4, 5, 6), n_blocks=3, sub_batch_size=4)


# -- one epoch over workers --------------------------------------------------------------------------
@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("sampler", [None, BLOCKS], ids=["whole-images", "blocks"])
def test_workers_together_serve_exactly_the_single_process_epoch(dataset, sampler, num_workers):
    (expected,) = _epochs(_loader(dataset, sampler), 1)
    keys = [_key(b) for b in expected]
    assert len(set(keys)) == len(keys) > 3  # distinct batches: a multiset comparison can see a duplicate
    ld = _loader(dataset, sampler)
    dl = DataLoader(ld.to_torch(), batch_size=None, num_workers=num_workers, timeout=_timeout(num_workers))
    got = _np(dl)
    assert len(dl) == len(ld) == len(got) == len(expected)
    assert _multiset(got) == _multiset(expected)  # nothing dropped, nothing served twice
    if sampler is None:  # one batch per image-batch: the DataLoader's round-robin keeps the order
        _same_sequence(got, expected)
    assert sorted(np.concatenate([y for _, y in got]).tolist()) == sorted(
        np.repeat(dataset[:][1], 1 if sampler is None else 3).tolist()
    )


@pytest.mark.parametrize("sampler", [None, BLOCKS], ids=["whole-images", "blocks"])
def test_each_worker_gets_every_kth_image_batch(dataset, sampler, monkeypatch):
    """The shares themselves, without processes: worker w of k serves image-batches w, w+k, ..."""
    ld = _loader(dataset, sampler)
    per_image_batch = [ld._prepare_group(g) for g in ld._plan(0)]  # the epoch, group by group
    k, shares = 3, []
    for w in range(k):
        info = SimpleNamespace(id=w, num_workers=k)
        monkeypatch.setattr(torch_loaders, "get_worker_info", lambda info=info: info)
        worker_copy = pickle.loads(pickle.dumps(ld.to_torch()))  # as a worker gets it
        shares.append(_np(worker_copy))
        assert worker_copy.epoch == 1  # the copy moved on, the original did not
    assert ld.epoch == 0
    for w, share in enumerate(shares):
        want = [(np.moveaxis(x, -1, 1), y) for items in per_image_batch[w::k] for x, y in items]
        _same_sequence(share, want)
    keys = [_key(b) for s in shares for b in s]
    assert len(keys) == len(set(keys)) == sum(len(items) for items in per_image_batch)


def test_worker_shares_compose_with_rank_shards(dataset):
    served = []
    for rank in range(2):
        (expected,) = _epochs(_loader(dataset, rank=rank, world_size=2), 1)
        ld = _loader(dataset, rank=rank, world_size=2)
        got = _np(DataLoader(ld.to_torch(), batch_size=None, num_workers=2, timeout=TIMEOUT))
        assert _multiset(got) == _multiset(expected)
        served += [y for _, y in got]
    labels = np.concatenate(served)
    assert sorted(labels.tolist()) == sorted(dataset[:][1])  # the ranks' records: each once


# -- epochs --------------------------------------------------------------------------------------------
def test_persistent_workers_step_through_the_loaders_epochs(dataset):
    first, second = _epochs(_loader(dataset), 2)
    assert _multiset(first) != _multiset(second)  # the epochs really differ
    ld = _loader(dataset)
    dl = DataLoader(ld.to_torch(), batch_size=None, num_workers=2, persistent_workers=True, timeout=TIMEOUT)
    _same_sequence(_np(dl), first)
    _same_sequence(_np(dl), second)


def test_set_epoch_chooses_the_epoch_of_fresh_workers(dataset):
    epochs = _epochs(_loader(dataset), 3)
    tl = _loader(dataset).to_torch()
    dl = DataLoader(tl, batch_size=None, num_workers=2, timeout=TIMEOUT)
    for e in (0, 1, 2, 1):
        tl.set_epoch(e)
        _same_sequence(_np(dl), epochs[e])
    # without set_epoch, fresh (non-persistent) workers copy the same epoch every time (documented)
    tl.set_epoch(2)
    _same_sequence(_np(dl), epochs[2])
    _same_sequence(_np(dl), epochs[2])
    with pytest.raises(ValueError, match="set_epoch: epoch must be an integer >= 0, got -1"):
        tl.set_epoch(-1)


def test_without_workers_each_dataloader_epoch_is_the_next_loader_epoch(dataset):
    epochs = _epochs(_loader(dataset), 2)
    tl = _loader(dataset).to_torch()
    dl = DataLoader(tl, batch_size=None)
    _same_sequence(_np(dl), epochs[0])
    _same_sequence(_np(dl), epochs[1])
    assert tl.epoch == tl.loader.epoch == 2
    _same_sequence(_np(_loader(dataset).to_torch()), epochs[0])  # a plain for loop, as before


# -- what the DataLoader may and may not do --------------------------------------------------------------
@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_dataloader_batch_size_is_refused(dataset, num_workers):
    dl = DataLoader(
        _loader(dataset).to_torch(), batch_size=2, num_workers=num_workers, timeout=_timeout(num_workers)
    )
    batches = iter(dl)
    with pytest.raises(ValueError, match="needs batch_size=None"):
        next(batches)
    del batches  # stops the workers now
    with pytest.raises(ValueError, match="needs batch_size=None"):  # DataLoader's default batch_size=1
        next(iter(DataLoader(_loader(dataset).to_torch())))
    with pytest.raises(ValueError, match="needs batch_size=None"):
        next(iter(DataLoader(_loader(dataset).to_torch(), batch_size=2, collate_fn=nt.collate)))


def test_pin_memory_in_a_worker_is_refused(dataset):
    dl = DataLoader(_loader(dataset).to_torch(pin_memory=True), batch_size=None, num_workers=1)
    with pytest.raises(ValueError, match="pass pin_memory=True to the DataLoader"):
        next(iter(dl))


@pytest.mark.slow  # a spawned worker imports torch and nitrain afresh (~10 s)
def test_spawned_workers_get_a_pickled_loader(dataset):
    (expected,) = _epochs(_loader(dataset), 1)
    tl = _loader(dataset).to_torch()
    again = pickle.loads(pickle.dumps(tl))
    _same_sequence(_np(again), expected)
    dl = DataLoader(tl, batch_size=None, num_workers=1, multiprocessing_context="spawn", timeout=TIMEOUT)
    _same_sequence(_np(dl), expected)


def test_a_memory_cached_dataset_pickles(tmp_path):
    root = datasets.make_phantom_cohort(tmp_path / "ds", n_subjects=3, seed=5, shape=(16, 16, 16))
    ds = datasets.FolderDataset(
        root,
        x={"pattern": "sub-*/anat/*_T1w.nii.gz"},
        y={"file": "participants.tsv", "column": "age"},
        x_transforms=[tx.NormalizeIntensity(0, 1)],
        cache="memory",
    )
    ld = loaders.DatasetLoader(ds, 2, seed=0)
    expected = _np(ld.to_torch())  # fills the cache
    assert len(ds.cache) == 3
    copy = pickle.loads(pickle.dumps(ld))
    assert len(copy.dataset.cache) == 3
    copy.epoch = 0
    _same_sequence(_np(copy.to_torch()), expected)


def test_workers_forked_after_kernels_ran_in_the_parent_do_not_hang(dataset):
    img = dataset[0][0]
    tx.NormalizeIntensity(0, 1)(img)  # the parent's kernel thread pool is up and used
    tx.RandomSmoothing(0.5, 1.0)(img, rng=np.random.default_rng(0))
    (expected,) = _epochs(_loader(dataset), 1)  # the parent's loader ran kernels too
    got = _np(DataLoader(_loader(dataset).to_torch(), batch_size=None, num_workers=2, timeout=TIMEOUT))
    _same_sequence(got, expected)
    # a dataset whose own transforms run kernels in the workers
    normed = datasets.MemoryDataset(*_arrays(5), x_transforms=[tx.NormalizeIntensity(0, 1)])
    x, _ = next(iter(DataLoader(normed, batch_size=5, num_workers=2, timeout=TIMEOUT)))
    np.testing.assert_array_equal(x.numpy(), np.stack([normed[i][0].numpy() for i in range(5)])[:, None])


# -- channels --------------------------------------------------------------------------------------------
def test_tensors_are_channels_first_by_default(dataset, seg_dataset):
    ld = _loader(dataset)
    x_last, _ = next(iter(_loader(dataset)))
    tl = ld.to_torch()
    assert tl.channel == "first" and isinstance(tl, torch.utils.data.IterableDataset)
    x, y = next(iter(tl))
    assert x.shape == (3, 1, *SHAPE) and y.shape == (3,) and x.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy(), np.moveaxis(x_last, -1, 1))
    x, y = next(iter(_loader(dataset).to_torch(channels="last")))
    assert x.shape == (3, *SHAPE, 1)
    x, y = next(iter(_loader(seg_dataset).to_torch()))
    assert x.shape == y.shape == (3, 1, *SHAPE)  # image targets move with x
    x, y = next(iter(loaders.DatasetLoader(dataset, 2, expand_dims=None).to_torch()))
    assert x.shape == (2, 1, *SHAPE)  # the channel axis is inserted
    with pytest.raises(ValueError, match="channels must be 'first', 'last' or None, got 'middle'"):
        ld.to_torch(channels="middle")


class _Conv3d(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(1, 2, 3, padding=1)
        self.head = torch.nn.Linear(2, 1)

    def forward(self, x):
        if x.shape[1] != 1:
            raise ValueError(f"expected (N, 1, ...), got {tuple(x.shape)}")
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


def test_the_trainer_takes_to_torch_and_a_dataloader_over_it(dataset):
    from nitrain.trainers import ModelTrainer

    def train(make):
        model = _Conv3d()
        trainer = ModelTrainer(model, "mse", seed=0, verbose=0, device="cpu")
        history = trainer.fit(make(), epochs=2)
        return history["loss"], {k: v.clone() for k, v in model.state_dict().items()}

    ref_loss, ref_w = train(lambda: _loader(dataset))  # numpy, channels-last: the trainer moves axes
    for make in (
        lambda: _loader(dataset).to_torch(),
        lambda: DataLoader(
            _loader(dataset).to_torch(), batch_size=None, num_workers=2, persistent_workers=True
        ),
    ):
        loss, w = train(make)
        assert loss == ref_loss and ref_loss[0] != ref_loss[1]
        assert all(torch.equal(w[k], ref_w[k]) for k in ref_w)  # the same batches, in the same order


# -- DataLoader(dataset): collating ANTs images ------------------------------------------------------------
@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_plain_dataloader_stacks_ants_images(dataset, num_workers):
    batches = list(DataLoader(dataset, batch_size=4, num_workers=num_workers, timeout=_timeout(num_workers)))
    assert [len(y) for _, y in batches] == [4, 4, 3]
    x, y = batches[0]
    assert x.shape == (4, 1, *SHAPE) and x.dtype == torch.float32
    assert y.dtype == torch.float64  # torch's own rule for Python floats
    want = np.stack([dataset[i][0].numpy() for i in range(4)])[:, None]
    np.testing.assert_array_equal(x.numpy(), want)
    np.testing.assert_array_equal(torch.cat([y for _, y in batches]).numpy(), dataset[:][1])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_collate_stacks_label_maps_and_gives_float32_labels(dataset, seg_dataset, num_workers):
    x, y = next(iter(DataLoader(dataset, batch_size=3, collate_fn=nt.collate, num_workers=num_workers)))
    assert x.shape == (3, 1, *SHAPE) and y.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), np.float32(dataset[:3][1]))
    x, y = next(iter(DataLoader(seg_dataset, batch_size=3, collate_fn=nt.collate, num_workers=num_workers)))
    assert x.shape == y.shape == (3, 1, *SHAPE) and y.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), np.stack([seg_dataset[i][1].numpy() for i in range(3)])[:, None])
    assert set(np.unique(y.numpy())) == {0.0, 1.0, 2.0}


def test_collate_several_inputs_components_and_mismatched_shapes(dataset):
    ants = pytest.importorskip("ants")
    (a, ya), (b, yb) = dataset[0], dataset[1]
    xs, ys = nt.collate([([a, b], ya), ([b, a], yb)])
    assert isinstance(xs, list) and [t.shape for t in xs] == [(2, 1, *SHAPE)] * 2
    np.testing.assert_array_equal(xs[1][0, 0].numpy(), b.numpy())
    rgb = np.random.default_rng(0).random((5, 6, 7, 3)).astype(np.float32)
    out = nt.collate([ants.from_numpy(rgb, has_components=True)] * 2)
    assert out.shape == (2, 3, 5, 6, 7)
    np.testing.assert_array_equal(out[1].numpy(), np.moveaxis(rgb, -1, 0))
    small = ants.from_numpy(np.zeros((4, 4, 4), np.float32))
    with pytest.raises(
        ValueError, match=r"different \(channels, \*shape\) \[\(1, 4, 4, 4\), \(1, 10, 12, 14\)\]"
    ):
        nt.collate([(a, 1.0), (small, 2.0)])


def test_workers_can_return_ants_images_unbatched(dataset):
    ants = pytest.importorskip("ants")
    items = list(DataLoader(dataset, batch_size=None, num_workers=2, timeout=TIMEOUT))
    assert len(items) == len(dataset)
    for i, (img, label) in enumerate(items):  # ANTs images pickle (pixels and geometry)
        assert isinstance(img, ants.ANTsImage) and label == dataset[i][1]
        np.testing.assert_array_equal(img.numpy(), dataset[i][0].numpy())
        assert img.spacing == dataset[i][0].spacing
