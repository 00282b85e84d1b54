import ants
import numpy as np
import pytest

from nitrain import explain, samplers
from nitrain.explainers import GradientExplainer, OcclusionExplainer

from ._helpers import CENTRE, SHAPE, _inside_outside, _sample

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def trained():
    return _train()


def _train():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y = np.tile([0.0, 1.0], 40).astype(np.float32)
    x = np.stack([_sample(rng, bool(v)) for v in y])
    model = torch.nn.Sequential(
        torch.nn.Conv3d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv3d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveMaxPool3d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 1),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x)[:, None], torch.from_numpy(y)[:, None]
    for _ in range(30):
        for s in range(0, len(x), 32):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xt[s : s + 32]), yt[s : s + 32])
            loss.backward()
            opt.step()
    acc = ((model(xt) > 0).float() == yt).float().mean().item()
    assert acc > 0.95, f"the synthetic task did not train (accuracy {acc})"
    image = ants.from_numpy(
        _sample(np.random.default_rng(99), True), spacing=(2.0, 1.5, 1.0), origin=(3.0, 4.0, 5.0)
    )
    return model.eval(), image


def test_occlusion_map_peaks_on_the_deciding_region(trained):
    model, image = trained
    out = OcclusionExplainer(model, patch_size=6, stride=2, baseline="zero", batch_size=32).explain(image)
    arr = out.numpy()
    peak = np.array(np.unravel_index(np.argmax(arr), arr.shape))
    assert np.linalg.norm(peak - CENTRE) <= 4
    inside, outside = _inside_outside(arr)
    assert inside > 3 * max(outside, 1e-6)
    assert out.spacing == image.spacing and out.origin == image.origin
    np.testing.assert_array_equal(out.direction, image.direction)


def test_occlusion_default_blur_baseline_peaks_on_the_deciding_region(trained):
    # The default baseline (each patch from a blurred copy of the image) on the trained model: the map
    # peaks in the blob that decides the label; hiding the texture elsewhere changes little.
    model, image = trained
    explainer = OcclusionExplainer(model, patch_size=6, stride=2, batch_size=32)
    assert explainer.baseline == "blur"
    arr = explainer.explain(image).numpy()
    top = np.argwhere(arr >= arr.max() - 1e-6 * abs(arr.max())).mean(axis=0)  # the maximum's plateau
    assert np.linalg.norm(top - CENTRE) <= 3, top  # within the blob (radius 3)
    inside, outside = _inside_outside(arr)
    assert inside > 3 * abs(outside)


@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "integrated_gradients", "gradcam"])
def test_gradient_maps_point_at_the_deciding_region(trained, method):
    model, image = trained
    arr = GradientExplainer(model, method=method, n_samples=8, steps=12).explain(image).numpy()
    assert arr.shape == SHAPE
    inside, outside = _inside_outside(np.abs(arr))
    assert inside > 2 * outside, (method, inside, outside)


def test_slice_wise_occlusion_for_2d_models():
    # An analytic 2-D "model": the mean intensity of a fixed square of each slice.
    def model(batch):
        return batch[:, 4:8, 10:14, 0].mean(axis=(1, 2))[:, None]

    img = ants.from_numpy(np.ones((16, 20, 12), np.float32))
    out = OcclusionExplainer(
        model, patch_size=(2, 2, 4), stride=2, baseline=0.0, sampler=samplers.SliceSampler(axis=2)
    ).explain(img)
    arr = out.numpy()
    assert arr.shape == (16, 20, 12)
    assert arr[4:8, 10:14].min() > 0
    assert np.abs(arr[:3]).max() == 0 and np.abs(arr[:, :8]).max() == 0
    # Full-volume reference for one patch: occlude, then average the per-slice predictions.
    ref = np.ones((16, 20, 12), np.float32)
    ref[4:6, 10:12, 0:4] = 0
    full = np.ones((12,)).mean() - np.mean([model(ref[None, :, :, k, None])[0, 0] for k in range(12)])
    assert full > 0


def test_bad_input(trained):
    model, image = trained
    with pytest.raises(ValueError, match=r"patch_size \(30, 30, 30\) is larger than the image"):
        OcclusionExplainer(model, patch_size=30).explain(image)
    with pytest.raises(ValueError, match="stride must be positive"):
        OcclusionExplainer(model, patch_size=4, stride=0)
    with pytest.raises(ValueError, match="could not predict on an image of shape"):
        OcclusionExplainer(model, patch_size=4).explain(ants.from_numpy(np.zeros((10, 10), np.float32)))
    with pytest.raises(ValueError, match="method must be one of"):
        GradientExplainer(model, method="lime")
    with pytest.raises(TypeError, match="need a torch model"):
        GradientExplainer(lambda b: b, method="saliency")
    assert explain.OcclusionExplainer is OcclusionExplainer


def test_slice_wise_occlusion_respects_the_slice_window():
    def model(batch):
        return batch[:, :, :, 0].mean(axis=(1, 2))[:, None]

    img = ants.from_numpy(np.ones((12, 12, 12), np.float32))
    sampler = samplers.SliceSampler(axis=2, slices=(4, 8))
    arr = (
        OcclusionExplainer(model, patch_size=(12, 12, 2), stride=2, baseline=0.0, sampler=sampler)
        .explain(img)
        .numpy()
    )
    assert np.abs(arr[:, :, :3]).max() == 0 and np.abs(arr[:, :, 9:]).max() == 0  # patches outside the window
    assert arr[:, :, 5].min() > 0


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "gradcam"])
def test_slice_wise_gradients_respect_the_slice_window(method):
    # A 2-D model slice by slice: only the sampler's slices=(4, 8) are explained (and fed to the model),
    # the others read 0, and the served slices get the same map as without a window.
    torch.manual_seed(0)

    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 1),
    )
    seen: list[int] = []  # the batch size of every forward pass
    model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    img = ants.from_numpy(np.random.default_rng(1).random((10, 12, 12)).astype(np.float32))
    whole = GradientExplainer(model, method, steps=4, sampler=samplers.SliceSampler(axis=2)).explain(img)
    windowed = GradientExplainer(model, method, steps=4, sampler=samplers.SliceSampler(axis=2, slices=(4, 8)))
    seen.clear()
    arr = windowed.explain(img).numpy()
    assert np.abs(arr[:, :, :4]).max() == 0 and np.abs(arr[:, :, 8:]).max() == 0
    assert np.abs(arr[:, :, 4:8]).max() > 0
    np.testing.assert_allclose(arr[:, :, 4:8], whole.numpy()[:, :, 4:8], rtol=1e-5, atol=1e-6)
    per_slice = {"saliency": 1, "integrated_gradients": 4, "gradcam": 1}[method]
    assert sum(seen) == 1 + 4 * per_slice  # one check prediction, then only the four served slices
