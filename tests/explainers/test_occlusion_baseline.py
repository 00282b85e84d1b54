"""OcclusionExplainer baselines: the default blurred baseline finds a planted lesion that the image-mean
baseline misses, and each baseline puts the right values into the occluded patch."""

import ants
import numpy as np
import pytest

from nitrain import samplers
from nitrain.datasets.phantom import phantom_arrays
from nitrain.explainers import OcclusionExplainer

SHAPE = (20, 20, 20)
LESION_CENTRE = np.array([7, 12, 10])  # mostly in the white matter, beside a lateral ventricle
LESION_RADIUS = 2.5


def _lesion_mask():
    g = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1)
    return np.linalg.norm(g - LESION_CENTRE, axis=-1) <= LESION_RADIUS


def _subject(seed: int, lesion: bool):
    """A phantom head (T1 scaled to ~1 in white matter) and its labels; with ``lesion``, a dark
    (T1-hypointense) lesion at a fixed place, 18% of the white matter's intensity, texture kept."""
    age = float(np.random.default_rng(seed).uniform(20, 80))
    t1, labels = phantom_arrays(SHAPE, age=age, seed=seed)
    x = t1 / 1000.0
    if lesion:
        x = np.where(_lesion_mask(), x * (0.15 / 0.82), x)
    return np.ascontiguousarray(x, np.float32), labels


def _dog_kernel(size: int = 9, centre_sd: float = 1.5, surround_sd: float = 3.0) -> np.ndarray:
    """A 3-D difference of Gaussians, positive on a dark centre in a bright surround."""
    r = np.arange(size) - size // 2
    d2 = sum(np.meshgrid(r**2, r**2, r**2, indexing="ij"))
    centre, surround = (np.exp(-d2 / (2 * sd**2)) for sd in (centre_sd, surround_sd))
    return (surround / surround.sum() - centre / centre.sum()).astype(np.float32)


@pytest.fixture(scope="module")
def lesion_model():
    """A lesion-load CNN built by hand (no training, so nothing depends on an optimiser's luck): one
    dark-blob filter, a threshold (ReLU) and a global average, so every lesion-like spot in the head adds
    to the score, as a model that sums evidence over the brain does. It knows nothing of where the lesion
    is. Returned with a head that has the lesion and that head's brain mask."""
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv3d(1, 1, 9, padding=4)
    with torch.no_grad():
        conv.weight[:] = torch.from_numpy(1000 * _dog_kernel())[None, None]
        conv.bias[:] = -50.0  # ignore faint dark spots (1000 x 0.05)
    model = torch.nn.Sequential(
        conv, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten()
    ).eval()
    test, labels = _subject(1001, True)
    healthy, _ = _subject(1001, False)
    with torch.no_grad():
        scores = model(torch.from_numpy(np.stack([test, healthy]))[:, None])[:, 0].numpy()
    assert scores[0] > 3 * scores[1], f"the filter does not see the lesion (scores {scores})"
    brain = (labels >= 1) & (labels <= 4)  # CSF, grey and white matter, ventricles
    return model, ants.from_numpy(test), brain


def _peak(arr: np.ndarray) -> np.ndarray:
    """The centre of the map's maximum (with a stride of 3 the map is made of 3-voxel blocks, so the
    maximum is a plateau, and ``argmax`` would report its first corner)."""
    return np.argwhere(arr >= arr.max() - 1e-6 * abs(arr.max())).mean(axis=0)


def test_default_blur_baseline_peaks_at_the_lesion(lesion_model):
    model, image, brain = lesion_model
    lesion = _lesion_mask()
    explainer = OcclusionExplainer(model, patch_size=6, stride=3, progress=False)
    assert explainer.baseline == "blur"
    arr = explainer.explain(image).numpy()
    peak = _peak(arr)
    assert np.linalg.norm(peak - LESION_CENTRE) <= LESION_RADIUS, f"the map peaks at {peak}, off the lesion"
    assert arr[lesion].mean() > 2 * abs(arr[brain & ~lesion].mean())
    # Hiding healthy tissue does not read as a lesion: the map is not negative across the brain.
    assert (arr[brain] >= 0).mean() > 0.9


def test_mean_baseline_looks_like_a_lesion(lesion_model):
    # The failure that made 'blur' the default: the mean of a head with background is far darker than
    # white matter, so each occluded patch is itself a dark blob. The map reads negative across the brain
    # (hiding tissue "adds a lesion") and its peak lands away from the real lesion.
    model, image, brain = lesion_model
    assert float(image.numpy().mean()) < 0.5 * float(np.median(image.numpy()[brain]))
    arr = OcclusionExplainer(model, patch_size=6, stride=3, baseline="mean", progress=False).explain(image)
    arr = arr.numpy()
    assert (arr[brain] < 0).mean() > 0.75
    assert np.linalg.norm(_peak(arr) - LESION_CENTRE) > 2 * LESION_RADIUS


def test_blur_baseline_takes_the_patch_from_a_blurred_copy():
    from scipy import ndimage

    rng = np.random.default_rng(3)
    arr = rng.random((8, 10, 12)).astype(np.float32)

    def model(batch):  # channels-last batch -> the sum of each image
        return batch[..., 0].sum(axis=(1, 2, 3), dtype=np.float64)[:, None]

    image = ants.from_numpy(arr)
    # Non-overlapping patches, so each voxel is covered once: map = sum(patch) - sum(blurred patch).
    # default sigma: half the patch on each axis; or the one given
    for sigma, given in (((2.0, 2.5, 3.0), None), ((1.0, 0.5, 3.0), (1.0, 0.5, 3.0))):
        explainer = OcclusionExplainer(model, patch_size=(4, 5, 6), stride=(4, 5, 6), blur_sigma=given)
        out = explainer.explain(image).numpy()
        blurred = ndimage.gaussian_filter(arr.astype(np.float64), sigma, mode="reflect", truncate=4.0)
        for corner in ((0, 0, 0), (4, 5, 6), (4, 0, 6)):
            region = tuple(slice(c, c + p) for c, p in zip(corner, (4, 5, 6), strict=True))
            want = arr[region].astype(np.float64).sum() - blurred[region].sum()
            np.testing.assert_allclose(out[region], want, rtol=1e-4, atol=1e-4)


def test_blur_baseline_of_a_constant_image_changes_nothing():
    # Blurring a constant image gives the same image, so no patch changes any prediction.
    def model(batch):
        return (batch[..., 0] ** 2).mean(axis=tuple(range(1, batch.ndim - 1)))[:, None]

    image = ants.from_numpy(np.full((12, 12, 8), 3.0, np.float32))
    out = OcclusionExplainer(model, patch_size=4).explain(image).numpy()
    np.testing.assert_allclose(out, 0.0, atol=1e-4)
    sampler = samplers.SliceSampler(axis=2, slices=(2, 6))
    out = OcclusionExplainer(model, patch_size=(4, 4, 2), sampler=sampler).explain(image).numpy()
    np.testing.assert_allclose(out, 0.0, atol=1e-4)
    # ... whereas a constant baseline of 0 does
    assert OcclusionExplainer(model, patch_size=4, baseline="zero").explain(image).numpy().min() > 0


def test_baseline_arguments():
    def model(batch):
        return batch[..., 0].mean(axis=(1, 2, 3))[:, None]

    image = ants.from_numpy(np.ones((8, 8, 8), np.float32))
    for bad in ("gray", True, None, [0.0]):
        with pytest.raises(ValueError, match="baseline must be 'blur', 'mean', 'zero' or a number"):
            OcclusionExplainer(model, patch_size=4, baseline=bad)
    with pytest.raises(ValueError, match="blur_sigma applies only to baseline='blur', got baseline='mean'"):
        OcclusionExplainer(model, patch_size=4, baseline="mean", blur_sigma=2)
    for bad_sigma in (0, -1.0, (1.0, 0.0, 1.0), (), True, ("a",)):
        with pytest.raises(ValueError, match="blur_sigma must be a positive number or one per axis"):
            OcclusionExplainer(model, patch_size=4, blur_sigma=bad_sigma)
    with pytest.raises(ValueError, match=r"blur_sigma \(1.0, 2.0\) does not match a 3-D image"):
        OcclusionExplainer(model, patch_size=4, blur_sigma=(1, 2)).explain(image)
    for baseline in ("blur", "mean", "zero", 0.5, 1):
        out = OcclusionExplainer(model, patch_size=4, baseline=baseline).explain(image)
        assert out.shape == image.shape
