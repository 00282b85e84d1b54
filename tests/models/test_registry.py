import hashlib
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

import nitrain
from nitrain import models

from ._helpers import ROUND_TRIP_IDS, ROUND_TRIPS

torch = pytest.importorskip("torch")


def _user_ids():
    """Registered ids, without the models built into the package (owner ``nitrain``)."""
    return [r["id"] for r in models.list_pretrained() if r["owner"] != "nitrain"]


def _basic(seed=0, outcomes=2):
    torch.manual_seed(seed)
    model = models.fetch_architecture("basic", dim=2)((16, 16, 1), outcomes, filters=(4, 8))
    # one training step so the batch-norm running statistics are not their defaults
    model.train()
    model(torch.randn(4, 1, 16, 16)).sum().backward()
    return model.eval()


def _same_outputs(a, b, x):
    a.eval()
    with torch.no_grad():
        return torch.equal(a(x), b(x))


X = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))


def test_readme_round_trip(home):
    model = _basic()
    card = models.register_pretrained(model, "my-cool-model")
    assert card["id"] == "local/my-cool-model@1"
    folder = home / "models" / "local" / "my-cool-model" / "1"
    assert (folder / "weights.safetensors").is_file() and (folder / "card.json").is_file()
    fetched = models.fetch_pretrained("my-cool-model")
    assert not fetched.training
    assert fetched is not model
    assert _same_outputs(model, fetched, X)
    assert fetched.nitrain_spec == model.nitrain_spec | {"options": {"filters": [4, 8]}}
    assert fetched.nitrain_card["id"] == "local/my-cool-model@1"
    assert models.register_model is models.register_pretrained


@pytest.mark.parametrize("name,dim,size,mode,options", ROUND_TRIPS, ids=ROUND_TRIP_IDS)
def test_round_trip_architectures(home, name, dim, size, mode, options):
    torch.manual_seed(0)
    model = models.fetch_architecture(name, dim)(size, 2, mode, **options).eval()
    models.register_pretrained(model, f"alice/{name}")
    fetched = models.fetch_pretrained(f"alice/{name}")
    x = torch.randn(2, size[0]) if dim is None else torch.randn(2, size[-1], *size[:-1])
    assert _same_outputs(model, fetched, x)


def test_card_contents(home):
    model = _basic()
    card = models.register_pretrained(
        model,
        "lab/brain-age",
        description="toy",
        metrics={"mae": np.float32(3.5), "epochs": np.int64(4)},
        training_data={"dataset": "phantoms", "n": 12},
        spacing=np.array([1.0, 1.0]),
        normalization={"method": "zscore"},
    )
    path = home / "models" / "lab" / "brain-age" / "1"
    on_disk = json.loads((path / "card.json").read_text())
    assert on_disk == card == models.model_card("lab/brain-age")
    assert card["architecture"] == {
        "name": "basic",
        "dim": 2,
        "input_image_size": [16, 16, 1],
        "number_of_outcomes": 2,
        "mode": "classification",
        "options": {"filters": [4, 8]},
    }
    assert card["framework"] == "torch" and card["channels"] == "first"
    assert card["input_shape"] == [1, 16, 16]
    assert card["metrics"] == {"mae": 3.5, "epochs": 4}
    assert card["spacing"] == [1.0, 1.0] and card["normalization"] == {"method": "zscore"}
    assert card["training_data"] == {"dataset": "phantoms", "n": 12}
    assert (
        card["weights"]["sha256"] == hashlib.sha256((path / "weights.safetensors").read_bytes()).hexdigest()
    )
    assert card["nitrain_version"] == nitrain.__version__
    assert card["created"][:4].isdigit() and card["description"] == "toy"


def test_card_reads_without_torch(home):
    models.register_pretrained(_basic(), "owner/m")
    code = (
        "import sys; from nitrain import models; c = models.model_card('owner/m@1'); "
        "assert c['architecture']['name'] == 'basic'; "
        "assert [r['id'] for r in models.list_pretrained() if r['owner'] != 'nitrain'] == ['owner/m@1']; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "NITRAIN_HOME": str(home)})


def test_versions(home):
    a, b = _basic(seed=0), _basic(seed=1)
    assert models.register_pretrained(a, "team/net")["version"] == 1
    assert models.register_pretrained(b, "team/net")["version"] == 2
    assert _same_outputs(b, models.fetch_pretrained("team/net"), X)  # latest
    assert _same_outputs(a, models.fetch_pretrained("team/net@1"), X)
    assert models.register_pretrained(a, "team/net@5")["version"] == 5
    assert models.register_pretrained(b, "team/net")["version"] == 6
    assert models.model_card("team/net")["version"] == 6
    models.register_pretrained(a, "solo")
    ids = _user_ids()
    assert ids == ["local/solo@1", "team/net@1", "team/net@2", "team/net@5", "team/net@6"]
    assert "team/net@6" in repr(models.list_pretrained())


def test_overwrite_rules(home):
    a, b = _basic(seed=0), _basic(seed=1)
    first = models.register_pretrained(a, "net@1")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        models.register_pretrained(b, "net@1")
    assert models.model_card("net@1")["weights"]["sha256"] == first["weights"]["sha256"]
    second = models.register_pretrained(b, "net@1", overwrite=True)
    assert second["weights"]["sha256"] != first["weights"]["sha256"]
    assert _same_outputs(b, models.fetch_pretrained("net@1"), X)
    assert models.register_pretrained(a, "net", overwrite=True)["version"] == 2  # no version: the next one


def test_tampered_weights_are_detected(home):
    models.register_pretrained(_basic(), "net")
    weights = home / "models" / "local" / "net" / "1" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-20] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(models.ChecksumError, match="sha256 mismatch") as e:
        models.fetch_pretrained("net")
    assert str(weights) in str(e.value)
    assert models.model_card("net")["version"] == 1  # the card alone still reads


def test_unknown_names_list_what_exists(home):
    with pytest.raises(models.PretrainedNotFoundError, match="available: none"):
        models.fetch_pretrained("nothing")
    models.register_pretrained(_basic(), "alice/net")
    with pytest.raises(LookupError, match=r"alice/net@1"):
        models.fetch_pretrained("bob/net")
    with pytest.raises(models.PretrainedNotFoundError, match=r"versions of alice/net: \[1\]"):
        models.model_card("alice/net@3")
    with pytest.raises(models.PretrainedNotFoundError):
        models.fetch_pretrained("net")  # owner defaults to 'local'


@pytest.mark.parametrize("bad", ["", "a b", "x/y/z", "@2", "net@0", "net@v1", "../escape", "net/"])
def test_invalid_names(home, bad):
    with pytest.raises(ValueError):
        models.register_pretrained(_basic(), bad)


def test_model_without_spec_is_refused(home):
    plain = torch.nn.Linear(3, 1)
    with pytest.raises(ValueError, match=r"no nitrain_spec.*fetch_architecture"):
        models.register_pretrained(plain, "plain")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        models.register_pretrained(object(), "plain")
    assert _user_ids() == []


def test_unserialisable_metadata_is_refused(home):
    with pytest.raises(ValueError, match="metrics must be JSON"):
        models.register_pretrained(_basic(), "net", metrics={"f": object()})
    assert _user_ids() == []


def test_default_home(tmp_path, monkeypatch):
    monkeypatch.delenv("NITRAIN_HOME", raising=False)
    monkeypatch.delenv("NITRAIN_REGISTRY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    models.register_pretrained(_basic(), "net")
    assert (tmp_path / ".nitrain" / "models" / "local" / "net" / "1" / "card.json").is_file()


def test_fsspec_memory_registry(home, monkeypatch):
    fsspec = pytest.importorskip("fsspec")
    root = f"memory://nitrain-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("NITRAIN_REGISTRY", root)
    fs = fsspec.filesystem("memory")
    try:
        a, b = _basic(seed=0), _basic(seed=1)
        models.register_pretrained(a, "cloud/net")
        models.register_pretrained(b, "cloud/net")
        assert _user_ids() == ["cloud/net@1", "cloud/net@2"]
        assert not (home / "models").exists()  # NITRAIN_REGISTRY wins over NITRAIN_HOME
        assert _same_outputs(a, models.fetch_pretrained("cloud/net@1"), X)
        assert _same_outputs(b, models.fetch_pretrained("cloud/net"), X)
        assert models.model_card("cloud/net")["version"] == 2
        with pytest.raises(FileExistsError):
            models.register_pretrained(a, "cloud/net@2")
        path = f"{root.removeprefix('memory://')}/cloud/net/1/weights.safetensors"
        with fs.open(path, "rb") as f:
            data = bytearray(f.read())
        data[-20] ^= 0xFF
        with fs.open(path, "wb") as f:
            f.write(bytes(data))
        with pytest.raises(models.ChecksumError, match="weights.safetensors"):
            models.fetch_pretrained("cloud/net@1")
    finally:
        fs.rm(root.removeprefix("memory://"), recursive=True)
