"""Sliding-window inference: whole volumes predicted block by block and blended back, in the input's
space, on torch and keras."""

import ants
import numpy as np
import pytest

from nitrain.inference import blend_window, sliding_window

torch = pytest.importorskip("torch")


def _image(shape, seed=0, spacing=None):
    rng = np.random.default_rng(seed)
    img = ants.from_numpy(rng.normal(size=shape).astype(np.float32))
    if spacing is not None:
        img.set_spacing(spacing)
        img.set_origin(tuple(float(10 + i) for i in range(len(shape))))
    return img


def _pointwise_torch(in_channels=1):
    """A 1x1x1 convolution: out = [x0 + x1.., -(x0 + x1..)], one output per voxel, known exactly."""
    conv = torch.nn.Conv3d(in_channels, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, :] = 1.0
        conv.weight[1, :] = -1.0
    return conv


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
def test_a_pointwise_model_gives_its_own_output_at_every_voxel(blend):
    img = _image((37, 30, 21), spacing=(1.5, 1.0, 2.0))
    logits = sliding_window(_pointwise_torch(), img, 16, overlap=0.5, blend=blend, output="logits")
    x = img.numpy()
    assert logits.shape == img.shape and logits.components == 2
    got = logits.numpy()
    np.testing.assert_allclose(got[..., 0], x, rtol=1e-5, atol=1e-5)  # blended means of equal values
    np.testing.assert_allclose(got[..., 1], -x, rtol=1e-5, atol=1e-5)
    labels = sliding_window(_pointwise_torch(), img, (16, 12, 8), overlap=0.25, blend=blend)
    np.testing.assert_array_equal(labels.numpy(), (x < 0).astype(np.float32))
    assert labels.spacing == img.spacing and labels.origin == img.origin
    np.testing.assert_array_equal(labels.direction, img.direction)


def test_a_volume_that_fits_in_one_block_equals_one_forward_pass():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 3, 3, padding=1)
    )
    img = _image((12, 10, 8), seed=3)
    with torch.no_grad():
        direct = net(torch.from_numpy(img.numpy()[None, None])).numpy()[0]  # (3, 12, 10, 8)
    for blend in ("gaussian", "constant"):
        logits = sliding_window(net, img, (12, 10, 8), blend=blend, output="logits").numpy()
        np.testing.assert_allclose(np.moveaxis(logits, -1, 0), direct, rtol=1e-5, atol=1e-6)
    labels = sliding_window(net, img, (12, 10, 8)).numpy()
    np.testing.assert_array_equal(labels, direct.argmax(0).astype(np.float32))
    probs = sliding_window(net, img, (12, 10, 8), output="probabilities").numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


def test_an_image_smaller_than_a_block_is_padded_and_cropped_back():
    img = _image((10, 9, 7), seed=4)
    out = sliding_window(_pointwise_torch(), img, 16, output="logits")
    assert out.shape == (10, 9, 7)
    np.testing.assert_allclose(out.numpy()[..., 0], img.numpy(), rtol=1e-5, atol=1e-6)


def test_several_inputs_are_stacked_as_channels():
    a, b = _image((20, 18, 16), seed=5), _image((20, 18, 16), seed=6)
    out = sliding_window(_pointwise_torch(2), [a, b], 8, output="logits").numpy()
    np.testing.assert_allclose(out[..., 0], a.numpy() + b.numpy(), rtol=1e-5, atol=1e-5)


def test_a_model_without_per_voxel_outputs_is_refused():
    clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8**3, 2))
    with pytest.raises(ValueError, match="needs one output per voxel"):
        sliding_window(clf, _image((16, 16, 16)), 8)


def test_keras_models_work_channels_last():
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    inp = keras.Input((8, 8, 8, 1))
    conv = keras.layers.Conv3D(2, 1, use_bias=False)
    model = keras.Model(inp, conv(inp))
    conv.set_weights([np.array([1.0, -1.0], np.float32).reshape(1, 1, 1, 1, 2)])
    img = _image((20, 17, 11), seed=7)
    out = sliding_window(model, img, 8, overlap=0.5, output="logits").numpy()
    np.testing.assert_allclose(out[..., 0], img.numpy(), rtol=1e-5, atol=1e-5)


def test_blend_windows():
    w = blend_window((9, 5, 3), "gaussian")
    assert w.shape == (9, 5, 3) and w.max() == pytest.approx(1.0) and w.min() >= 1e-3
    assert w[4, 2, 1] == w.max() and w[0, 0, 0] < w[4, 2, 1]
    assert (blend_window((4, 4), "constant") == 1).all()
    with pytest.raises(ValueError, match="blend must be one of"):
        blend_window((4, 4), "hann")


def test_a_trainer_fit_on_blocks_predicts_whole_volumes_by_sliding_windows():
    from nitrain import datasets, loaders, samplers, trainers

    rng = np.random.default_rng(0)
    vols = [ants.from_numpy(rng.normal(size=(20, 18, 14)).astype(np.float32)) for _ in range(3)]
    labels = [ants.from_numpy((v.numpy() > 0).astype(np.float32)) for v in vols]
    ds = datasets.MemoryDataset(vols, labels)
    ld = loaders.DatasetLoader(ds, 3, sampler=samplers.BlockSampler(8, n_blocks=2, sub_batch_size=6), seed=0)
    trainer = trainers.ModelTrainer(_pointwise_torch(), "cross_entropy", lr=1e-6, verbose=0)
    trainer.fit(ld, epochs=1)
    assert trainer.block_size == 8
    trainer.model.load_state_dict(_pointwise_torch().state_dict())  # the known pointwise map again
    images = trainer.predict(ds)
    assert isinstance(images, list) and len(images) == 3
    for img, v in zip(images, vols, strict=True):
        assert img.shape == v.shape
        np.testing.assert_array_equal(img.numpy(), (v.numpy() < 0).astype(np.float32))  # argmax of [x, -x]
    one = trainer.predict(vols[0], output="probabilities", overlap=0.25)
    assert one.components == 2
    items = trainer.predict(ld)  # a loader is served as it is: one output per block
    assert items.shape == (6, 2, 8, 8, 8)
