import os
import shutil
import time

import ants
import numpy as np
import pytest

from nitrain import datasets
from nitrain import transforms as tx
from nitrain.datasets.cache import DiskCache, MemoryCache

X = {"pattern": "sub-*/anat/*_T1w.nii.gz"}
Y = {"file": "participants.tsv", "column": "age"}


@pytest.fixture
def cohort(tmp_path):
    return datasets.make_phantom_cohort(tmp_path / "ds", n_subjects=3, seed=4, shape=(24, 24, 24))


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_hits_give_the_same_images_as_misses(cohort, tmp_path, kind, monkeypatch):
    monkeypatch.setenv("NITRAIN_HOME", str(tmp_path / "home"))
    plain = datasets.FolderDataset(cohort, X, Y, x_transforms=[tx.RangeNormalize(0, 1)])
    cached = datasets.FolderDataset(cohort, X, Y, x_transforms=[tx.RangeNormalize(0, 1)], cache=kind)
    for i in range(3):
        first, second = cached[i][0], cached[i][0]
        np.testing.assert_array_equal(first.numpy(), plain[i][0].numpy())
        np.testing.assert_array_equal(second.numpy(), plain[i][0].numpy())
        assert second.spacing == plain[i][0].spacing and second.origin == plain[i][0].origin
    assert (cached.cache.misses, cached.cache.hits) == (3, 3)
    if kind == "disk":
        assert len(list((tmp_path / "home" / "cache").rglob("*.nii"))) == 3


def test_disk_cache_is_invalidated_by_file_and_transform_changes(cohort, tmp_path):
    cache = DiskCache(tmp_path / "cache")
    ds = datasets.FolderDataset(cohort, X, Y, x_transforms=[tx.RangeNormalize(0, 1)], cache=cache)
    ds[0]
    ds[0]
    assert (cache.misses, cache.hits) == (1, 1)
    # A changed transform list is a different entry.
    ds2 = datasets.FolderDataset(cohort, X, Y, x_transforms=[tx.RangeNormalize(0, 2)], cache=cache)
    assert ds2[0][0].numpy().max() == pytest.approx(2)
    assert cache.misses == 2
    # A changed file is a different entry too.
    path = cohort / "sub-001/anat/sub-001_T1w.nii.gz"
    img = ants.image_read(str(path))
    ants.image_write(img * 2 + 5, str(path))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    ds[0]
    assert cache.misses == 3


def test_damaged_disk_entries_are_recomputed(cohort, tmp_path):
    cache = DiskCache(tmp_path / "cache")
    ds = datasets.FolderDataset(cohort, X, Y, x_transforms=[tx.RangeNormalize(0, 1)], cache=cache)
    good = ds[1][0].numpy()
    for f in (tmp_path / "cache").rglob("*.nii"):
        f.write_bytes(b"garbage")
    np.testing.assert_array_equal(ds[1][0].numpy(), good)


def test_memory_cache_is_bounded_by_bytes(cohort):
    one = 24**3 * 4
    cache = MemoryCache(max_bytes=2 * one)
    ds = datasets.FolderDataset(cohort, X, Y, cache=cache)
    for i in range(3):
        ds[i]
    assert len(cache) == 2
    ds[0]  # evicted first, so a miss again
    assert cache.misses == 4


def test_random_transforms_cannot_be_cached(cohort):
    with pytest.raises(ValueError, match="fixed transforms only; RandomNoise"):
        datasets.FolderDataset(cohort, X, Y, x_transforms=[tx.RandomNoise(0.1)], cache="memory")
    with pytest.raises(ValueError, match="cache must be None, 'memory', 'disk'"):
        datasets.FolderDataset(cohort, X, Y, cache="ram")


def test_cached_images_are_copies(cohort):
    ds = datasets.FolderDataset(cohort, X, Y, cache="memory")
    a = ds[0][0]
    a.view()[...] = 0
    assert ds[0][0].numpy().max() > 0


def test_two_datasets_share_one_disk_folder(cohort, tmp_path):
    shutil.rmtree(tmp_path / "shared", ignore_errors=True)
    a = datasets.FolderDataset(cohort, X, Y, cache=DiskCache(tmp_path / "shared"))
    b = datasets.FolderDataset(cohort, X, Y, cache=DiskCache(tmp_path / "shared"))
    a[2]
    b[2]
    assert b.cache.hits == 1


_WORKER = """
import json, os, sys, time
from nitrain import datasets
from nitrain import transforms as tx
from nitrain.datasets.cache import DiskCache

cohort, shared, go, out = sys.argv[1:5]
while not os.path.exists(go):  # start both processes' misses together
    time.sleep(0.005)
ds = datasets.FolderDataset(
    cohort,
    {"pattern": "sub-*/anat/*_T1w.nii.gz"},
    {"file": "participants.tsv", "column": "age"},
    x_transforms=[tx.Resample((12, 12, 12)), tx.RangeNormalize(0, 1)],
    cache=DiskCache(shared),
)
sums = [[float(ds[i][0].numpy().astype("float64").sum()) for i in range(len(ds))] for _ in range(4)]
json.dump({"sums": sums, "hits": ds.cache.hits, "misses": ds.cache.misses}, open(out, "w"))
"""


def test_two_processes_share_one_disk_cache(cohort, tmp_path):
    """Two processes fill and read one cache folder at the same time: both get the uncached images, every
    entry is complete, and no temporary file is left behind."""
    import json
    import subprocess
    import sys

    shared, go = tmp_path / "shared", tmp_path / "go"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(cohort), str(shared), str(go), str(tmp_path / f"out{k}.json")],
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    time.sleep(0.5)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    plain = datasets.FolderDataset(
        cohort, X, Y, x_transforms=[tx.Resample((12, 12, 12)), tx.RangeNormalize(0, 1)]
    )
    want = [float(plain[i][0].numpy().astype("float64").sum()) for i in range(len(plain))]
    for k in range(2):
        res = json.loads((tmp_path / f"out{k}.json").read_text())
        for sums in res["sums"]:
            np.testing.assert_allclose(sums, want, rtol=1e-6)
        assert res["hits"] + res["misses"] == 4 * len(plain) and res["hits"] >= 3 * len(plain)
    files = sorted(p.name for p in shared.rglob("*") if p.is_file())
    assert len(files) == len(plain) and all(f.endswith(".nii") and not f.startswith("tmp") for f in files)
    again = datasets.FolderDataset(
        cohort,
        X,
        Y,
        x_transforms=[tx.Resample((12, 12, 12)), tx.RangeNormalize(0, 1)],
        cache=DiskCache(shared),
    )
    [again[i] for i in range(len(again))]
    assert (again.cache.hits, again.cache.misses) == (len(plain), 0)
