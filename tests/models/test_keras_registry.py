"""The pretrained registry with keras models: weights as a keras ``.weights.h5`` file (models built by
``fetch_architecture``) or a whole ``.keras`` file (any other keras model), sha256-checked on load."""

import hashlib
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

import nitrain
from nitrain import models

from ._helpers import ROUND_TRIP_IDS, ROUND_TRIPS

keras = pytest.importorskip("keras")

X = np.random.default_rng(1).standard_normal((3, 16, 16, 1)).astype("float32")


def _basic(seed=0):
    keras.utils.set_random_seed(seed)
    model = models.fetch_architecture("basic", dim=2, framework="keras")((16, 16, 1), 2, filters=(4, 8))
    model(X, training=True)  # updates the batch-norm moving statistics away from their defaults
    return model


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _same_outputs(a, b, x=X):
    return np.array_equal(_predict(a, x), _predict(b, x))


def test_round_trip_and_card(home):
    model = _basic()
    moving = [w for w in model.non_trainable_weights if "moving_mean" in w.path]
    assert moving and any(np.abs(keras.ops.convert_to_numpy(w)).sum() > 0 for w in moving)
    card = models.register_pretrained(model, "lab/keras-net", metrics={"acc": np.float32(0.5)})
    folder = home / "models" / "lab" / "keras-net" / "1"
    weights = folder / "weights.weights.h5"
    assert weights.is_file() and (folder / "card.json").is_file()
    assert weights.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # HDF5, not a pickle
    assert json.loads((folder / "card.json").read_text()) == card == models.model_card("lab/keras-net")
    assert card["framework"] == "keras" and card["channels"] == "last"
    assert card["input_shape"] == [16, 16, 1]
    assert card["architecture"] == {
        "name": "basic",
        "dim": 2,
        "input_image_size": [16, 16, 1],
        "number_of_outcomes": 2,
        "mode": "classification",
        "options": {"filters": [4, 8]},
    }
    assert card["weights"]["file"] == "weights.weights.h5"
    assert card["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert card["weights"]["bytes"] == weights.stat().st_size
    assert card["keras_version"] == keras.__version__
    assert card["keras_backend"] == keras.backend.backend()
    assert card["nitrain_version"] == nitrain.__version__ and "torch_version" not in card
    assert card["metrics"] == {"acc": 0.5}

    fetched = models.fetch_pretrained("lab/keras-net")
    assert isinstance(fetched, keras.Model) and fetched is not model
    assert _same_outputs(model, fetched)
    assert fetched.nitrain_spec == model.nitrain_spec | {"options": {"filters": [4, 8]}}
    assert fetched.nitrain_card["id"] == "lab/keras-net@1"
    ids = [r["id"] for r in models.list_pretrained() if r["owner"] != "nitrain"]
    assert ids == ["lab/keras-net@1"]


def test_versions_and_overwrite(home):
    a, b = _basic(seed=0), _basic(seed=1)
    assert not _same_outputs(a, b)
    models.register_pretrained(a, "net")
    models.register_pretrained(b, "net")
    assert _same_outputs(a, models.fetch_pretrained("net@1"))
    assert _same_outputs(b, models.fetch_pretrained("net"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        models.register_pretrained(a, "net@2")
    models.register_pretrained(a, "net@2", overwrite=True)
    assert _same_outputs(a, models.fetch_pretrained("net@2"))


@pytest.mark.parametrize("name,dim,size,mode,options", ROUND_TRIPS, ids=ROUND_TRIP_IDS)
def test_round_trip_architectures(home, name, dim, size, mode, options):
    keras.utils.set_random_seed(0)
    model = models.fetch_architecture(name, dim, framework="keras")(size, 2, mode, **options)
    models.register_pretrained(model, f"alice/{name}")
    keras.utils.set_random_seed(1)  # the rebuilt model starts from other weights: loading must replace them
    fetched = models.fetch_pretrained(f"alice/{name}")
    x = np.random.default_rng(2).random((2, size[0]) if dim is None else (2, *size), dtype="float32")
    assert _same_outputs(model, fetched, x)


def _tamper(path, how):
    data = path.read_bytes()
    if how == "flip":
        b = bytearray(data)
        b[len(b) // 2] ^= 0xFF
        path.write_bytes(bytes(b))
    else:
        path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_tampered_weights_are_detected(home, how):
    models.register_pretrained(_basic(), "net")
    weights = home / "models" / "local" / "net" / "1" / "weights.weights.h5"
    _tamper(weights, how)
    with pytest.raises(models.ChecksumError, match="sha256 mismatch") as e:
        models.fetch_pretrained("net")
    assert str(weights) in str(e.value)


def _plain_model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(3, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x), name="plain")


def test_keras_model_without_spec_is_stored_whole(home):
    model = _plain_model()
    assert getattr(model, "nitrain_spec", None) is None
    card = models.register_pretrained(model, "plain", description="hand-built")
    folder = home / "models" / "local" / "plain" / "1"
    assert card["weights"]["file"] == "model.keras" and (folder / "model.keras").is_file()
    assert card["architecture"] is None and card["framework"] == "keras"
    assert card["input_shape"] == [16, 16, 1]
    fetched = models.fetch_pretrained("plain")
    assert _same_outputs(model, fetched)
    assert fetched.nitrain_card["id"] == "local/plain@1"
    row = next(r for r in models.list_pretrained() if r["id"] == "local/plain@1")
    assert row["architecture"] == "(keras model)" and row["dim"] is None
    _tamper(folder / "model.keras", "flip")
    with pytest.raises(models.ChecksumError, match="model.keras"):
        models.fetch_pretrained("plain")


def test_registered_vit_loads_whole(home):
    """A fetch_architecture model saved whole by the user (no registry) loads with safe_mode: nitrain's
    custom layers are keras-serializable."""
    model = models.fetch_architecture("vit", 2, framework="keras")(
        (16, 16, 1), 2, patch_size=8, embed_dim=8, depth=1, heads=2
    )
    path = home / "vit.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert _same_outputs(model, loaded)


def test_not_a_model_is_refused(home):
    with pytest.raises(TypeError, match="keras Model"):
        models.register_pretrained(object(), "x")
    model = _basic()
    object.__setattr__(model, "nitrain_spec", {**model.nitrain_spec, "framework": "torch"})
    with pytest.raises(ValueError, match="framework='keras'"):
        models.register_pretrained(model, "x")
    assert [r for r in models.list_pretrained() if r["owner"] != "nitrain"] == []


def test_card_reads_without_keras(home):
    models.register_pretrained(_basic(), "owner/m")
    code = (
        "import sys; from nitrain import models; c = models.model_card('owner/m'); "
        "assert c['framework'] == 'keras' and c['architecture']['name'] == 'basic'; "
        "assert [r['id'] for r in models.list_pretrained() if r['owner'] != 'nitrain'] == ['owner/m@1']; "
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'keras imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "NITRAIN_HOME": str(home)})
