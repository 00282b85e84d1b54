import os
import subprocess
import sys
import textwrap

import ants
import numpy as np
import pytest

from nitrain import samplers
from nitrain.explainers import GradientExplainer, OcclusionExplainer
from nitrain.explainers._model import channels_of

from ._helpers import CENTRE, SHAPE, _inside_outside, _sample

try:
    # triton (which torch's optimisers import) aborts the process with an LLVM option clash when it loads
    # after tensorflow; loaded first, both work. Harmless when triton is absent.
    import triton  # noqa: F401
except ImportError:
    pass

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("these tests train on the tensorflow backend of keras", allow_module_level=True)

DIRECTION = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def test_keras_on_the_torch_backend():
    # First in the file, before tensorflow has started its thread pools in this process.
    pytest.importorskip("torch")
    code = textwrap.dedent(
        """
        import ants, keras, numpy as np
        from nitrain.explainers import GradientExplainer, OcclusionExplainer
        assert keras.backend.backend() == "torch"
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6, 7, 1))
        conv = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones")
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(conv(inputs)))
        x = np.random.default_rng(0).normal(size=(6, 7)).astype(np.float32)
        img = ants.from_numpy(x)
        sal = GradientExplainer(model).explain(img).numpy()
        np.testing.assert_allclose(sal, np.full(x.shape, 1 / 42), rtol=1e-5)
        cam = GradientExplainer(model, "gradcam").explain(img).numpy()
        np.testing.assert_allclose(cam, np.maximum(x, 0) / 42, rtol=1e-5, atol=1e-9)
        occ = OcclusionExplainer(model, patch_size=2, baseline=0.0).explain(img).numpy()
        assert occ.shape == x.shape
        print("ok")
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = np.tile([0.0, 1.0], 40).astype(np.float32)
    x = np.stack([_sample(rng, bool(v)) for v in y])[..., None]
    inputs = keras.Input((*SHAPE, 1))
    h = keras.layers.Conv3D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.Conv3D(8, 3, padding="same", activation="relu", name="last_conv")(h)
    h = keras.layers.GlobalMaxPooling3D()(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=20, verbose=0, shuffle=False)
    acc = float(((model.predict_on_batch(x)[:, 0] > 0) == (y > 0)).mean())
    assert acc > 0.95, f"the synthetic task did not train (accuracy {acc})"
    image = ants.from_numpy(
        _sample(np.random.default_rng(99), True),
        spacing=(2.0, 1.5, 1.0),
        origin=(3.0, 4.0, 5.0),
        direction=DIRECTION,
    )
    return model, image


def _same_space(out, image):
    assert out.shape == image.shape
    assert out.spacing == image.spacing and out.origin == image.origin
    np.testing.assert_array_equal(out.direction, image.direction)


def test_keras_models_take_channels_last():
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    assert channels_of(model, "auto") == "last"
    model.nitrain_spec = {"channels": "first"}
    assert channels_of(model, "auto") == "first"
    assert channels_of(model, "last") == "last"


def test_occlusion_map_peaks_on_the_deciding_region(trained):
    model, image = trained
    out = OcclusionExplainer(model, patch_size=6, stride=2, baseline="zero", batch_size=32).explain(image)
    _same_space(out, image)
    arr = out.numpy()
    peak = np.array(np.unravel_index(np.argmax(arr), arr.shape))
    assert np.linalg.norm(peak - CENTRE) <= 4
    inside, outside = _inside_outside(arr)
    assert inside > 3 * max(outside, 1e-6)


@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "integrated_gradients", "gradcam"])
def test_gradient_maps_point_at_the_deciding_region(trained, method):
    model, image = trained
    out = GradientExplainer(model, method=method, n_samples=8, steps=12).explain(image)
    _same_space(out, image)
    arr = out.numpy()
    inside, outside = _inside_outside(np.abs(arr))
    assert inside > 4 * outside, (method, inside, outside)
    if method in ("integrated_gradients", "gradcam"):
        # Raw gradients spread over the max-pooled voxel's receptive field; these two weigh by the input or
        # the activations, so their peak lies in the blob (radius 3).
        peak = np.array(np.unravel_index(np.argmax(np.abs(arr)), arr.shape))
        assert np.linalg.norm(peak - CENTRE) <= 3, (method, peak)


def test_gradcam_defaults_to_the_last_convolution(trained):
    model, image = trained
    default = GradientExplainer(model, method="gradcam")
    assert default.layer is model.get_layer("last_conv")
    by_name = GradientExplainer(model, method="gradcam", layer="last_conv").explain(image).numpy()
    np.testing.assert_allclose(default.explain(image).numpy(), by_name, rtol=1e-6)
    first = GradientExplainer(model, method="gradcam", layer=model.layers[1]).explain(image).numpy()
    assert not np.allclose(first, by_name)


def _linear(shape, outputs=2):
    """A keras model that is linear in its input: every gradient is known exactly."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((*shape, 1)), keras.layers.Flatten(), keras.layers.Dense(outputs)])
    w = model.layers[-1].get_weights()[0]  # (prod(shape), outputs), C order over the channels-last input
    return model, w


def test_gradients_of_a_linear_model_are_its_weights():
    shape = (4, 5, 6)
    model, w = _linear(shape)
    x = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    image = ants.from_numpy(x, spacing=(1.0, 2.0, 3.0))
    for target in (0, 1):
        weights = w[:, target].reshape(shape)
        sal = GradientExplainer(model, target=target).explain(image).numpy()
        np.testing.assert_allclose(sal, np.abs(weights), rtol=1e-5, atol=1e-7)
        smooth = GradientExplainer(model, "smoothgrad", target=target, n_samples=3).explain(image).numpy()
        np.testing.assert_allclose(smooth, np.abs(weights), rtol=1e-5, atol=1e-7)
        ig = GradientExplainer(model, "integrated_gradients", target=target, steps=4, baseline=0.5)
        np.testing.assert_allclose(ig.explain(image).numpy(), (x - 0.5) * weights, rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_seeded_and_noisy():
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input((6, 6, 6, 1)), keras.layers.Conv3D(2, 3, activation="tanh"), keras.layers.Flatten()]
    )
    model.add(keras.layers.Dense(1))
    image = ants.from_numpy(np.random.default_rng(4).normal(size=(6, 6, 6)).astype(np.float32))
    a = GradientExplainer(model, "smoothgrad", n_samples=4, seed=7).explain(image).numpy()
    b = GradientExplainer(model, "smoothgrad", n_samples=4, seed=7, batch_size=3).explain(image).numpy()
    c = GradientExplainer(model, "smoothgrad", n_samples=4, seed=8).explain(image).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert not np.allclose(a, c)


def _square_mean_2d():
    """A 2-D keras model: the mean of the square [4:8, 10:14] of each (16, 20) slice, analytic like the
    callable in the torch tests."""
    inputs = keras.Input((16, 20, 1))
    h = keras.layers.Cropping2D(((4, 8), (10, 6)))(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(h))


def test_slice_wise_keras_2d_model():
    model = _square_mean_2d()
    x = np.random.default_rng(5).uniform(0.5, 1.5, (16, 20, 12)).astype(np.float32)
    img = ants.from_numpy(x, spacing=(1.0, 1.0, 2.5), origin=(1.0, 2.0, 3.0))
    sampler = samplers.SliceSampler(axis=2)

    # Occlusion: the keras model gives exactly the map of the same function as a numpy callable.
    def reference(batch):
        return batch[:, 4:8, 10:14, 0].mean(axis=(1, 2))[:, None]

    kw = dict(patch_size=(2, 2, 4), stride=2, baseline=0.0, sampler=sampler)
    occ = OcclusionExplainer(model, **kw).explain(img)
    _same_space(occ, img)
    np.testing.assert_allclose(
        occ.numpy(), OcclusionExplainer(reference, **kw).explain(img).numpy(), atol=1e-6
    )
    assert occ.numpy()[4:8, 10:14].min() > 0 and np.abs(occ.numpy()[:3]).max() == 0

    # Saliency: 1/16 on the square of every slice, zero elsewhere.
    sal = GradientExplainer(model, sampler=sampler, batch_size=5).explain(img)
    _same_space(sal, img)
    want = np.zeros(x.shape, np.float32)
    want[4:8, 10:14] = 1 / 16
    np.testing.assert_allclose(sal.numpy(), want, atol=1e-7)


def test_gradcam_analytic_and_slice_wise():
    # conv (the identity) -> global average: the gradient wrt the activations is 1/(H W) everywhere, so
    # Grad-CAM is relu(x) / (H W) on each slice. A stride-2 copy exercises the upsampling.
    inputs = keras.Input((16, 20, 1))
    conv = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="identity")
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(conv(inputs)))
    x = np.random.default_rng(6).normal(size=(16, 20, 3)).astype(np.float32)
    img = ants.from_numpy(x)
    cam = GradientExplainer(model, "gradcam", sampler=samplers.SliceSampler(axis=2)).explain(img).numpy()
    np.testing.assert_allclose(cam, np.maximum(x, 0) / (16 * 20), rtol=1e-5, atol=1e-9)

    strided = keras.layers.Conv2D(1, 2, strides=2, use_bias=False, kernel_initializer="ones")
    model2 = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(strided(inputs)))
    cam2 = GradientExplainer(model2, "gradcam", sampler=samplers.SliceSampler(axis=2)).explain(img).numpy()
    assert cam2.shape == x.shape
    coarse = np.maximum(x.reshape(8, 2, 10, 2, 3).sum(axis=(1, 3)), 0) / (8 * 10)  # the strided conv's CAM
    np.testing.assert_allclose(cam2, _upsample2(_upsample2(coarse, 0), 1), rtol=1e-5, atol=1e-9)


def _upsample2(a, axis):
    """x2 linear upsampling with half-voxel centres, written out: out[2j] = c[j-1]/4 + 3c[j]/4 and
    out[2j+1] = 3c[j]/4 + c[j+1]/4, the neighbours clamped at the edges."""
    a = np.moveaxis(a, axis, 0)
    prev, nxt = np.concatenate([a[:1], a[:-1]]), np.concatenate([a[1:], a[-1:]])
    out = np.empty((2 * len(a), *a.shape[1:]), a.dtype)
    out[0::2], out[1::2] = 0.25 * prev + 0.75 * a, 0.75 * a + 0.25 * nxt
    return np.moveaxis(out, 0, axis)


class SubclassedNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv3D(2, 3, padding="same")
        self.pool = keras.layers.GlobalAveragePooling3D()
        self.dense = keras.layers.Dense(1)

    def call(self, x):
        return self.dense(self.pool(self.conv(x)))


def test_subclassed_models():
    keras.utils.set_random_seed(3)
    model = SubclassedNet()
    x = np.random.default_rng(7).normal(size=(5, 5, 5)).astype(np.float32)
    model(x[None, ..., None])
    image = ants.from_numpy(x)
    assert GradientExplainer(model).explain(image).numpy().max() > 0  # input gradients need no graph
    with pytest.raises(ValueError, match="gradcam needs the output of layer .* functional or Sequential"):
        GradientExplainer(model, "gradcam").explain(image)


def test_bad_input_keras(trained):
    model, image = trained
    with pytest.raises(ValueError, match=r"patch_size \(30, 30, 30\) is larger than the image"):
        OcclusionExplainer(model, patch_size=30).explain(image)
    with pytest.raises(ValueError, match="stride must be positive"):
        OcclusionExplainer(model, patch_size=4, stride=0)
    flat = ants.from_numpy(np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="could not predict on an image of shape"):
        OcclusionExplainer(model, patch_size=4).explain(flat)
    with pytest.raises(ValueError, match=r"could not predict on an image of shape \(10, 10\)"):
        GradientExplainer(model).explain(flat)
    with pytest.raises(ValueError, match="target 1 is out of range for a model with 1 outputs"):
        GradientExplainer(model, target=1).explain(image)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        GradientExplainer(model, "gradcam", layer="nope")
    with pytest.raises(ValueError, match="gradcam needs a convolution layer"):
        GradientExplainer(_linear((4, 5, 6))[0], "gradcam")
    dense = _linear((4, 5, 6))[0]
    with pytest.raises(ValueError, match="a channel axis and 3 spatial axes"):
        GradientExplainer(dense, "gradcam", layer=dense.layers[-1]).explain(
            ants.from_numpy(np.zeros((4, 5, 6), np.float32))
        )
    for bad in (dict(n_samples=0), dict(steps=-1), dict(batch_size=0), dict(target=-1), dict(noise=-0.1)):
        with pytest.raises(ValueError, match="GradientExplainer: "):
            GradientExplainer(model, **bad)


def test_other_keras_backends_are_refused(monkeypatch):
    model = _linear((4, 4))[0]
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="need the tensorflow or torch backend.*'jax'"):
        GradientExplainer(model)
