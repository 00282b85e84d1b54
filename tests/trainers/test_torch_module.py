import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ants = pytest.importorskip("ants")

import nitrain.torch as nt  # noqa: E402
from nitrain import trainers, utils  # noqa: E402

from ._helpers import make_loader, regression_dataset, same_weights, small_conv, weights  # noqa: E402


def test_torch_trainer_is_the_model_trainer():
    assert issubclass(nt.TorchTrainer, trainers.ModelTrainer)
    h = nt.TorchTrainer(small_conv(), "mse", verbose=0).fit(make_loader(regression_dataset(16)), epochs=2)
    assert len(h["loss"]) == 2
    with pytest.raises(TypeError, match="TorchTrainer: only torch"):
        nt.TorchTrainer(object(), "mse")


def test_checkpoint_round_trip(tmp_path):
    model = small_conv()
    opt = torch.optim.Adam(model.parameters())
    model(torch.zeros(2, 1, 8, 8)).sum().backward()
    opt.step()
    path = nt.save_checkpoint(tmp_path / "sub" / "c.pt", model, opt, epoch=4, note="hi")
    other = small_conv(seed=3)
    other_opt = torch.optim.Adam(other.parameters())
    state = nt.load_checkpoint(path, other, other_opt)
    assert state["epoch"] == 4 and state["note"] == "hi"
    assert same_weights(weights(model), weights(other))
    assert other_opt.state_dict()["state"][0]["step"] == 1
    torch.save({"x": 1}, tmp_path / "not.pt")
    with pytest.raises(ValueError, match="not a nitrain checkpoint"):
        nt.load_checkpoint(tmp_path / "not.pt")
    with pytest.raises(FileNotFoundError):
        nt.load_checkpoint(tmp_path / "missing.pt")


def test_to_tensor_loader():
    loader = make_loader(regression_dataset(8), batch_size=4)
    x, y = next(iter(nt.to_tensor_loader(loader)))
    assert isinstance(x, torch.Tensor) and x.shape == (4, 1, 8, 8) and y.shape == (4,)  # channels-first
    plain = [(np.zeros((2, 3), np.float32), np.ones(2, np.float32))]
    wrapped = nt.to_tensor_loader(plain)
    assert len(wrapped) == 1
    x, y = next(iter(wrapped))
    assert isinstance(x, torch.Tensor) and x.shape == (2, 3)


def test_prediction_to_image_keeps_the_reference_geometry():
    ref = ants.from_numpy(
        np.zeros((6, 7, 5), np.float32),
        origin=(1.0, 2.0, 3.0),
        spacing=(0.5, 1.5, 2.0),
        direction=np.diag([-1.0, 1.0, 1.0]),
    )
    pred = np.random.default_rng(0).normal(size=(6, 7, 5)).astype(np.float32)
    for arr in (pred, pred[None, None], torch.from_numpy(pred)[None]):
        img = nt.prediction_to_image(arr, ref)
        assert img.shape == ref.shape and img.spacing == ref.spacing and img.origin == ref.origin
        np.testing.assert_array_equal(img.direction, ref.direction)
        np.testing.assert_allclose(img.numpy(), pred)
    multi = nt.prediction_to_image(np.stack([pred, 2 * pred])[None], ref)  # (1, C, *shape) torch layout
    assert multi.components == 2 and multi.shape == ref.shape
    np.testing.assert_allclose(multi.numpy()[..., 1], 2 * pred)
    with pytest.raises(ValueError, match="does not match"):
        nt.prediction_to_image(np.zeros((3, 3)), ref)


def test_prediction_to_image_from_a_trained_segmenter():
    class Seg(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(1, 1, 1)

        def forward(self, x):
            return self.conv(x)

    ref = ants.from_numpy(
        np.random.default_rng(1).normal(size=(6, 6, 4)).astype(np.float32), spacing=(2, 2, 3)
    )
    from nitrain import datasets

    ds = datasets.MemoryDataset([ref], [ref])
    trainer = trainers.ModelTrainer(Seg(), "mse", verbose=0, callbacks=[utils.EarlyStopping(patience=2)])
    pred = trainer.predict(ds)
    assert pred.shape == (1, 1, 6, 6, 4)
    img = nt.prediction_to_image(pred[0], ref)
    assert img.shape == ref.shape and img.spacing == ref.spacing


def test_import_without_torch_says_how_to_install():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "try:\n"
        "    import nitrain.torch\n"
        "except ImportError as e:\n"
        "    assert \"pip install 'nitrain[torch]'\" in str(e), str(e)\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
        "import nitrain.trainers, nitrain.utils\n"
        "from nitrain.trainers import ModelTrainer\n"
        "try:\n"
        "    ModelTrainer(object(), 'mse')\n"
        "except ImportError as e:\n"
        "    assert 'nitrain[torch]' in str(e)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
