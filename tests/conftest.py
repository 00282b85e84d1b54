import os

import numpy as np
import pytest

from nitrain._frameworks import load_triton_first

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Test modules import keras at collection; torch's triton must be loaded before tensorflow (see
# load_triton_first) or the first torch optimiser step aborts the run.
load_triton_first()


@pytest.fixture(scope="session")
def mni_t1():
    """The MNI152 T1 template (197x233x189, 1 mm) shipped inside nilearn's wheel, as an ANTs image."""
    ants = pytest.importorskip("ants")
    nilearn_datasets = pytest.importorskip("nilearn.datasets")
    nii = nilearn_datasets.load_mni152_template(resolution=1)
    data = np.asanyarray(nii.dataobj, dtype=np.float32)
    img = ants.from_numpy(np.asfortranarray(data), spacing=tuple(float(z) for z in nii.header.get_zooms()))
    return img


class MotoS3:
    """A moto S3 API server on 127.0.0.1: ``client`` (boto3), ``endpoint``, and ``options``, the fsspec
    storage options that reach it."""

    def __init__(self):
        import boto3
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
        self.client = boto3.client("s3", endpoint_url=self.endpoint, **creds)
        self.options = {
            "key": "test",
            "secret": "test",
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` (or empty it when it exists); returns the name."""
        existing = {b["Name"] for b in self.client.list_buckets().get("Buckets", [])}
        if name in existing:
            self.empty(name)
        else:
            self.client.create_bucket(Bucket=name)
        return name

    def empty(self, name: str) -> None:
        for obj in self.client.list_objects_v2(Bucket=name).get("Contents", []):
            self.client.delete_object(Bucket=name, Key=obj["Key"])


@pytest.fixture(scope="session")
def moto_s3():
    """One moto S3 server for the whole session; each test module uses buckets of its own."""
    pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    s3 = MotoS3()
    yield s3
    s3.server.stop()
