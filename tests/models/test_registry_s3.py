"""The pretrained registry on a real S3 API (``NITRAIN_REGISTRY=s3://...``): a moto server on 127.0.0.1."""

import pytest

from nitrain import models

torch = pytest.importorskip("torch")
boto3 = pytest.importorskip("boto3")
fsspec = pytest.importorskip("fsspec")
pytest.importorskip("s3fs")
pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3(moto_s3):
    moto_s3.bucket("registry")
    return moto_s3.client, moto_s3.endpoint


@pytest.fixture
def s3_registry(s3, monkeypatch, tmp_path):
    client, endpoint = s3
    # fsspec's configuration gives every s3:// filesystem these options (as FSSPEC_S3_* variables would)
    monkeypatch.setitem(
        fsspec.config.conf,
        "s3",
        {
            "key": "test",
            "secret": "test",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        },
    )
    monkeypatch.setenv("NITRAIN_REGISTRY", "s3://registry/team-models")
    monkeypatch.setenv("NITRAIN_HOME", str(tmp_path))  # must stay unused: the registry wins
    fsspec.filesystem("s3").invalidate_cache()
    yield client
    keys = client.list_objects_v2(Bucket="registry").get("Contents", [])
    for obj in keys:
        client.delete_object(Bucket="registry", Key=obj["Key"])


def _basic(seed):
    torch.manual_seed(seed)
    model = models.fetch_architecture("basic", dim=2, framework="torch")((16, 16, 1), 2, filters=(4, 8))
    model.train()
    model(torch.randn(4, 1, 16, 16)).sum().backward()  # moves the batch-norm running statistics
    return model.eval()


X = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))


def _same(a, b):
    with torch.no_grad():
        return torch.equal(a.eval()(X), b(X))


def test_round_trip_through_s3(s3_registry, tmp_path):
    a, b = _basic(0), _basic(1)
    card = models.register_pretrained(a, "lab/net", description="on s3")
    models.register_pretrained(b, "lab/net")
    keys = sorted(o["Key"] for o in s3_registry.list_objects_v2(Bucket="registry")["Contents"])
    assert keys == [
        f"team-models/lab/net/{v}/{f}" for v in (1, 2) for f in ("card.json", "weights.safetensors")
    ]
    assert not (tmp_path / "models").exists()
    assert [r["id"] for r in models.list_pretrained() if r["owner"] != "nitrain"] == [
        "lab/net@1",
        "lab/net@2",
    ]
    assert models.model_card("lab/net@1") == card
    assert _same(a, models.fetch_pretrained("lab/net@1"))
    assert _same(b, models.fetch_pretrained("lab/net"))
    with pytest.raises(FileExistsError, match="s3://registry/team-models"):
        models.register_pretrained(a, "lab/net@2")


def test_tampered_object_is_detected(s3_registry):
    models.register_pretrained(_basic(0), "lab/net")
    key = "team-models/lab/net/1/weights.safetensors"
    data = bytearray(s3_registry.get_object(Bucket="registry", Key=key)["Body"].read())
    data[-20] ^= 0xFF
    s3_registry.put_object(Bucket="registry", Key=key, Body=bytes(data))
    fsspec.filesystem("s3").invalidate_cache()
    with pytest.raises(models.ChecksumError, match=f"s3://registry/{key}"):
        models.fetch_pretrained("lab/net")


def test_unknown_name_names_the_bucket(s3_registry):
    with pytest.raises(models.PretrainedNotFoundError, match="s3://registry/team-models"):
        models.fetch_pretrained("lab/nothing")
