"""A remote store that stops answering: a moto S3 server in its own process, frozen with SIGSTOP after the
dataset is built (the connection stays open and requests are accepted, but nothing comes back)."""

import os
import select
import signal
import subprocess
import sys
import time

import pytest

from nitrain import datasets
from nitrain.datasets.storage import S3_DEFAULTS, open_fs, remote_options

boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

X = {"pattern": "sub-*/anat/*_T1w.nii.gz"}
Y = {"file": "participants.tsv", "column": "age"}

_SERVER = """
import threading
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
threading.Event().wait()
"""


@pytest.fixture
def frozen_s3(tmp_path, monkeypatch):
    """``(options, freeze)``: a moto server process holding a 2-subject cohort at ``s3://cohort/ds``;
    ``freeze()`` stops it. It is resumed and killed in teardown, whatever the test did."""
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "the moto server did not start within 60 s"
        endpoint = f"http://127.0.0.1:{int(proc.stdout.readline())}"
        creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
        client = boto3.client("s3", endpoint_url=endpoint, **creds)
        client.create_bucket(Bucket="cohort")
        local = datasets.make_phantom_cohort(tmp_path / "src", n_subjects=2, seed=3, shape=(16, 16, 16))
        for root, _, files in os.walk(local):
            for f in files:
                full = os.path.join(root, f)
                rel = os.path.relpath(full, local).replace(os.sep, "/")
                client.upload_file(full, "cohort", "ds/" + rel)
        options = {
            "key": "test",
            "secret": "test",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            "skip_instance_cache": True,
        }
        yield options, lambda: os.kill(proc.pid, signal.SIGSTOP)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def _read_frozen(options, freeze, tmp_path):
    ds = datasets.FolderDataset("s3://cohort/ds", X, Y, storage_options=options, download_dir=tmp_path / "dl")
    ds[0]  # the store answers until it is frozen mid-epoch
    freeze()
    start = time.monotonic()
    with pytest.raises(OSError) as caught:
        ds[1]
    return time.monotonic() - start, str(caught.value)


@pytest.mark.slow
def test_a_frozen_store_fails_the_record_within_the_default_waits(frozen_s3, tmp_path):
    options, freeze = frozen_s3
    elapsed, message = _read_frozen(options, freeze, tmp_path)
    assert elapsed < 45, f"a frozen store took {elapsed:.0f} s to give an error"
    assert "FolderDataset record 1 (sub-002)" in message
    assert "s3://cohort/ds/sub-002/anat/sub-002_T1w.nii.gz" in message
    assert "did not answer in time" in message and "read_timeout 10 s" in message


def test_storage_options_set_the_waits(frozen_s3, tmp_path):
    options, freeze = frozen_s3
    options = {**options, "config_kwargs": {"read_timeout": 1}}
    elapsed, message = _read_frozen(options, freeze, tmp_path)
    # Two attempts of 1 s each (botocore's first retry waits under 1 s) and one s3fs pass.
    assert elapsed < 8, f"read_timeout 1 took {elapsed:.0f} s to give an error"
    assert "FolderDataset record 1 (sub-002)" in message and "read_timeout 1 s" in message


def test_user_options_are_merged_over_the_defaults():
    given = {"config_kwargs": {"read_timeout": 60, "retries": {"total_max_attempts": 4}}, "anon": True}
    before = repr(given)
    opts = remote_options("s3://bucket/ds", given)
    assert repr(given) == before  # the caller's dicts are not changed
    assert opts["anon"] is True and opts["retries"] == S3_DEFAULTS["retries"]
    conf = opts["config_kwargs"]
    assert conf["read_timeout"] == 60 and conf["connect_timeout"] == 5
    assert conf["retries"] == {"max_attempts": 1, "mode": "standard", "total_max_attempts": 4}
    assert remote_options("s3a://bucket/ds")["config_kwargs"]["read_timeout"] == 10
    assert remote_options("memory://ds", {"a": 1}) == {"a": 1}
    assert remote_options("gs://bucket/ds") == {}


def test_open_fs_sets_s3fs_retries(monkeypatch):
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    # S3FileSystem has no 'retries' argument (it would reach aiobotocore's session and fail there).
    fs, path = open_fs("s3://bucket/ds", {"anon": True, "skip_instance_cache": True})
    assert path == "bucket/ds" and fs.retries == 1 and fs.config_kwargs["read_timeout"] == 10
    fs, _ = open_fs("s3://bucket/ds", {"anon": True, "skip_instance_cache": True, "retries": 3})
    assert fs.retries == 3
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")  # botocore's retries are then the environment's
    assert "retries" not in remote_options("s3://bucket/ds")["config_kwargs"]
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    with pytest.raises(ValueError, match=r"storage_options for s3://bucket/ds: 'retries' .* got 0"):
        open_fs("s3://bucket/ds", {"anon": True, "retries": 0})
