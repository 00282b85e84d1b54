"""Targets from tables: class names encoded as indices (and decoded back), vector targets from several
columns, and the keys a dataset spec takes."""

import numpy as np
import pytest

from nitrain import datasets, loaders, samplers

X = {"pattern": "sub-*/anat/*_T1w.nii.gz"}
GROUPS = ["patient", "control", "control", "patient", "control", "patient"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Six phantom subjects whose participants.tsv also has a text ``group`` and a number ``score``."""
    root = datasets.make_phantom_cohort(
        tmp_path_factory.mktemp("t") / "ds", n_subjects=6, seed=4, shape=(16, 16, 16)
    )
    table = root / "participants.tsv"
    head, *rows = table.read_text().splitlines()
    lines = [f"{head}\tgroup\tscore"]
    lines += [f"{r}\t{g}\t{10.0 * k + 0.5}" for k, (r, g) in enumerate(zip(rows, GROUPS, strict=True))]
    table.write_text("\n".join(lines) + "\n")
    return root


def _table(root):
    head, *rows = (root / "participants.tsv").read_text().splitlines()
    cols = head.split("\t")
    return {r.split("\t")[0]: dict(zip(cols, r.split("\t"), strict=True)) for r in rows}


def _groups(ds, root):
    return [_table(root)[i]["group"] for i in ds.ids]


def _csv(path, columns, rows):
    """A CSV table of ``columns`` whose ``path`` column holds absolute image paths."""
    path.write_text(",".join(columns) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _t1(root, k):
    return root / f"sub-00{k}" / "anat" / f"sub-00{k}_T1w.nii.gz"


# -- class names ----------------------------------------------------------------------------------------
def test_a_text_column_is_encoded_as_sorted_class_indices(cohort):
    ds = datasets.FolderDataset(cohort, X, {"file": "participants.tsv", "column": "group"})
    assert ds.classes == ("control", "patient")
    ys = [ds[i][1] for i in range(len(ds))]
    assert ys == [ds.classes.index(g) for g in _groups(ds, cohort)]
    assert all(isinstance(y, int) for y in ys)
    assert ds.decode(ys).tolist() == _groups(ds, cohort)  # round trip
    assert ds.decode(ys[0]) == _groups(ds, cohort)[0]
    assert "classes: ['control', 'patient']" in repr(ds)
    train, test = ds.split(0.5, random=True, seed=0)
    assert train.classes == test.classes == ds.classes  # the mapping stays with every part
    assert ds.subset([1]).classes == ds.classes
    # batches hold the indices, as float32 like other scalar targets
    batch = next(iter(loaders.DatasetLoader(ds, batch_size=6)))
    assert batch[1].dtype == np.float32 and batch[1].tolist() == ys


def test_explicit_classes_fix_the_order_and_the_set(cohort):
    y = {"file": "participants.tsv", "column": "group", "classes": ["patient", "control", "other"]}
    ds = datasets.FolderDataset(cohort, X, y)
    assert ds.classes == ("patient", "control", "other")
    assert [ds[i][1] for i in range(len(ds))] == [ds.classes.index(g) for g in _groups(ds, cohort)]
    y = {"file": "participants.tsv", "column": "group", "classes": ["control"]}
    with pytest.raises(
        ValueError, match=r"not among the classes \['control'\] \(sub-001: 'patient', sub-004"
    ):
        datasets.FolderDataset(cohort, X, y)
    for bad, words in (
        (["a", "a"], "must be distinct"),
        ([], "non-empty list"),
        ("control", "non-empty list"),
        ([0, 1], "non-empty strings"),
    ):
        with pytest.raises(ValueError, match=words):
            datasets.FolderDataset(cohort, X, {"file": "participants.tsv", "column": "group", "classes": bad})


def test_numbers_with_a_stray_string_stay_an_error(cohort, tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text(
        "participant_id\tlabel\n" + "".join(f"sub-00{k}\t{k}\n" for k in range(1, 6)) + "sub-006\tx\n"
    )
    with pytest.raises(ValueError, match=r"holds numbers and also text .*\(sub-006: 'x'\)"):
        datasets.FolderDataset(cohort, X, {"file": str(table), "column": "label"})


def test_decode_indices_and_scores():
    classes = ("control", "patient", "other")
    assert datasets.decode_classes(classes, 2) == "other"
    assert datasets.decode_classes(classes, np.array([1.0, 0.0])).tolist() == ["patient", "control"]
    assert datasets.decode_classes(classes, np.array([True, False])).tolist() == ["patient", "control"]
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]], dtype=np.float32)
    assert datasets.decode_classes(classes, logits).tolist() == ["patient", "control"]
    maps = np.zeros((1, 3, 2, 2), np.float32)  # channels-first class maps
    maps[0, 2, 0, 0] = 1
    want = [[["other", "control"], ["control", "control"]]]
    assert datasets.decode_classes(classes, maps, axis=1).tolist() == want
    torch = pytest.importorskip("torch")
    assert datasets.decode_classes(classes, torch.tensor(logits)).tolist() == ["patient", "control"]
    with pytest.raises(ValueError, match="class index 3 is out of range for 3 classes"):
        datasets.decode_classes(classes, [0, 3])
    with pytest.raises(ValueError, match="pass logits > 0"):
        datasets.decode_classes(classes, np.array([0.3, -1.2]))
    no_classes = datasets.MemoryDataset([np.zeros((4, 4))], [1.0])
    with pytest.raises(ValueError, match="MemoryDataset.decode: the targets are not class names"):
        no_classes.decode([0])


def test_csv_and_memory_datasets_take_class_names(cohort, tmp_path):
    rows = [(_t1(cohort, k), g, k, k / 2) for k, g in zip((1, 2, 3), ("pd", "hc", "pd"), strict=True)]
    table = _csv(tmp_path / "t.csv", ["path", "dx", "a", "b"], rows)
    x = {"column": "path"}
    ds = datasets.CSVDataset(table, x, {"column": "dx"})
    assert ds.classes == ("hc", "pd") and [ds[i][1] for i in range(3)] == [1, 0, 1]
    ds = datasets.CSVDataset(table, x, {"column": "dx", "classes": ["pd", "hc"]})
    assert [ds[i][1] for i in range(3)] == [0, 1, 0]
    with pytest.raises(
        ValueError, match=r"CSVDataset: column 'dx' .*not among the classes \['pd'\] \(row 1: 'hc'\)"
    ):
        datasets.CSVDataset(table, x, {"column": "dx", "classes": ["pd"]})
    ds = datasets.CSVDataset(table, x, {"columns": ["a", "b"]})
    assert ds[2][1] == (3.0, 1.5) and ds.classes is None
    assert next(iter(loaders.DatasetLoader(ds, batch_size=3)))[1].shape == (3, 2)

    xs = [np.zeros((4, 4)) for _ in range(3)]
    mem = datasets.MemoryDataset(xs, ["dog", "cat", "dog"])
    assert mem.classes == ("cat", "dog") and [mem[i][1] for i in range(3)] == [1, 0, 1]
    mem = datasets.MemoryDataset(xs, ["dog", "cat", "dog"], classes=["dog", "cat"])
    assert [mem[i][1] for i in range(3)] == [0, 1, 0]
    with pytest.raises(ValueError, match=r"must all be text, but y\[1\] is 2.0"):
        datasets.MemoryDataset(xs, ["dog", 2.0, "dog"])


def test_bids_dataset_takes_class_names_and_columns(cohort):
    pytest.importorskip("bids")
    ds = datasets.BIDSDataset(cohort, x={"suffix": "T1w"}, y={"column": "group"})
    assert ds.classes == ("control", "patient")
    assert ds.decode([ds[i][1] for i in range(len(ds))]).tolist() == [
        _table(cohort)[i]["group"] for i in ds.ids
    ]
    ds = datasets.BIDSDataset(cohort, x={"suffix": "T1w"}, y={"columns": ["age", "score"]})
    row = _table(cohort)[ds.ids[1]]
    assert ds[1][1] == (float(row["age"]), float(row["score"]))


# -- torch classification ------------------------------------------------------------------------------
def test_encoded_labels_train_a_classifier_and_decode_its_predictions(cohort, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from nitrain import models, trainers

    ds = datasets.FolderDataset(cohort, X, {"file": "participants.tsv", "column": "group"})
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16**3, len(ds.classes)))
    trainer = trainers.ModelTrainer(model, "cross_entropy", metrics=["accuracy"], verbose=0)
    history = trainer.fit(loaders.DatasetLoader(ds, batch_size=3, shuffle=True, seed=0), epochs=1)
    assert np.isfinite(history["loss"][0]) and 0 <= history["accuracy"][0] <= 1
    logits = trainer.predict(loaders.DatasetLoader(ds, batch_size=3))
    assert logits.shape == (6, 2)
    assert set(ds.decode(logits).tolist()) <= set(ds.classes)

    # the class names go into the model card and come back with the fetched model
    monkeypatch.setenv("NITRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NITRAIN_REGISTRY", raising=False)
    net = models.fetch_architecture("basic", dim=3)((16, 16, 16, 1), number_of_outcomes=2)
    card = models.register_pretrained(net, "group-net", classes=ds.classes)
    assert card["classes"] == ["control", "patient"]
    back = models.fetch_pretrained("group-net")
    assert back.nitrain_card["classes"] == ["control", "patient"]
    with torch.no_grad():
        out = back(torch.zeros(2, 1, 16, 16, 16))
    assert datasets.decode_classes(back.nitrain_card["classes"], out).shape == (2,)
    assert models.register_pretrained(net, "plain-net")["classes"] is None
    with pytest.raises(ValueError, match="register_pretrained: classes must be distinct"):
        models.register_pretrained(net, "bad-net", classes=["a", "a"])


# -- several columns --------------------------------------------------------------------------------------
def test_several_columns_give_a_vector_per_record_through_loaders_and_samplers(cohort):
    ds = datasets.FolderDataset(cohort, X, {"file": "participants.tsv", "columns": ["age", "score"]})
    table = _table(cohort)
    rows = [(float(table[i]["age"]), float(table[i]["score"])) for i in ds.ids]
    assert ds[0][1] == rows[0] and ds.classes is None  # a tuple of floats per record
    want = np.array(rows, np.float32)
    batch = next(iter(loaders.DatasetLoader(ds, batch_size=4)))
    assert batch[1].shape == (4, 2) and batch[1].dtype == np.float32
    np.testing.assert_array_equal(batch[1], want[:4])
    loader = loaders.DatasetLoader(
        ds, batch_size=3, shuffle=True, seed=0, sampler=samplers.SliceSampler(sub_batch_size=5, shuffle=True)
    )
    seen = 0
    for b in loader:
        assert b[0].shape[1:] == (16, 16, 1) and b[1].shape == (len(b[0]), 2)
        np.testing.assert_array_equal(b[1], want[b.records])  # each slice carries its record's vector
        seen += len(b[0])
    assert seen == 6 * 16
    one = datasets.FolderDataset(cohort, X, {"file": "participants.tsv", "columns": ["age"]})
    assert next(iter(loaders.DatasetLoader(one, batch_size=2)))[1].shape == (2, 1)


def test_bad_column_lists_are_errors(cohort):
    def build(y):
        return datasets.FolderDataset(cohort, X, {"file": "participants.tsv", **y})

    with pytest.raises(ValueError, match="column 'group' of .* holds text .*must hold numbers"):
        build({"columns": ["age", "group"]})
    with pytest.raises(ValueError, match="gives both 'column' and 'columns'"):
        build({"column": "age", "columns": ["age"]})
    with pytest.raises(ValueError, match="'classes' goes with one 'column'"):
        build({"columns": ["age"], "classes": ["a"]})
    with pytest.raises(ValueError, match="names a column more than once"):
        build({"columns": ["age", "age"]})
    with pytest.raises(ValueError, match="must be a non-empty list of column names"):
        build({"columns": "age"})
    with pytest.raises(KeyError, match="column 'iq' not in"):
        build({"columns": ["age", "iq"]})


# -- spec keys ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "x, y, key",
    [
        ({**X, "group": "patient"}, {"file": "participants.tsv", "column": "age"}, "group"),
        (X, {"file": "participants.tsv", "column": "age", "group": "patient"}, "group"),
        (X, {"pattern": "sub-*/anat/*_T1w.nii.gz", "column": "age"}, "column"),
        (X, {"file": "participants.tsv", "colum": "age"}, "colum"),
    ],
)
def test_folder_dataset_rejects_unknown_spec_keys(cohort, x, y, key):
    with pytest.raises(
        ValueError, match=rf"FolderDataset: (x|y) .* has unknown key '{key}'; accepted keys: \["
    ):
        datasets.FolderDataset(cohort, x, y)


def test_csv_and_bids_datasets_reject_unknown_spec_keys(cohort, tmp_path):
    path = _csv(tmp_path / "u.csv", ["path", "age"], [(_t1(cohort, k), 30 + k) for k in (1, 2)])
    with pytest.raises(
        ValueError,
        match=r"CSVDataset: y .* unknown key 'group'; accepted keys: \['column', 'columns', 'classes'\]",
    ):
        datasets.CSVDataset(path, {"column": "path"}, {"column": "age", "group": "patient"})
    with pytest.raises(
        ValueError, match=r"CSVDataset: x\[1\] .* unknown key 'file'; accepted keys: \['column'\]"
    ):
        datasets.CSVDataset(path, [{"column": "path"}, {"column": "path", "file": "a"}], {"column": "age"})
    pytest.importorskip("bids")
    with pytest.raises(ValueError, match=r"BIDSDataset: y .* unknown key 'group'; accepted keys: \['file'"):
        datasets.BIDSDataset(cohort, x={"suffix": "T1w"}, y={"column": "age", "group": "patient"})
    with pytest.raises(ValueError, match=r"BIDSDataset: y .* unknown key 'suffix'"):
        datasets.BIDSDataset(cohort, x={"suffix": "T1w"}, y={"column": "age", "suffix": "dseg"})
    with pytest.raises(
        ValueError, match=r"BIDSDataset: x .* unknown key 'sufix'; accepted keys: \[.*'suffix'"
    ):
        datasets.BIDSDataset(cohort, x={"sufix": "T1w"}, y={"column": "age"})
