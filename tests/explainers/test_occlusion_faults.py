"""OcclusionExplainer faults: non-finite model outputs and strides that leave voxels unmeasured."""

import ants
import numpy as np
import pytest

from nitrain import samplers
from nitrain.explainers import OcclusionExplainer


def _image(shape=(8, 8, 8)):
    return ants.from_numpy(np.ones(shape, np.float32))


def test_nan_on_the_unoccluded_image_is_an_error():
    def model(batch):
        return np.full((len(batch), 1), np.nan)

    with pytest.raises(ValueError, match=r"output 0 is nan on the unoccluded image"):
        OcclusionExplainer(model, patch_size=4, baseline=0.0).explain(_image())


def test_nan_on_one_occluded_copy_names_the_patch():
    # Finite unless the voxel (5, 5, 5) is blacked out: only patches over it give NaN.
    def model(batch):
        v = batch[:, 5, 5, 5, 0].astype(np.float64)
        return np.where(v == 0, np.nan, batch.mean(axis=(1, 2, 3, 4)))[:, None]

    with pytest.raises(ValueError, match=r"nan on the copy occluded by the patch at corner \(4, 4, 4\)"):
        OcclusionExplainer(model, patch_size=4, stride=4, baseline=0.0).explain(_image())


def test_infinite_output_on_occluded_copies_is_an_error():
    def model(batch):
        out = batch.mean(axis=(1, 2, 3, 4)).astype(np.float64)
        out[out < 1] = np.inf  # every occluded copy
        return out[:, None]

    with pytest.raises(
        ValueError, match=r"output 0 is inf on the copy occluded by the patch at corner \(0, 0, 0\)"
    ):
        OcclusionExplainer(model, patch_size=4, baseline=0.0, batch_size=4).explain(_image())


def test_nan_in_the_other_outputs_is_not_the_targets_business():
    def model(batch):
        m = batch.mean(axis=(1, 2, 3, 4)).astype(np.float64)
        return np.stack([m, np.full_like(m, np.nan)], axis=1)

    arr = OcclusionExplainer(model, patch_size=4, baseline=0.0, target=0).explain(_image()).numpy()
    assert np.isfinite(arr).all() and arr.min() > 0
    with pytest.raises(ValueError, match="output 1 is nan"):
        OcclusionExplainer(model, patch_size=4, baseline=0.0, target=1).explain(_image())


def test_slice_wise_nan_names_the_slice():
    def baseline_nan(batch):  # a 2-D model: NaN on slice 3's image, whatever is occluded
        out = batch.mean(axis=(1, 2, 3)).astype(np.float64)
        out[batch[:, 0, 0, 0] == 3] = np.nan
        return out[:, None]

    arr = np.ones((8, 8, 8), np.float32)
    arr[:, :, 3] = 3  # slice 3 is recognisable by its value
    img = ants.from_numpy(arr)
    sampler = samplers.SliceSampler(axis=2)
    with pytest.raises(ValueError, match=r"nan on slice 3 along axis 2 of the unoccluded image"):
        OcclusionExplainer(baseline_nan, patch_size=(8, 8, 2), baseline=0.0, sampler=sampler).explain(img)

    def occluded_nan(batch):  # NaN on any slice whose corner voxel is blacked out
        out = batch.mean(axis=(1, 2, 3)).astype(np.float64)
        out[batch[:, 0, 0, 0] == 0] = np.nan
        return out[:, None]

    img = ants.from_numpy(np.ones((8, 8, 8), np.float32))
    with pytest.raises(
        ValueError,
        match=r"nan on slice 0 along axis 2 of the copy occluded by the patch at corner \(0, 0, 0\)",
    ):
        OcclusionExplainer(occluded_nan, patch_size=(4, 4, 2), baseline=0.0, sampler=sampler).explain(img)


@pytest.mark.parametrize(
    ("patch_size", "stride"),
    [(4, 5), ((4, 4, 4), 6), (4, (4, 4, 5)), ((4, 2, 4), (4, 3, 4))],
)
def test_a_stride_larger_than_the_patch_is_refused(patch_size, stride):
    def model(batch):
        return batch.mean(axis=(1, 2, 3, 4))[:, None]

    with pytest.raises(ValueError, match=r"stride .* is larger than patch_size"):
        OcclusionExplainer(model, patch_size=patch_size, stride=stride)


def test_a_stride_equal_to_the_patch_measures_every_voxel():
    def model(batch):  # every voxel counts, so every measured voxel has a positive effect
        return batch.sum(axis=(1, 2, 3, 4))[:, None].astype(np.float64)

    arr = (
        OcclusionExplainer(model, patch_size=3, stride=3, baseline=0.0).explain(_image((10, 10, 10))).numpy()
    )
    assert arr.min() > 0
