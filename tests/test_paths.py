"""nitrain._paths: NITRAIN_HOME read one way for the caches, downloads and registry; one image-suffix rule."""

import pytest

from nitrain import _paths
from nitrain.datasets import storage
from nitrain.datasets.cache import DiskCache
from nitrain.models import pretrained


@pytest.fixture
def fake_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NITRAIN_REGISTRY", raising=False)
    return tmp_path


@pytest.mark.parametrize("value", ["~/nh", "$NH_TEST_ROOT/nh", "${NH_TEST_ROOT}/nh", "  ~/nh  "])
def test_home_expands_tilde_and_variables_for_every_user(fake_home, monkeypatch, value):
    monkeypatch.setenv("NH_TEST_ROOT", str(fake_home))
    monkeypatch.setenv("NITRAIN_HOME", value)
    home = fake_home / "nh"
    assert _paths.home() == home
    assert DiskCache().directory == home / "cache"
    assert (home / "cache").is_dir() and not (fake_home / "~").exists()
    assert pretrained._store().root == home / "models"
    assert storage.RemoteStore("memory://paths-test").cache_dir == home / "remote"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_unset_or_blank_home_is_dot_nitrain(fake_home, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("NITRAIN_HOME", raising=False)
    else:
        monkeypatch.setenv("NITRAIN_HOME", value)
    assert _paths.home() == fake_home / ".nitrain"
    assert _paths.cache_dir() == fake_home / ".nitrain" / "cache"
    assert _paths.models_dir() == fake_home / ".nitrain" / "models"
    assert _paths.downloads_dir() == fake_home / ".nitrain" / "remote"


def test_registry_folder_expands_tilde(fake_home, monkeypatch):
    monkeypatch.setenv("NITRAIN_REGISTRY", "~/reg")
    assert pretrained._store().root == fake_home / "reg"
    monkeypatch.setenv("NITRAIN_REGISTRY", "file://~/reg2")
    assert pretrained._store().root == fake_home / "reg2"


@pytest.mark.parametrize(
    "path",
    ["a.nii.gz", "a.nii", "A.NII.GZ", "dir/a.Nii.Gz", "a.nrrd", "a.nhdr", "a.mha", "a.mhd", "a.npy",
     "s3://bucket/sub-1/a.nii.gz"],
)  # fmt: skip
def test_image_paths(path, tmp_path):
    assert _paths.is_image_path(path)
    assert _paths.is_image_path(tmp_path / path.rsplit("/", 1)[-1])


@pytest.mark.parametrize(
    "value", ["a.tar.gz", "a.gz", "a.csv", "a.nii.gz.bak", "nii.gz", "anii", "", None, 3, b"a.nii"]
)
def test_not_image_paths(value):
    assert not _paths.is_image_path(value)


def test_csv_targets_are_joined_only_when_they_are_images(tmp_path):
    """A CSV target that is an image path is read relative to the table; ``notes.tar.gz`` is not an image
    path (a column of such names holds class names), and a column mixing the two is an error."""
    import pytest

    from nitrain import datasets

    table = tmp_path / "t.csv"
    table.write_text("x,y\na.nii,b.NII.GZ\nc.nii,d.nii.gz\n")
    ds = datasets.CSVDataset(table, x={"column": "x"}, y={"column": "y"})
    assert ds._y == [str(tmp_path / "b.NII.GZ"), str(tmp_path / "d.nii.gz")]
    text = tmp_path / "u.csv"
    text.write_text("x,y\na.nii,notes.tar.gz\nc.nii,data.gz\n")
    names = datasets.CSVDataset(text, x={"column": "x"}, y={"column": "y"})
    assert names.classes == ("data.gz", "notes.tar.gz") and names._y == [1, 0]
    mixed = tmp_path / "m.csv"
    mixed.write_text("x,y\na.nii,b.NII.GZ\nc.nii,notes.tar.gz\n")
    with pytest.raises(ValueError, match=r"holds image paths \(row 0: 'b.NII.GZ'\) and also text"):
        datasets.CSVDataset(mixed, x={"column": "x"}, y={"column": "y"})
