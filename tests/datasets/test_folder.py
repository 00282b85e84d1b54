import csv
import shutil

import ants
import numpy as np
import pytest

from nitrain import datasets
from nitrain import transforms as tx


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return datasets.make_phantom_cohort(
        tmp_path_factory.mktemp("c") / "ds", n_subjects=6, seed=2, shape=(24, 24, 24)
    )


@pytest.fixture
def copy(cohort, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(cohort, dst)
    return dst


def _ages(root):
    with open(root / "participants.tsv") as fh:
        return {r["participant_id"]: float(r["age"]) for r in csv.DictReader(fh, delimiter="\t")}


def _write_table(root, rows):
    with open(root / "participants.tsv", "w") as fh:
        fh.write("participant_id\tage\tsex\n")
        for r in rows:
            fh.write("\t".join(r) + "\n")


def test_seed_usage_joins_images_and_ages_by_id(cohort):
    dataset = datasets.FolderDataset(
        base_dir=cohort,
        x={"pattern": "sub-*/anat/*_T1w.nii.gz"},
        y={"file": "participants.tsv", "column": "age"},
        x_transforms=[tx.RangeNormalize(0, 1)],
    )
    assert len(dataset) == 6
    x, y = dataset[0]
    assert isinstance(x, ants.ANTsImage) and x.shape == (24, 24, 24)
    assert x.numpy().min() == 0 and x.numpy().max() == 1
    assert y == _ages(cohort)["sub-001"]
    xs, ys = dataset[:]
    assert len(xs) == len(ys) == 6
    assert ys == [_ages(cohort)[i] for i in dataset.ids]
    assert "FolderDataset (6 records)" in repr(dataset)


def test_shuffled_and_extra_rows_do_not_misalign(copy):
    ages = _ages(copy)
    rows = [(k, str(v), "F") for k, v in ages.items()][::-1]
    _write_table(copy, [*rows, ("sub-999", "33.0", "M")])
    with pytest.raises(ValueError, match=r"missing from x: \['sub-999'\]"):
        datasets.FolderDataset(
            copy, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "participants.tsv", "column": "age"}
        )
    with pytest.warns(UserWarning, match="dropped them, 6 records remain"):
        ds = datasets.FolderDataset(
            copy,
            {"pattern": "sub-*/anat/*_T1w.nii.gz"},
            {"file": "participants.tsv", "column": "age"},
            on_missing="drop",
        )
    for i, rid in enumerate(ds.ids):
        assert ds[i][1] == ages[rid]
        assert rid in ds._x[i]


def test_missing_subject_and_duplicate_ids(copy):
    ages = _ages(copy)
    _write_table(copy, [(k, str(v), "F") for k, v in list(ages.items())[1:]])
    with pytest.raises(ValueError, match=r"missing from y: \['sub-001'\]"):
        datasets.FolderDataset(
            copy, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "participants.tsv", "column": "age"}
        )
    _write_table(copy, [(k, str(v), "F") for k, v in ages.items()] + [("sub-002", "1", "F")])
    with pytest.raises(ValueError, match=r"duplicate ids .* \['sub-002'\]"):
        datasets.FolderDataset(
            copy, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "participants.tsv", "column": "age"}
        )


def test_exclude_and_several_files_per_id(copy):
    src = copy / "sub-003/anat/sub-003_T1w.nii.gz"
    shutil.copy(src, copy / "sub-003/anat/sub-003_run-02_T1w.nii.gz")
    with pytest.raises(ValueError, match="matched several files for 1 ids, e.g. sub-003"):
        datasets.FolderDataset(
            copy, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "participants.tsv", "column": "age"}
        )
    ds = datasets.FolderDataset(
        copy,
        {"pattern": "sub-*/anat/*_T1w.nii.gz", "exclude": "**run-02*"},
        {"file": "participants.tsv", "column": "age"},
    )
    assert len(ds) == 6


def test_clear_errors_for_bad_configs(copy, tmp_path):
    y = {"file": "participants.tsv", "column": "age"}
    with pytest.raises(FileNotFoundError, match=r"pattern '\*\*/\*_T2w.nii.gz' matched no files under"):
        datasets.FolderDataset(copy, {"pattern": "**/*_T2w.nii.gz"}, y)
    with pytest.raises(FileNotFoundError, match="table file not found: .*nope.tsv"):
        datasets.FolderDataset(
            copy, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "nope.tsv", "column": "age"}
        )
    with pytest.raises(
        KeyError, match=r"column 'weight' not in .*available: \['participant_id', 'age', 'sex'\]"
    ):
        datasets.FolderDataset(
            copy, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "participants.tsv", "column": "weight"}
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="matched no files"):
        datasets.FolderDataset(tmp_path / "empty", {"pattern": "*.nii.gz"}, y)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        datasets.FolderDataset(tmp_path / "missing", {"pattern": "*.nii.gz"}, y)


def test_corrupt_image_names_file_and_record_on_access(copy):
    (copy / "sub-004/anat/sub-004_T1w.nii.gz").write_bytes(b"not an image")
    ds = datasets.FolderDataset(
        copy, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "participants.tsv", "column": "age"}
    )
    ds[0]  # other records still load
    with pytest.raises(OSError, match=r"record 3 \(sub-004\): could not read image .*sub-004_T1w.nii.gz"):
        ds[3]


def test_image_targets_and_multiple_inputs(tmp_path):
    root = datasets.make_phantom_cohort(
        tmp_path / "seg", n_subjects=3, seed=1, shape=(20, 20, 20), labels=True
    )
    ds = datasets.FolderDataset(
        root,
        x=[{"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"pattern": "sub-*/anat/*_T1w.nii.gz"}],
        y={"pattern": "sub-*/anat/*_dseg.nii.gz"},
    )
    x, y = ds[1]
    assert isinstance(x, list) and len(x) == 2
    assert isinstance(y, ants.ANTsImage) and set(np.unique(y.numpy())) <= set(datasets.LABELS.values())


def test_split_sizes_are_exact_and_seeded(cohort):
    ds = datasets.MemoryDataset([np.zeros((4, 4, 4))] * 10, list(range(10)))
    a, b = ds.split(0.8)
    assert (len(a), len(b)) == (8, 2)
    assert [a[i][1] for i in range(8)] == list(range(8))
    parts = ds.split((0.6, 0.2, 0.2), random=True, seed=3)
    assert [len(p) for p in parts] == [6, 2, 2]
    labels = sorted(y for p in parts for y in p[:][1])
    assert labels == list(range(10))
    again = ds.split((0.6, 0.2, 0.2), random=True, seed=3)
    assert parts[1][:][1] == again[1][:][1]
    with pytest.raises(ValueError, match="sum to 1"):
        ds.split((0.5, 0.2))
    assert len(datasets.MemoryDataset([np.zeros((3, 3))] * 3, [0, 1, 2]).split(0.5)[0]) == 2


def test_memory_dataset_and_mismatched_lengths():
    ds = datasets.MemoryDataset([np.ones((5, 6, 7)), np.zeros((5, 6, 7))], [1.0, 2.0])
    x, y = ds[-1]
    assert isinstance(x, ants.ANTsImage) and y == 2.0
    with pytest.raises(ValueError, match="x has 2 items but y has 3"):
        datasets.MemoryDataset([np.ones((3, 3))] * 2, [1, 2, 3])
    with pytest.raises(IndexError, match="index 5 is out of range for 2 records"):
        ds[5]


def test_csv_dataset_resolves_paths_relative_to_the_table(cohort, tmp_path):
    table = cohort / "index.csv"
    ages = _ages(cohort)
    with open(table, "w") as fh:
        fh.write("path,age\n")
        for k, v in ages.items():
            fh.write(f"{k}/anat/{k}_T1w.nii.gz,{v}\n")
    ds = datasets.CSVDataset(table, x={"column": "path"}, y={"column": "age"})
    x, y = ds[2]
    assert x.shape == (24, 24, 24) and y == list(ages.values())[2]
    with pytest.raises(KeyError, match="column 'file' not in"):
        datasets.CSVDataset(table, x={"column": "file"}, y={"column": "age"})
    table.unlink()


@pytest.mark.parametrize("ext", [".nrrd", ".mha", ".mhd", ".nii", ".npy"])
def test_every_supported_format_reads_with_its_geometry(cohort, tmp_path, ext):
    """NRRD, MetaImage (.mha and .mhd+.raw), uncompressed NIfTI and .npy arrays read through one pattern,
    joined by id, with the voxels and (except .npy, which has none) the geometry of the source image."""
    src = datasets.FolderDataset(
        cohort, {"pattern": "sub-*/anat/*_T1w.nii.gz"}, {"file": "participants.tsv", "column": "age"}
    )
    root = tmp_path / "conv"
    for i, sub in enumerate(src.ids):
        img = ants.image_read(str(cohort / sub / "anat" / f"{sub}_T1w.nii.gz"))
        img.set_spacing((1.5, 1.0, 2.0))
        img.set_origin((float(i), -3.0, 7.5))
        (root / sub).mkdir(parents=True)
        out = root / sub / f"{sub}_T1w{ext}"
        if ext == ".npy":
            np.save(out, img.numpy())
        else:
            ants.image_write(img, str(out))
    shutil.copy(cohort / "participants.tsv", root / "participants.tsv")
    ds = datasets.FolderDataset(
        root, {"pattern": f"sub-*/*{ext}"}, {"file": "participants.tsv", "column": "age"}
    )
    assert len(ds) == len(src)
    for i in range(len(ds)):
        (x, y), (x0, y0) = ds[i], src[i]
        assert y == y0
        np.testing.assert_array_equal(x.numpy(), x0.numpy())
        if ext == ".npy":
            assert x.spacing == (1.0, 1.0, 1.0)
        else:
            np.testing.assert_allclose(x.spacing, (1.5, 1.0, 2.0))
            np.testing.assert_allclose(x.origin, (float(i), -3.0, 7.5))
