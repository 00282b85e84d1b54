"""The disk cache's byte limit, LRU eviction and stale-entry removal; cache keys of function transforms that
are the same in every process; progress bars that stay quiet unless asked."""

import json
import subprocess
import sys

import ants
import numpy as np
import pytest

from nitrain import datasets
from nitrain import transforms as tx
from nitrain.datasets.cache import LIMIT_ENV, DiskCache, MemoryCache, parse_size, source_key, transform_keys

X = {"pattern": "sub-*/anat/*_T1w.nii.gz"}
Y = {"file": "participants.tsv", "column": "age"}
SHAPE = (24, 24, 24)
ENTRY = 24**3 * 4 + 352  # one float32 NIfTI entry: pixels + header


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return datasets.make_phantom_cohort(
        tmp_path_factory.mktemp("c") / "ds", n_subjects=5, seed=2, shape=SHAPE
    )


def _entries(folder):
    return sorted(p for p in folder.rglob("*.nii"))


def _key(cohort, i, transforms):
    path = cohort / f"sub-{i + 1:03d}/anat/sub-{i + 1:03d}_T1w.nii.gz"
    return source_key(path, transforms, "x")


# -- the limit -----------------------------------------------------------------------------------------


def test_total_bytes_stay_within_the_limit(cohort, tmp_path):
    limit = 3 * ENTRY
    cache = DiskCache(tmp_path / "c", max_bytes=limit)
    ds = datasets.FolderDataset(cohort, X, Y, x_transforms=[tx.RangeNormalize(0, 1)], cache=cache)
    for i in range(len(ds)):
        ds[i]
        total = sum(p.stat().st_size for p in _entries(tmp_path / "c"))
        assert 0 < total <= limit
        assert cache.size() == total
    assert cache.evictions >= 2 and cache.misses == 5
    # Everything still reads right after evictions.
    plain = datasets.FolderDataset(cohort, X, Y, x_transforms=[tx.RangeNormalize(0, 1)])
    for i in range(len(ds)):
        np.testing.assert_array_equal(ds[i][0].numpy(), plain[i][0].numpy())


def test_least_recently_used_entry_goes_first(cohort, tmp_path):
    cache = DiskCache(tmp_path / "c", max_bytes=3 * ENTRY)
    ts = [tx.RangeNormalize(0, 1)]
    ds = datasets.FolderDataset(cohort, X, Y, x_transforms=ts, cache=cache)
    for i in range(3):
        ds[i]
    ds[0]  # a hit: record 0 becomes the most recently used
    assert (cache.hits, cache.misses) == (1, 3)
    ds[3]  # over the limit: record 1, the least recently used, is evicted (and 2 for headroom)
    names = {p.stem for p in _entries(tmp_path / "c")}
    assert _key(cohort, 0, ts) in names and _key(cohort, 3, ts) in names
    assert _key(cohort, 1, ts) not in names
    ds[0]
    assert cache.hits == 2
    ds[1]
    assert cache.misses == 5


def test_an_entry_larger_than_the_limit_is_not_written(cohort, tmp_path):
    cache = DiskCache(tmp_path / "c", max_bytes=ENTRY - 1)
    ds = datasets.FolderDataset(cohort, X, Y, cache=cache)
    ds[0]
    ds[0]
    assert _entries(tmp_path / "c") == [] and cache.hits == 0


def test_eviction_tolerates_entries_that_vanish(cohort, tmp_path):
    """Another process may delete entries at any time: the scan and the eviction skip them."""
    cache = DiskCache(tmp_path / "c", max_bytes=2 * ENTRY)
    ds = datasets.FolderDataset(cohort, X, Y, cache=cache)
    ds[0]
    ds[1]
    for p in _entries(tmp_path / "c"):
        p.unlink()
    ds[2]
    ds[3]
    ds[4]
    assert sum(p.stat().st_size for p in _entries(tmp_path / "c")) <= 2 * ENTRY
    ds[0]
    assert cache.hits == 0


# -- stale entries ---------------------------------------------------------------------------------------


def test_changing_the_transforms_replaces_the_old_entry(cohort, tmp_path):
    cache = DiskCache(tmp_path / "c")
    old = [tx.RangeNormalize(0, 1)]
    datasets.FolderDataset(cohort, X, Y, x_transforms=old, cache=cache)[0]
    assert [p.stem for p in _entries(tmp_path / "c")] == [_key(cohort, 0, old)]
    new = [tx.RangeNormalize(0, 2)]
    ds2 = datasets.FolderDataset(cohort, X, Y, x_transforms=new, cache=cache)
    assert ds2[0][0].numpy().max() == pytest.approx(2)
    assert [p.stem for p in _entries(tmp_path / "c")] == [_key(cohort, 0, new)]


def test_changing_the_source_file_replaces_the_old_entry(cohort, tmp_path):
    import shutil

    local = tmp_path / "ds"
    shutil.copytree(cohort, local)
    cache = DiskCache(tmp_path / "c")
    ds = datasets.FolderDataset(local, X, Y, cache=cache)
    old = ds[1][0].numpy()
    path = local / "sub-002/anat/sub-002_T1w.nii.gz"
    before = _entries(tmp_path / "c")
    ants.image_write(ants.image_read(str(path)) * 3, str(path))
    np.testing.assert_allclose(ds[1][0].numpy(), 3 * old, rtol=1e-6)
    assert cache.misses == 2
    after = _entries(tmp_path / "c")
    assert len(before) == len(after) == 1 and before != after


def test_one_file_read_as_x_and_as_y_keeps_both_entries(cohort, tmp_path):
    """The record is (file, stream): an autoencoder's x and y from the same file do not evict each other."""
    cache = DiskCache(tmp_path / "c")
    ds = datasets.FolderDataset(
        cohort,
        X,
        X,
        x_transforms=[tx.RangeNormalize(0, 1)],
        y_transforms=[tx.RangeNormalize(0, 2)],
        cache=cache,
    )
    ds[0]
    ds[0]
    assert (cache.hits, cache.misses) == (2, 2) and len(_entries(tmp_path / "c")) == 2


# -- limits from arguments and the environment -----------------------------------------------------------


def test_sizes_parse_and_bad_limits_name_the_parameter(cohort, monkeypatch):
    assert parse_size("20GB", "x") == 20 * 10**9
    assert parse_size("1.5 MiB", "x") == 3 * 2**19
    assert parse_size(4096, "x") == parse_size("4096", "x") == parse_size("4kib", "x") == 4096
    for bad in ("lots", "0", "-5MB", 0, -1, True, "12 parsecs", float("inf")):
        with pytest.raises(ValueError, match="FolderDataset: cache_limit must be a positive number of bytes"):
            datasets.FolderDataset(cohort, X, Y, cache="disk", cache_limit=bad)
    with pytest.raises(ValueError, match="cache_limit applies to cache='memory' or cache='disk' only"):
        datasets.FolderDataset(cohort, X, Y, cache_limit="1GB")
    with pytest.raises(ValueError, match="give the limit to the cache object"):
        datasets.FolderDataset(cohort, X, Y, cache=MemoryCache(), cache_limit="1GB")
    with pytest.raises(ValueError, match="DiskCache: max_bytes must be"):
        DiskCache(max_bytes="big")
    monkeypatch.setenv(LIMIT_ENV, "a lot")
    with pytest.raises(ValueError, match=f"environment variable {LIMIT_ENV} must be"):
        DiskCache()


def test_the_environment_variable_sets_the_default_limit(cohort, tmp_path, monkeypatch):
    monkeypatch.setenv("NITRAIN_HOME", str(tmp_path / "home"))
    assert DiskCache().max_bytes == 10 * 2**30
    monkeypatch.setenv(LIMIT_ENV, "150KB")
    ds = datasets.FolderDataset(cohort, X, Y, cache="disk")
    assert ds.cache.max_bytes == 150_000
    assert ds.cache.directory == tmp_path / "home" / "cache"
    for i in range(len(ds)):
        ds[i]
    total = sum(p.stat().st_size for p in _entries(tmp_path / "home" / "cache"))
    assert 0 < total <= 150_000 and ds.cache.evictions > 0
    # An explicit limit wins over the environment.
    assert datasets.FolderDataset(cohort, X, Y, cache="disk", cache_limit="1MiB").cache.max_bytes == 2**20
    assert datasets.FolderDataset(cohort, X, Y, cache="memory", cache_limit=ENTRY).cache.max_bytes == ENTRY


# -- keys of function transforms ---------------------------------------------------------------------------

_FUNCS = """
import threading

import numpy as np
from nitrain import transforms as tx

OFFSET = {offset}

def shift(a, by=1.0):
    return a + by + OFFSET

def make(c):
    return lambda a: a * c

def double(img):
    return img * 2

class Model:  # holds a lock: has no key that is the same in every process
    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self, a):
        return a + 1

MODEL = Model()

def uses_model(a):
    return MODEL(a)

TRANSFORMS = {{
    "numpy": [tx.NumpyFunction(shift, by=2.0), tx.NumpyFunction(make(3))],
    "custom": [tx.CustomFunction(double)],
    "unkeyable": [tx.NumpyFunction(uses_model)],
    "named": [tx.NumpyFunction(uses_model, cache_key="model-v1")],
}}
"""

_READER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import nitrain.datasets.base as base
from nitrain import datasets
from nitrain.datasets.cache import DiskCache, transform_keys
from funcs import TRANSFORMS

cohort, folder, which, mode = sys.argv[2:6]
ds = datasets.FolderDataset(
    cohort, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "participants.tsv", "column": "age"},
    x_transforms=TRANSFORMS[which], cache=DiskCache(folder),
)
if mode == "no-source":  # every image must come from the cache
    def refuse(path, where):
        raise AssertionError(f"read the source file {path}")
    base.read_image = refuse
sums = [float(ds[i][0].numpy().astype("float64").sum()) for i in range(len(ds))]
json.dump({"sums": sums, "hits": ds.cache.hits, "misses": ds.cache.misses,
           "keys": transform_keys(TRANSFORMS[which])}, sys.stdout)
"""


def _run(tmp_path, cohort, which, mode="plain", offset=0.0):
    code = tmp_path / f"code{offset}"
    code.mkdir(exist_ok=True)
    (code / "funcs.py").write_text(_FUNCS.format(offset=offset))
    (code / "reader.py").write_text(_READER)
    out = subprocess.run(
        [sys.executable, str(code / "reader.py"), str(code), str(cohort), str(tmp_path / "c"), which, mode],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("which", ["numpy", "custom", "named"])
def test_function_transforms_hit_across_processes(cohort, tmp_path, which):
    first = _run(tmp_path, cohort, which)
    assert (first["hits"], first["misses"]) == (0, 5)
    second = _run(tmp_path, cohort, which, mode="no-source")
    assert (second["hits"], second["misses"]) == (5, 0)
    assert second["keys"] == first["keys"] and second["sums"] == first["sums"]
    assert not any("0x" in k for k in first["keys"])


def test_functions_without_a_stable_key_never_share(cohort, tmp_path):
    first = _run(tmp_path, cohort, "unkeyable")
    second = _run(tmp_path, cohort, "unkeyable")
    assert (second["hits"], second["misses"]) == (0, 5)
    assert first["keys"] != second["keys"] and second["sums"] == first["sums"]
    assert len(_entries(tmp_path / "c")) == 5  # the other process's stale entries were replaced


def test_a_changed_global_is_a_different_key(cohort, tmp_path):
    first = _run(tmp_path, cohort, "numpy", offset=0.0)
    changed = _run(tmp_path, cohort, "numpy", offset=1.0)
    assert (changed["hits"], changed["misses"]) == (0, 5)
    assert changed["keys"][0] != first["keys"][0] and changed["keys"][1] == first["keys"][1]
    assert changed["sums"][0] == pytest.approx(first["sums"][0] + 3 * 24**3, rel=1e-6)


def _make(c):
    return lambda a: a * c


def _scale(a, k):
    return a * k


def test_lambdas_with_different_closures_do_not_collide(cohort, tmp_path):
    two, three = tx.NumpyFunction(_make(2.0)), tx.NumpyFunction(_make(3.0))
    assert transform_keys([two]) != transform_keys([three])
    assert transform_keys([two]) == transform_keys([tx.NumpyFunction(_make(2.0))])
    # Different keyword arguments, defaults or arrays in the closure are different keys too.
    assert transform_keys([tx.NumpyFunction(_scale, k=2)]) != transform_keys([tx.NumpyFunction(_scale, k=3)])
    a, b = np.zeros(4), np.zeros(4)
    b[3] = 1
    assert transform_keys([tx.NumpyFunction(_make(a))]) != transform_keys([tx.NumpyFunction(_make(b))])
    cache = DiskCache(tmp_path / "c")
    ds2 = datasets.FolderDataset(cohort, X, Y, x_transforms=[two], cache=cache)
    ds3 = datasets.FolderDataset(cohort, X, Y, x_transforms=[three], cache=cache)
    plain = datasets.FolderDataset(cohort, X, Y)
    for i in range(2):
        raw = plain[i][0].numpy()
        np.testing.assert_allclose(ds2[i][0].numpy(), raw * 2, rtol=1e-6)
        np.testing.assert_allclose(ds3[i][0].numpy(), raw * 3, rtol=1e-6)


def test_function_transform_repr_and_bad_cache_key():
    t = tx.NumpyFunction(_scale, k=2, cache_key="scale-v1")
    assert repr(t) == "NumpyFunction(fn=_scale, k=2, cache_key='scale-v1')"
    assert "0x" not in repr(tx.CustomFunction(lambda img: img))
    with pytest.raises(TypeError, match="NumpyFunction: cache_key must be a non-empty string"):
        tx.NumpyFunction(_scale, cache_key=3)


# -- progress bars -------------------------------------------------------------------------------------------


def test_filling_the_cache_and_quiet_progress_bars(cohort, tmp_path, capsys):
    cache = DiskCache(tmp_path / "c")
    ds = datasets.FolderDataset(cohort, X, X, cache=cache)
    ds.fill_cache()  # not a terminal: no bar
    assert (cache.hits, cache.misses) == (0, 10)
    [ds[i] for i in range(len(ds))]
    assert (cache.hits, cache.misses) == (10, 10)
    datasets.make_phantom_cohort(tmp_path / "p1", n_subjects=2, shape=(16, 16, 16))
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    ds.fill_cache(progress=True)
    datasets.make_phantom_cohort(tmp_path / "p2", n_subjects=2, shape=(16, 16, 16), progress=True)
    out = capsys.readouterr()
    assert out.out == ""
    assert "filling the cache" in out.err and "make_phantom_cohort" in out.err
    with pytest.raises(ValueError, match="fill_cache: the dataset has no cache"):
        datasets.FolderDataset(cohort, X, Y).fill_cache()
    with pytest.raises(TypeError, match="make_phantom_cohort: progress must be True, False or None"):
        datasets.make_phantom_cohort(tmp_path / "p3", n_subjects=1, progress="yes")


def test_occlusion_progress_bar(capsys):
    from nitrain.explainers import OcclusionExplainer

    def model(batch):
        return batch.reshape(len(batch), -1).mean(axis=1)[:, None]

    img = ants.from_numpy(np.ones((8, 8, 8), np.float32))
    quiet = OcclusionExplainer(model, patch_size=4, baseline=0.0).explain(img).numpy()
    assert capsys.readouterr() == ("", "")
    shown = OcclusionExplainer(model, patch_size=4, baseline=0.0, progress=True).explain(img).numpy()
    out = capsys.readouterr()
    assert out.out == "" and "OcclusionExplainer" in out.err
    np.testing.assert_array_equal(quiet, shown)
    with pytest.raises(TypeError, match="OcclusionExplainer: progress must be"):
        OcclusionExplainer(model, patch_size=4, progress=1)
