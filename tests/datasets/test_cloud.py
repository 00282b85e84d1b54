"""FolderDataset over a real S3 API: a moto server on 127.0.0.1, started by the fixture."""

import os

import numpy as np
import pytest

from nitrain import datasets
from nitrain import transforms as tx

boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

X = {"pattern": "sub-*/anat/*_T1w.nii.gz"}
Y = {"file": "participants.tsv", "column": "age"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory, moto_s3):
    client = moto_s3.client
    moto_s3.bucket("cohort")
    local = datasets.make_phantom_cohort(
        tmp_path_factory.mktemp("src") / "ds", n_subjects=4, seed=9, shape=(20, 20, 20)
    )
    for root, _, files in os.walk(local):
        for f in files:
            full = os.path.join(root, f)
            client.upload_file(
                full, "cohort", "studies/ds/" + os.path.relpath(full, local).replace(os.sep, "/")
            )
    return local, dict(moto_s3.options)


def test_s3_round_trip_matches_the_local_folder(s3, tmp_path):
    local, options = s3
    remote = datasets.FolderDataset(
        "s3://cohort/studies/ds",
        X,
        Y,
        x_transforms=[tx.RangeNormalize(0, 1)],
        storage_options=options,
        download_dir=tmp_path / "dl",
    )
    plain = datasets.FolderDataset(local, X, Y, x_transforms=[tx.RangeNormalize(0, 1)])
    assert remote.ids == plain.ids and len(remote) == 4
    for i in range(4):
        (xr, yr), (xl, yl) = remote[i], plain[i]
        assert yr == yl
        np.testing.assert_array_equal(xr.numpy(), xl.numpy())
        assert xr.spacing == xl.spacing
    # Files were copied once into the download folder and are reused.
    copies = sorted(p.name for p in (tmp_path / "dl").rglob("*.nii.gz"))
    assert len(copies) == 4
    remote[0]
    assert len(list((tmp_path / "dl").rglob("*.nii.gz"))) == 4


def test_s3_errors_name_the_url(s3):
    _, options = s3
    with pytest.raises(FileNotFoundError, match=r"matched no files under 's3://cohort/studies/ds'"):
        datasets.FolderDataset("s3://cohort/studies/ds", {"pattern": "*.mha"}, Y, storage_options=options)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        datasets.FolderDataset("s3://cohort/nothing-here", X, Y, storage_options=options)


def test_unreachable_endpoint_is_a_clear_error():
    options = {
        "key": "test",
        "secret": "test",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"},
        "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
        "skip_instance_cache": True,
    }
    with pytest.raises(OSError, match=r"cannot reach s3://cohort/ds"):
        datasets.FolderDataset("s3://cohort/ds", X, Y, storage_options=options)


def test_memory_filesystem(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    local = datasets.make_phantom_cohort(tmp_path / "ds", n_subjects=2, seed=1, shape=(16, 16, 16))
    fs = fsspec.filesystem("memory")
    for root, _, files in os.walk(local):
        for f in files:
            full = os.path.join(root, f)
            fs.put_file(full, "/mem-ds/" + os.path.relpath(full, local).replace(os.sep, "/"))
    ds = datasets.FolderDataset("memory://mem-ds", X, Y, download_dir=tmp_path / "dl")
    assert len(ds) == 2 and ds[1][0].shape == (16, 16, 16)
