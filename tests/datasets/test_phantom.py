import csv

import ants
import numpy as np
import pytest

from nitrain.datasets import LABELS, make_phantom, make_phantom_cohort, phantom_arrays


def test_same_seed_same_phantom_and_different_seed_differs():
    a1, l1 = phantom_arrays((32, 32, 32), 40, seed=3)
    a2, l2 = phantom_arrays((32, 32, 32), 40, seed=3)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(l1, l2)
    assert not np.array_equal(a1, phantom_arrays((32, 32, 32), 40, seed=4)[0])


def test_anatomy_changes_with_age():
    ages = np.linspace(20, 80, 13)
    vent, gm = [], []
    for i, age in enumerate(ages):
        _, lab = phantom_arrays((48, 48, 48), age, seed=100 + i)
        vent.append((lab == LABELS["ventricles"]).sum())
        intracranial = np.isin(lab, [LABELS[k] for k in ("csf", "gray_matter", "white_matter", "ventricles")])
        gm.append((lab == LABELS["gray_matter"]).sum() / intracranial.sum())
    assert np.corrcoef(ages, vent)[0, 1] > 0.9  # ventricles enlarge
    assert np.corrcoef(ages, gm)[0, 1] < -0.9  # cortex thins (as a share of the intracranial volume)


def test_tissue_contrast_is_t1_like():
    t1, lab = phantom_arrays((48, 48, 48), 50, seed=0)
    mean = {k: t1[lab == v].mean() for k, v in LABELS.items() if (lab == v).any()}
    assert mean["white_matter"] > mean["gray_matter"] > mean["csf"] > mean["background"]


def test_images_carry_geometry():
    img, lab = make_phantom((32, 40, 36), 30, seed=1)
    assert img.shape == lab.shape == (32, 40, 36)
    np.testing.assert_allclose(np.array(img.spacing) * np.array(img.shape), 180.0)
    assert img.origin == lab.origin


def test_cohort_is_bids_like_and_deterministic(tmp_path):
    root = make_phantom_cohort(tmp_path / "a", n_subjects=5, seed=7, shape=(24, 24, 24), labels=True)
    with open(root / "participants.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["participant_id"] for r in rows] == [f"sub-00{i}" for i in range(1, 6)]
    assert all(20 <= float(r["age"]) <= 80 and r["sex"] in ("F", "M") for r in rows)
    for r in rows:
        sub = r["participant_id"]
        img = ants.image_read(str(root / sub / "anat" / f"{sub}_T1w.nii.gz"))
        seg = ants.image_read(str(root / sub / "anat" / f"{sub}_dseg.nii.gz"))
        assert img.shape == (24, 24, 24)
        assert set(np.unique(seg.numpy())) <= set(LABELS.values())
    again = make_phantom_cohort(tmp_path / "b", n_subjects=5, seed=7, shape=(24, 24, 24))
    assert (again / "participants.tsv").read_text() == (root / "participants.tsv").read_text()
    x = ants.image_read(str(again / "sub-003/anat/sub-003_T1w.nii.gz")).numpy()
    y = ants.image_read(str(root / "sub-003/anat/sub-003_T1w.nii.gz")).numpy()
    np.testing.assert_array_equal(x, y)


def test_bad_arguments_and_no_silent_overwrite(tmp_path):
    with pytest.raises(ValueError, match="n_subjects must be a positive integer, got 0"):
        make_phantom_cohort(tmp_path, n_subjects=0)
    with pytest.raises(ValueError, match="age_range must satisfy"):
        make_phantom_cohort(tmp_path, n_subjects=1, age_range=(80, 20))
    with pytest.raises(ValueError, match="shape must be three sizes >= 16"):
        phantom_arrays((8, 8, 8))
    make_phantom_cohort(tmp_path, n_subjects=1, shape=(16, 16, 16))
    with pytest.raises(FileExistsError, match="participants.tsv exists"):
        make_phantom_cohort(tmp_path, n_subjects=1, shape=(16, 16, 16))
