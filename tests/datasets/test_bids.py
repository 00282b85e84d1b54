import shutil

import ants
import pytest

from nitrain import datasets

pytest.importorskip("bids")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("b") / "ds"
    return datasets.make_phantom_cohort(root, n_subjects=4, seed=3, shape=(16, 16, 16), labels=True)


def test_bids_queries_and_participants_column(cohort):
    ds = datasets.BIDSDataset(cohort, x={"suffix": "T1w", "datatype": "anat"}, y={"column": "age"})
    folder = datasets.FolderDataset(
        cohort, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "participants.tsv", "column": "age"}
    )
    assert ds.ids == folder.ids
    assert ds[:][1] == folder[:][1]
    x, _ = ds[2]
    assert isinstance(x, ants.ANTsImage) and x.shape == (16, 16, 16)


def test_bids_image_targets(cohort):
    ds = datasets.BIDSDataset(cohort, x={"suffix": "T1w"}, y={"suffix": "dseg"})
    x, y = ds[0]
    assert x.shape == y.shape


def test_bids_errors(cohort, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"query \{'suffix': 'T2w'\} matched no files"):
        datasets.BIDSDataset(cohort, x={"suffix": "T2w"}, y={"column": "age"})
    with pytest.raises(KeyError, match="column 'iq' not in"):
        datasets.BIDSDataset(cohort, x={"suffix": "T1w"}, y={"column": "iq"})
    copy = tmp_path / "ds"
    shutil.copytree(cohort, copy)
    shutil.copy(copy / "sub-002/anat/sub-002_T1w.nii.gz", copy / "sub-002/anat/sub-002_run-02_T1w.nii.gz")
    with pytest.raises(ValueError, match="several files for 1 subjects, e.g. sub-002"):
        datasets.BIDSDataset(copy, x={"suffix": "T1w"}, y={"column": "age"})
    ds = datasets.BIDSDataset(copy, x={"suffix": "T1w", "run": None}, y={"column": "age"})
    assert len(ds) == 4
