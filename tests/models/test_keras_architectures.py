"""The keras 3 model zoo: every architecture and mode builds, runs and matches its torch twin."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from nitrain import models

from ._helpers import CASE_IDS, CASES, SMALL

keras = pytest.importorskip("keras")

DEFAULT_MODE = {row["name"]: row["default_mode"] for row in models.list_architectures()}


def _keras(name, dim, *args, **kwargs):
    return models.fetch_architecture(name, dim, framework="keras")(*args, **kwargs)


def _input(size, dim, batch=2, seed=0):
    """Channels-last, as keras models take it."""
    shape = (batch, size[0]) if dim is None else (batch, *size)
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_every_architecture_has_a_small_case_and_both_frameworks():
    table = models.list_architectures()
    assert {row["name"]: set(row["dims"]) for row in table} == {n: set(d) for n, d in SMALL.items()}
    assert all(row["frameworks"] == ("torch", "keras") for row in table)
    assert "torch,keras" in repr(table)


def _torch_twin(name, dim, size, outcomes, mode, options, x):
    """The torch model of the same name: its output on ``x`` (moved to channels first) and its size."""
    torch = pytest.importorskip("torch")
    model = models.fetch_architecture(name, dim, framework="torch")(size, outcomes, mode, **options).eval()
    with torch.no_grad():
        y = model(torch.from_numpy(x if dim is None else np.moveaxis(x, -1, 1).copy())).numpy()
    return y, sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,dim,mode", CASES, ids=CASE_IDS)
def test_forward_shapes(name, dim, mode):
    """Every (name, dim, mode) runs; in the default mode, output shape and parameter count are those
    of the torch model of the same name."""
    size, options = SMALL[name][dim]
    model = _keras(name, dim, size, number_of_outcomes=3, mode=mode, **options)
    assert isinstance(model, keras.Model)
    x = _input(size, dim)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    if name == "unet":
        assert y.shape == (2, *size[:-1], 3)  # channels last
    elif name in ("autoencoder", "conv_autoencoder"):
        assert y.shape == x.shape
    else:
        assert y.shape == (2, 3)
    assert np.isfinite(y).all()
    if mode == "sigmoid":
        assert ((y >= 0) & (y <= 1)).all()
    last = model.layers[-1]
    if isinstance(last, keras.Model):  # the autoencoders end in their decoder
        last = last.layers[-1]
    assert last.activation.__name__ == ("sigmoid" if mode == "sigmoid" else "linear")  # logits: no softmax
    spec = model.nitrain_spec
    assert type(spec) is dict  # a plain dict: keras does not track (or wrap) it
    assert spec == {
        "name": name,
        "dim": dim,
        "input_image_size": tuple(size),
        "number_of_outcomes": 3,
        "mode": mode,
        "options": options,
        "framework": "keras",
        "channels": "last",
    }
    if mode == DEFAULT_MODE[name]:
        y_torch, n_torch = _torch_twin(name, dim, size, 3, mode, options, x)
        if name in ("unet", "conv_autoencoder"):  # voxel-wise outputs: channels first in torch
            y_torch = np.moveaxis(y_torch, 1, -1)
        assert y.shape == y_torch.shape
        assert _trainable(model) == n_torch


@pytest.mark.parametrize(
    "name,dim,size,options",
    [
        ("basic", 2, (16, 16, 3), {"norm": "group", "filters": (8, 12)}),
        ("basic", 3, (8, 8, 8, 1), {"norm": "instance", "filters": (4, 6)}),
        ("basic", 2, (16, 16, 1), {"norm": None, "dropout": 0.2}),
        ("resnet", 2, (32, 32, 1), {"depth": 50, "base_filters": 2}),
        ("vgg", 2, (32, 32, 1), {"base_filters": 2, "batch_norm_layers": False, "pool_size": 2}),
        ("alexnet", 2, (40, 40, 1), {"filters": (4, 4, 4, 4, 4), "dense_units": 8}),  # default pool 6
        ("unet", 2, (20, 20, 1), {"filters": (4, 8), "batch_norm_layers": False, "dropout": 0.1}),
        ("vit", 2, (16, 16, 1), {"patch_size": 4, "embed_dim": 8, "heads": 2, "mlp_dim": 12, "depth": 2}),
        ("autoencoder", None, (20, 6, 3), {"activation": "gelu"}),
    ],
)
def test_option_variants_match_torch_parameter_counts(name, dim, size, options):
    pytest.importorskip("torch")
    k = _keras(name, dim, size, 2, **options)
    t = models.fetch_architecture(name, dim, framework="torch")(size, 2, **options)
    assert _trainable(k) == sum(p.numel() for p in t.parameters())
    assert k(_input(size, dim), training=False).shape[0] == 2


BAD = [
    ("basic", 3, ((32, 32, 1),), {}),
    ("basic", 2, ((32.5, 32, 1),), {}),
    ("basic", 2, ((32, 32, 1),), {"widths": (4,)}),
    ("basic", 2, ((32, 32, 1), 0), {}),
    ("basic", 2, ((32, 32, 1),), {"norm": "layer"}),
    ("basic", 2, ((4, 4, 1),), {}),
    ("resnet", 2, ((32, 32, 1),), {"depth": 20}),
    ("vgg", 3, ((16, 32, 32, 1),), {}),
    ("alexnet", 2, ((32, 32, 1),), {"filters": (4, 4)}),
    ("densenet", 2, ((32, 32, 1),), {"compression": 0}),
    ("unet", 2, ((32, 32, 1), 2, "classification"), {}),
    ("unet", 2, ((32, 32, 1),), {"filters": (4,)}),
    ("vit", 2, ((36, 32, 1),), {"patch_size": 8}),
    ("vit", 2, ((32, 32, 1),), {"embed_dim": 30, "heads": 4}),
    ("vit", 3, ((32, 32, 32, 1),), {"patch_size": (8, 8)}),
    ("autoencoder", None, ((16, 4),), {"activation": "swish"}),
    ("autoencoder", None, ((16, 4), 1, "classification"), {}),
    ("conv_autoencoder", 2, ((2, 8, 1),), {}),
    ("conv_autoencoder", 2, ((8, 8, 1),), {"latent_dim": 0}),
]


@pytest.mark.parametrize("name,dim,args,options", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_errors_are_the_torch_errors(name, dim, args, options):
    pytest.importorskip("torch")
    errors = []
    for fw in ("torch", "keras"):
        with pytest.raises((ValueError, TypeError)) as e:
            models.fetch_architecture(name, dim, framework=fw)(*args, **options)
        errors.append((type(e.value), str(e.value)))
    assert errors[0] == errors[1]
    assert name in errors[1][1]


def test_unknown_names_and_dims_list_valid_ones():
    with pytest.raises(ValueError) as e:
        models.fetch_architecture("lenet", dim=2, framework="keras")
    for name in SMALL:
        assert repr(name) in str(e.value)
    with pytest.raises(ValueError, match=r"valid: dim=2, dim=3"):
        models.fetch_architecture("vit", dim=1, framework="keras")
    with pytest.raises(ValueError, match=r"valid: dim=None"):
        models.fetch_architecture("autoencoder", dim=3, framework="tf")


def test_default_framework_from_env(monkeypatch):
    monkeypatch.setenv("NITRAIN_FRAMEWORK", "tensorflow")
    model = models.fetch_architecture("basic", dim=2)((16, 16, 1), 2, filters=(4,))
    assert isinstance(model, keras.Model)
    assert model.nitrain_spec["framework"] == "keras"
    monkeypatch.delenv("NITRAIN_FRAMEWORK")
    assert models.fetch_architecture("basic", dim=2).framework == "torch"  # torch is installed here


def test_default_without_torch_and_missing_keras():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # `import torch` fails as if torch were not installed
        "from nitrain import models\n"
        "assert models.fetch_architecture('basic', dim=2).framework == 'keras'\n"
        "sys.modules['keras'] = None\n"
        "try:\n"
        "    models.fetch_architecture('basic', dim=2, framework='keras')((16, 16, 1))\n"
        "except models.FrameworkNotAvailableError as e:\n"
        "    assert \"pip install 'nitrain[tensorflow]'\" in str(e), e\n"
        "else:\n"
        "    raise SystemExit('built a keras model without keras')\n"
        "assert models.fetch_architecture('basic', dim=2).framework == 'torch'  # neither: torch's hint\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NITRAIN_FRAMEWORK"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_channels_first_input_is_refused():
    model = _keras("basic", 2, (32, 32, 3), filters=(4,))
    with pytest.raises(ValueError, match=r"shape"):
        model(np.zeros((2, 3, 32, 32), "float32"))


def test_autoencoder_halves():
    size, options = SMALL["conv_autoencoder"][3]
    model = _keras("conv_autoencoder", 3, size, **options)
    z = model.encoder(_input(size, 3))
    assert tuple(z.shape) == (2, 4)
    assert tuple(model.decoder(z).shape) == (2, 16, 16, 16, 1)
    assert model.get_layer("encoder") is model.encoder
    dense = _keras("autoencoder", None, (784, 500, 500, 2000, 10), mode="sigmoid")
    x = np.random.default_rng(0).random((4, 784), dtype="float32")
    assert tuple(dense.encoder(x).shape) == (4, 10)
    y = keras.ops.convert_to_numpy(dense(x))
    assert y.shape == (4, 784) and y.min() >= 0 and y.max() <= 1
    assert len(dense.weights) == 16  # 8 dense layers, each counted once despite model.encoder/decoder


def test_trains():
    size, options = SMALL["unet"][3]
    model = _keras("unet", 3, size, 2, **options)
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True
    )
    x = _input(size, 3, batch=2)
    y = (x[..., 0] > 0).astype("int32")
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert model.nitrain_spec["channels"] == "last"  # the spec survives compile and fit


def test_torch_backend():
    pytest.importorskip("torch")
    code = (
        "import numpy as np, keras\n"
        "assert keras.backend.backend() == 'torch'\n"
        "from nitrain import models\n"
        "from nitrain._frameworks import framework_of\n"
        "m = models.fetch_architecture('unet', 3, framework='keras')((16, 16, 8, 1), 2, filters=(4, 8))\n"
        "y = keras.ops.convert_to_numpy(m(np.ones((2, 16, 16, 8, 1), 'float32'), training=False))\n"
        "assert y.shape == (2, 16, 16, 8, 2) and np.isfinite(y).all(), y.shape\n"
        "assert framework_of(m) == 'keras' and m.nitrain_spec['framework'] == 'keras'\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
