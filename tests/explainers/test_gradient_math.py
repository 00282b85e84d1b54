"""The framework-free parts of the gradient explainers, against torch's own implementations."""

import ants
import numpy as np
import pytest

from nitrain.explainers import GradientExplainer
from nitrain.explainers.gradients import gradcam_map, resize_linear

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(("src", "dst"), [((3, 5), (16, 20)), ((4, 4, 2), (16, 9, 7)), ((6, 7), (6, 14))])
def test_resize_linear_matches_torch_interpolate(src, dst):
    a = np.random.default_rng(0).normal(size=(2, *src)).astype(np.float32)
    mode = "bilinear" if len(src) == 2 else "trilinear"
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(a)[:, None], size=dst, mode=mode, align_corners=False
    )
    np.testing.assert_allclose(resize_linear(a, dst), ref[:, 0].numpy(), rtol=1e-5, atol=1e-6)


def test_gradcam_map_matches_the_torch_formula():
    rng = np.random.default_rng(1)
    act, grad = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 4, 5))
    a, g = torch.from_numpy(act), torch.from_numpy(grad)
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1, keepdim=True))
    ref = torch.nn.functional.interpolate(cam, size=(8, 15), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(gradcam_map(act, grad, (8, 15)), ref.numpy(), rtol=1e-6, atol=1e-9)


def test_torch_gradcam_layer_by_name_and_errors():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv3d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(2 * 5**3, 2)
    )
    image = ants.from_numpy(np.random.default_rng(2).normal(size=(5, 5, 5)).astype(np.float32))
    by_name = GradientExplainer(model, "gradcam", layer="0", target=1).explain(image).numpy()
    default = GradientExplainer(model, "gradcam", target=1).explain(image).numpy()
    np.testing.assert_array_equal(by_name, default)
    with pytest.raises(ValueError, match="no layer named 'conv'"):
        GradientExplainer(model, "gradcam", layer="conv")
    with pytest.raises(ValueError, match="target 2 is out of range for a model with 2 outputs"):
        GradientExplainer(model, target=2).explain(image)
