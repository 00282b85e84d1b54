import os
import subprocess
import sys

import pytest

from nitrain import models

from ._helpers import CASE_IDS, CASES, SMALL

torch = pytest.importorskip("torch")


def _input(size, dim, batch=2):
    if dim is None:
        return torch.randn(batch, size[0])
    return torch.randn(batch, size[-1], *size[:-1])  # channels-first


def test_every_architecture_has_a_small_case():
    table = {row["name"]: set(row["dims"]) for row in models.list_architectures()}
    assert table == {name: set(d) for name, d in SMALL.items()}


@pytest.mark.parametrize("name,dim,mode", CASES, ids=CASE_IDS)
def test_forward_shapes(name, dim, mode):
    size, options = SMALL[name][dim]
    model = models.fetch_architecture(name, dim=dim)(size, number_of_outcomes=3, mode=mode, **options)
    assert isinstance(model, torch.nn.Module)
    x = _input(size, dim)
    model.eval()
    with torch.no_grad():
        y = model(x)
    if name == "unet":
        assert y.shape == (2, 3, *size[:-1])
    elif name in ("autoencoder", "conv_autoencoder"):
        assert y.shape == x.shape
    else:
        assert y.shape == (2, 3)
    assert torch.isfinite(y).all()
    if mode == "sigmoid":
        assert ((y >= 0) & (y <= 1)).all()
    spec = model.nitrain_spec
    assert spec == {
        "name": name,
        "dim": dim,
        "input_image_size": tuple(size),
        "number_of_outcomes": 3,
        "mode": mode,
        "options": options,
        "framework": "torch",
        "channels": "first",
    }


@pytest.mark.parametrize("name", ["basic", "unet", "vit"])
def test_default_mode_and_backward(name):
    size, options = SMALL[name][2]
    model = models.fetch_architecture(name, dim=2)(size, 2, **options)
    assert model.nitrain_spec["mode"] == ("segmentation" if name == "unet" else "classification")
    y = model(_input(size, 2))
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_rebuild_from_spec_has_same_parameters():
    size, options = SMALL["densenet"][3]
    a = models.fetch_architecture("densenet", 3)(size, 2, "regression", **options)
    s = a.nitrain_spec
    b = models.fetch_architecture(s["name"], s["dim"])(
        s["input_image_size"], s["number_of_outcomes"], s["mode"], **s["options"]
    )
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    b.load_state_dict(a.state_dict())


# ------------------------------------------------------------------ the README snippets


def test_readme_alexnet_regression():
    arch_fn = models.fetch_architecture("alexnet", dim=2)
    model = arch_fn(input_image_size=(64, 64, 1), number_of_outcomes=1, mode="regression")
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 1)


def test_readme_vgg_3d_builds_at_128():
    vgg_model = models.fetch_architecture("vgg", dim=3)((128, 128, 128, 1))
    assert vgg_model.nitrain_spec["input_image_size"] == (128, 128, 128, 1)
    assert vgg_model.nitrain_spec["mode"] == "classification"
    # the forward pass at 128^3 is too slow for the test suite: the same architecture, small, instead
    small = models.fetch_architecture("vgg", dim=3)((32, 32, 32, 1), base_filters=2, dense_units=8)
    assert small.eval()(torch.randn(1, 1, 32, 32, 32)).shape == (1, 1)


def test_readme_dense_autoencoder():
    autoencoder_model = models.fetch_architecture("autoencoder")((784, 500, 500, 2000, 10))
    x = torch.rand(4, 784)
    assert autoencoder_model(x).shape == (4, 784)
    assert autoencoder_model.encode(x).shape == (4, 10)
    assert autoencoder_model(x.reshape(4, 28, 28)).shape == (4, 784)  # trailing axes are flattened
    assert autoencoder_model.nitrain_spec["dim"] is None


def test_conv_autoencoder_code():
    size, options = SMALL["conv_autoencoder"][3]
    model = models.fetch_architecture("conv_autoencoder", 3)(size, **options)
    z = model.encode(_input(size, 3))
    assert z.shape == (2, 4)
    assert model.decode(z).shape == (2, 1, 16, 16, 16)


# ------------------------------------------------------------------ table and errors


def test_list_and_fetch_agree_exactly():
    table = models.list_architectures()
    assert len({row["name"] for row in table}) == len(table)
    for row in table:
        assert row["frameworks"] == ("torch", "keras")
        for dim in row["dims"]:
            assert callable(models.fetch_architecture(row["name"], dim=dim))
        for dim in (None, 1, 2, 3, 4):
            if dim not in row["dims"]:
                with pytest.raises(ValueError, match="does not support dim"):
                    models.fetch_architecture(row["name"], dim=dim)
    text = repr(table)
    assert all(row["name"] in text for row in table)


def test_unknown_name_lists_names():
    with pytest.raises(ValueError) as e:
        models.fetch_architecture("lenet", dim=2)
    for row in models.list_architectures():
        assert repr(row["name"]) in str(e.value)


def test_unsupported_dim_lists_dims():
    with pytest.raises(ValueError, match=r"dim=2, dim=3"):
        models.fetch_architecture("resnet", dim=4)
    with pytest.raises(ValueError, match=r"valid: dim=None"):
        models.fetch_architecture("autoencoder", dim=2)
    with pytest.raises(ValueError, match=r"dim=2, dim=3"):
        models.fetch_architecture("alexnet")


def test_framework_names():
    for fw in ("keras", "tensorflow", "tf", "Keras"):
        assert models.fetch_architecture("alexnet", dim=2, framework=fw).framework == "keras"
    assert models.fetch_architecture("alexnet", dim=2, framework="torch").framework == "torch"
    with pytest.raises(ValueError, match=r"unknown framework 'jax'.*\['torch', 'keras'\]"):
        models.fetch_architecture("alexnet", dim=2, framework="jax")


def test_framework_env(monkeypatch):
    monkeypatch.setenv("NITRAIN_FRAMEWORK", "keras")
    assert models.fetch_architecture("basic", dim=2).framework == "keras"
    assert models.fetch_architecture("basic", dim=2, framework="torch").framework == "torch"
    monkeypatch.setenv("NITRAIN_FRAMEWORK", "torch")
    assert models.fetch_architecture("basic", dim=2).framework == "torch"
    monkeypatch.setenv("NITRAIN_FRAMEWORK", "caffe")
    with pytest.raises(ValueError, match="unknown NITRAIN_FRAMEWORK 'caffe'"):
        models.fetch_architecture("basic", dim=2)


@pytest.mark.parametrize("name", ["alexnet", "vgg", "resnet", "densenet", "basic", "vit"])
def test_classifiers_reject_segmentation(name):
    with pytest.raises(ValueError, match="unet"):
        models.fetch_architecture(name, dim=2)((64, 64, 1), 2, mode="segmentation")


def test_bad_modes():
    with pytest.raises(ValueError, match="segmentation"):
        models.fetch_architecture("unet", dim=2)((32, 32, 1), 2, mode="classification")
    with pytest.raises(ValueError, match="mode must be one of"):
        models.fetch_architecture("basic", dim=2)((32, 32, 1), 2, mode="softmax")
    with pytest.raises(ValueError, match="mode must be one of"):
        models.fetch_architecture("autoencoder")((16, 4), mode="classification")


@pytest.mark.parametrize(
    "name,dim,size,options,minimum",
    [
        ("alexnet", 2, (12, 64, 1), {}, 16),
        ("vgg", 3, (16, 32, 32, 1), {}, 32),
        ("resnet", 2, (31, 31, 1), {}, 32),
        ("densenet", 2, (16, 16, 1), {}, 32),
        ("densenet", 2, (4, 16, 1), {"block_config": (2, 2)}, 8),
        ("unet", 3, (16, 16, 4, 1), {}, 8),
        ("basic", 2, (4, 4, 1), {}, 8),
        ("conv_autoencoder", 2, (2, 8, 1), {}, 4),
    ],
)
def test_too_small_inputs(name, dim, size, options, minimum):
    with pytest.raises(ValueError, match=rf"too small.*>= {minimum}"):
        models.fetch_architecture(name, dim=dim)(size, **options)


def test_vit_patch_divisibility():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        models.fetch_architecture("vit", dim=2)((36, 32, 1), patch_size=8)
    with pytest.raises(ValueError, match="heads"):
        models.fetch_architecture("vit", dim=2)((32, 32, 1), embed_dim=30, heads=4)


def test_bad_sizes_and_options():
    with pytest.raises(ValueError, match="channels last"):
        models.fetch_architecture("basic", dim=3)((32, 32, 1))
    with pytest.raises(ValueError, match="integers"):
        models.fetch_architecture("basic", dim=2)((32.5, 32, 1))
    with pytest.raises(TypeError, match="valid options"):
        models.fetch_architecture("basic", dim=2)((32, 32, 1), widths=(4,))
    with pytest.raises(ValueError, match="number_of_outcomes"):
        models.fetch_architecture("basic", dim=2)((32, 32, 1), 0)
    with pytest.raises(ValueError, match="depth"):
        models.fetch_architecture("resnet", dim=2)((32, 32, 1), depth=20)


def test_channels_last_tensor_is_refused():
    model = models.fetch_architecture("basic", dim=2)((32, 32, 3), filters=(4,))
    with pytest.raises(ValueError, match="channels-first"):
        model(torch.randn(2, 32, 32, 3))


def test_import_does_not_import_torch():
    code = (
        "import sys; from nitrain import models; models.list_architectures(); "
        "models.fetch_architecture('vgg', dim=3); assert 'torch' not in sys.modules, 'torch imported'"
    )
    env = {k: v for k, v in os.environ.items() if k != "NITRAIN_FRAMEWORK"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_without_torch_installed():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # makes `import torch` fail as if it were not installed
        "from nitrain import models\n"
        "fn = models.fetch_architecture('basic', dim=2, framework='torch')\n"
        "try:\n"
        "    fn((32, 32, 1))\n"
        "except ImportError as e:\n"
        "    assert 'pip install nitrain[torch]' in str(e), e\n"
        "    assert isinstance(e, models.FrameworkNotAvailableError), e\n"
        "else:\n"
        "    raise SystemExit('built a model without torch')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
