import copy
import json
import sys

import numpy as np
import pytest

from nitrain import datasets
from nitrain.cli import main
from nitrain.config import (
    EXAMPLE,
    KEYS,
    ConfigError,
    _best_epoch,
    _toml_module,
    build,
    load,
    run,
    sampler_names,
)

pytest.importorskip("torch")
toml = _toml_module()  # tomllib, or tomli on Python 3.10


def example_text(cohort, out) -> str:
    """``EXAMPLE`` (the config ``nitrain train --help`` shows) pointed at a small phantom cohort."""
    text = EXAMPLE
    for old, new in [
        ('"ds004711"', f'"{cohort}"'),
        ('"runs/brain-age"', f'"{out}"'),
        ("[64, 64, 1]", "[20, 20, 1]"),
        ("[16, 32, 64]", "[8, 16]"),
        ("epochs = 20", "epochs = 2"),
        ("sub_batch_size = 32", "sub_batch_size = 16"),
    ]:
        assert text.count(old) == 1, old  # EXAMPLE changed: update this test
        text = text.replace(old, new)
    return text


def example(cohort, out) -> dict:
    return toml.loads(example_text(cohort, out))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return datasets.make_phantom_cohort(
        tmp_path_factory.mktemp("c") / "ds", n_subjects=8, seed=1, shape=(20, 20, 20), labels=True
    )


@pytest.fixture(scope="module")
def other_cohort(tmp_path_factory):
    return datasets.make_phantom_cohort(
        tmp_path_factory.mktemp("c2") / "ds", n_subjects=8, seed=2, shape=(20, 20, 20)
    )


def test_the_help_example_names_every_accepted_key():
    cfg = toml.loads(EXAMPLE)
    assert set(cfg) == KEYS["config"]
    for section in ("dataset", "loader", "model", "trainer"):
        assert set(cfg[section]) == KEYS[section], section
    assert set(cfg["sampler"]) <= set(sampler_names())


def test_train_from_a_toml_config(cohort, tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(example_text(cohort, tmp_path / "out"))
    assert main(["train", str(cfg)]) == 0
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert len(history["loss"]) == 2 and "val_loss" in history and "val_mae" in history


def test_a_short_run_saves_the_final_and_best_models_and_says_where(cohort, tmp_path, capsys):
    """3 epochs with checkpoints every 10: before, only history.json was written."""
    import torch

    out = tmp_path / "out"
    cfg = tmp_path / "run.toml"
    cfg.write_text(example_text(cohort, out))
    history = run(cfg, epochs=3)
    ckpt = out / "checkpoints"
    assert sorted(p.name for p in ckpt.iterdir()) == ["best.pt", "final.pt"]
    final = torch.load(ckpt / "final.pt", weights_only=False)
    assert final["epoch"] == 3
    best = _best_epoch(history["val_loss"], "val_loss")
    value = history["val_loss"][best]
    assert torch.load(ckpt / "best.pt", weights_only=False)["epoch"] == best + 1
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "trained 3 of 3 epochs; wrote:",
        f"  {out / 'history.json'}: loss, metrics and lr of every epoch",
        f"  {ckpt / 'final.pt'}: the model after epoch 3",
        f"  {ckpt / 'best.pt'}: the model of epoch {best + 1}, best val_loss = {value:.4g}",
    ]


def test_periodic_checkpoints_and_their_listing(cohort, tmp_path, capsys):
    cfg = example(cohort, tmp_path / "out")
    cfg["trainer"].update(checkpoint_freq=1, monitor="val_mae")
    path = tmp_path / "run.yaml"
    yaml = pytest.importorskip("yaml")
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--epochs", "2"]) == 0
    ckpt = tmp_path / "out" / "checkpoints"
    names = sorted(p.name for p in ckpt.iterdir())
    assert names == ["best.pt", "epoch_001.pt", "epoch_002.pt", "final.pt"]
    printed = capsys.readouterr().out
    assert f"{ckpt / 'epoch_001.pt'}: periodic checkpoint" in printed
    assert "best val_mae = " in printed


def test_the_final_model_is_saved_without_checkpoints_or_validation_metric_changes(cohort, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        example_text(cohort, tmp_path / "out").replace("checkpoint_freq = 10", "checkpoint_freq = 0")
    )
    run(cfg, epochs=1, verbose=0)
    assert (tmp_path / "out" / "checkpoints" / "final.pt").is_file()


def test_the_final_model_after_early_stopping_is_the_restored_best(cohort, tmp_path, capsys):
    """lr 1e-12 leaves the float32 weights as they are and group norm keeps no running statistics, so the
    validation loss repeats exactly: no improvement after epoch 1, and patience 1 stops after epoch 2."""
    text = example_text(cohort, tmp_path / "out").replace("lr = 0.001 ", "lr = 1e-12 ")
    text = text.replace("early_stopping = 5 ", "early_stopping = 1 ")
    text = text.replace("[8, 16] }", '[8, 16], norm = "group" }')
    path = tmp_path / "run.toml"
    path.write_text(text)
    history = run(path, epochs=5)
    assert len(history["loss"]) == 2 and history["val_loss"][0] == history["val_loss"][1]
    printed = capsys.readouterr().out
    final = tmp_path / "out" / "checkpoints" / "final.pt"
    assert "trained 2 of 5 epochs; wrote:" in printed
    assert f"  {final}: early stopping after epoch 2 restored epoch 1's weights" in printed


def test_best_epoch_follows_the_monitored_direction():
    assert _best_epoch([3.0, 1.0, 1.0, 2.0], "val_loss") == 1
    assert _best_epoch([0.1, 0.5, 0.5, 0.2], "val_r2") == 1
    assert _best_epoch([float("nan"), 0.3], "accuracy") == 1
    assert _best_epoch([float("nan")], "loss") is None


def test_a_keras_model_from_the_framework_override(cohort, tmp_path):
    pytest.importorskip("keras")
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        example_text(cohort, tmp_path / "out").replace("checkpoint_freq = 10", "checkpoint_freq = 1")
    )
    parts = build(load(cfg))
    assert type(parts["trainer"]).__name__ == "ModelTrainer"
    assert main(["train", str(cfg), "--framework", "keras"]) == 0
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert len(history["loss"]) == 2 and "val_loss" in history
    saved = sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir())
    assert saved == [
        "best.weights.h5",
        "epoch_001.weights.h5",
        "epoch_002.weights.h5",
        "final.weights.h5",
    ], saved


# -- every accepted key acts ----------------------------------------------------------------------------


def _first_x(parts):
    x, _ = next(iter(parts["train"]))
    return x


def _record(i, which):
    return lambda parts: parts["dataset"][i][which]


def _n_params(parts):
    return sum(p.numel() for p in parts["trainer"].model.parameters())


def _spec(key):
    return lambda parts: parts["trainer"].model.nitrain_spec[key]


def _set(section, **values):
    def edit(cfg):
        if section is None:
            cfg.update(values)
        else:
            cfg.setdefault(section, {}).update(values)

    return edit


def _drop(section, key=None):
    def edit(cfg):
        if key is None:
            del cfg[section]
        else:
            del cfg[section][key]

    return edit


def _both(*edits):
    def edit(cfg):
        for e in edits:
            e(cfg)

    return edit


_DSEG = {"pattern": "sub-*/anat/*_dseg.nii.gz"}
_3D = _set("model", dim=3, input_image_size=[8, 8, 8, 1])

# (section, key) -> (edit of the example config, what to look at) when the key changes what is built, or
# (edit, "refused", the start of the error) when the edited value is refused. Where a key only acts
# together with another one, an edit of the base config comes third (applied to both sides).
EFFECTS = {
    ("config", "output"): (_set(None, output="elsewhere"), lambda p: p["output"].name),
    ("config", "epochs"): (_set(None, epochs=3), lambda p: p["epochs"]),
    ("config", "seed"): (_set(None, seed=5), lambda p: tuple(p["train"].dataset.ids)),
    ("config", "dataset"): (_drop("dataset"), "refused", "config: missing key 'dataset'"),
    ("config", "loader"): (_drop("loader"), _first_x),  # its random noise goes
    ("config", "sampler"): (_drop("sampler"), "refused", r"model.input_image_size: \[20, 20, 1\] does not"),
    ("config", "model"): (_drop("model"), "refused", "config: missing key 'model'"),
    ("config", "trainer"): (_drop("trainer"), "refused", "config: missing key 'trainer'"),
    ("dataset", "base_dir"): ("other cohort", lambda p: tuple(p["dataset"][:][1])),
    ("dataset", "x"): (_set("dataset", x=_DSEG), lambda p: p["dataset"][0][0].numpy()),
    ("dataset", "y"): (_set("dataset", y=_DSEG), lambda p: type(p["dataset"][0][1]).__name__),
    ("dataset", "x_transforms"): (_set("dataset", x_transforms=[]), lambda p: p["dataset"][0][0].numpy()),
    ("dataset", "y_transforms"): (
        _set("dataset", y_transforms=[{"RangeNormalize": [0, 1]}]),
        lambda p: p["dataset"][0][1].numpy(),
        _set("dataset", y=_DSEG),
    ),
    ("dataset", "split"): (_set("dataset", split=0.5), lambda p: len(p["train"].dataset)),
    ("dataset", "cache"): (_set("dataset", cache=False), lambda p: type(p["dataset"].cache).__name__),
    ("loader", "batch_size"): (_set("loader", batch_size=2), lambda p: len(p["train"])),
    ("loader", "shuffle"): (_set("loader", shuffle=False), _first_x),
    ("loader", "x_transforms"): (_set("loader", x_transforms=[]), _first_x),
    ("loader", "expand_dims"): (_set("loader", expand_dims=1), _first_x),
    ("sampler", "SliceSampler"): (_set("sampler", SliceSampler={"sub_batch_size": 8}), _first_x),
    ("sampler", "BlockSampler"): (
        _both(_drop("sampler"), _set("sampler", BlockSampler={"block_size": [8, 8, 8], "n_blocks": 2}), _3D),
        _first_x,
    ),
    ("sampler", "PatchSampler"): (
        _both(_drop("sampler"), _set("sampler", PatchSampler={"patch_size": [8, 8]})),
        "refused",
        "PatchSampler.*needs 2-D images",  # 2-D patches of 2-D images; these are 3-D
    ),
    ("sampler", "SlicePatchSampler"): (
        _both(
            _drop("sampler"),
            _set("sampler", SlicePatchSampler={"patch_size": [8, 8], "n_patches": 4}),
            _set("model", input_image_size=[8, 8, 1]),
        ),
        _first_x,
    ),
    ("sampler", "LabelSampler"): (
        _both(
            _drop("sampler"),
            _set("sampler", LabelSampler={"block_size": [8, 8, 8], "n_blocks": 2}),
            _set("dataset", y=_DSEG),
            _3D,
        ),
        _first_x,
    ),
    ("model", "architecture"): (
        _both(_set("model", architecture="alexnet"), _drop("model", "options")),
        _spec("name"),
    ),
    ("model", "dim"): (_set("model", dim=3), "refused", "model"),
    ("model", "framework"): (_set("model", framework="keras"), lambda p: p["trainer"].framework),
    ("model", "input_image_size"): (
        _set("model", input_image_size=[24, 24, 1]),
        "refused",
        r"model.input_image_size: \[24, 24, 1\] does not match the training items, which are \[20, 20, 1\]",
    ),
    ("model", "number_of_outcomes"): (_set("model", number_of_outcomes=2), _spec("number_of_outcomes")),
    ("model", "mode"): (_set("model", mode="classification"), _spec("mode")),
    ("model", "options"): (_set("model", options={"filters": [4, 8]}), _n_params),
    ("trainer", "loss"): (_set("trainer", loss="mae"), lambda p: p["trainer"].loss_name),
    ("trainer", "optimizer"): (_set("trainer", optimizer="sgd"), lambda p: type(p["trainer"].optimizer)),
    ("trainer", "lr"): (_set("trainer", lr=0.01), lambda p: p["trainer"].get_lr()),
    ("trainer", "metrics"): (
        _both(_set("trainer", metrics=["r2"]), _set("trainer", monitor="val_r2")),
        lambda p: sorted(p["trainer"].evaluate(p["val"])),
    ),
    ("trainer", "monitor"): (_set("trainer", monitor="loss"), lambda p: p["checkpoints"].monitor),
    ("trainer", "early_stopping"): (
        _set("trainer", early_stopping=0),
        lambda p: getattr(p["early_stopping"], "patience", None),
    ),
    ("trainer", "checkpoint_freq"): (_set("trainer", checkpoint_freq=0), lambda p: p["checkpoints"].freq),
}


def test_the_table_covers_every_accepted_key():
    accepted = {(s, k) for s, keys in KEYS.items() for k in keys}
    accepted |= {("sampler", name) for name in sampler_names()}
    assert set(EFFECTS) == accepted


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and np.array_equal(a, b)
    return a == b


def test_what_the_table_looks_at_is_the_same_for_the_same_config(cohort, tmp_path):
    def built(base_edit):
        cfg = example(cohort, tmp_path / "out")
        base_edit(cfg)
        return build(cfg)

    same = {}
    for key, (_, probe, *rest) in EFFECTS.items():
        if callable(probe):
            base_edit = rest[0] if rest else (lambda cfg: None)
            if base_edit not in same:
                same[base_edit] = built(base_edit), built(base_edit)
            one, two = same[base_edit]
            assert _same(probe(one), probe(two)), key


@pytest.mark.parametrize("key", list(EFFECTS), ids=lambda k: ".".join(k))
def test_every_accepted_key_acts_or_is_refused(cohort, other_cohort, tmp_path, key):
    edit, probe, *rest = EFFECTS[key]
    if key == ("model", "framework"):
        pytest.importorskip("keras")
    base = example(cohort, tmp_path / "out")
    if len(rest) == 1 and callable(rest[0]):  # an edit both sides need
        rest[0](base)
    changed = copy.deepcopy(base)
    if edit == "other cohort":
        changed["dataset"]["base_dir"] = str(other_cohort)
    else:
        edit(changed)
    if probe == "refused":
        with pytest.raises(ConfigError, match=rest[0]):
            build(changed)
        return
    assert not _same(probe(build(base)), probe(build(changed))), key


# -- clear errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set(None, batchsize=3), r"config: unknown key 'batchsize'; allowed: \["),
        (_set("dataset", basedir="x"), "dataset: unknown key 'basedir'"),
        (_set("loader", workers=3), "loader: unknown key 'workers'; allowed:"),
        (_set("model", depth=3), "model: unknown key 'depth'"),
        (_set("trainer", epochs=3), "trainer: unknown key 'epochs'"),
        (
            _both(_drop("sampler"), _set("sampler", CubeSampler={})),
            "sampler: unknown sampler 'CubeSampler'; allowed: .*Slice",
        ),
        (
            _set("dataset", x_transforms=[{"Normalise": [0, 1]}]),
            r"dataset.x_transforms\[0\]: unknown transform 'Normalise'; allowed:",
        ),
        (
            _both(_set("dataset", y=_DSEG), _set("dataset", y_transforms=[{"Binarise": 1}])),
            r"dataset.y_transforms\[0\]: unknown transform 'Binarise'",
        ),
        (
            _set("dataset", y_transforms=[{"RangeNormalize": [0, 1]}]),
            "dataset.y_transforms: transforms apply to image targets",
        ),
        (
            _set("loader", x_transforms=[{"RandomNose": {"sd": 1}}]),
            r"loader.x_transforms\[0\]: unknown transform 'RandomNose'",
        ),
        (_set("loader", x_transforms={"RandomNoise": {"sd": 1}}), "loader.x_transforms: expected a list"),
        (
            _set("loader", x_transforms=[{"CustomFunction": "print"}]),
            "unknown transform 'CustomFunction'",  # needs a python function: not from a config
        ),
        (
            _set("loader", x_transforms=[{"RandomNoise": {"sdev": 1}}]),
            r"loader.x_transforms\[0\]: RandomNoise",
        ),
        (_set("loader", expand_dims=2), 'loader.expand_dims: must be -1, 0, 1 or "none", got 2'),
        (_set("loader", shuffle="yes"), "loader.shuffle: must be true or false"),
        (_set("loader", batch_size=0), "loader: DatasetLoader: batch_size"),
        (_set("dataset", split=1.0), "dataset.split: must be a fraction between 0 and 1"),
        (_set("dataset", split=0.99), "dataset.split: 0.99 of 8 subjects leaves 8 for training and 0"),
        (_set("dataset", cache="ram"), 'dataset.cache: must be "memory", "disk" or false'),
        (_set("dataset", x_transforms=[{"RandomNoise": {"sd": 1}}]), "dataset: .*cached datasets take fixed"),
        (_set("model", architecture="lenet"), "model.architecture: unknown architecture 'lenet'"),
        (_set("model", framework="jax"), "model.framework: unknown framework"),
        (_set("model", dim=4), "model.dim: architecture 'basic' does not support dim=4"),
        (_set("model", options={"widths": [4]}), r"model.options: basic: unknown option\(s\) \['widths'\]"),
        (_set("model", mode="segmentation"), "model.mode: "),
        (_set("model", input_image_size="20x20"), "model.input_image_size: must be a list of integers"),
        (_set("trainer", loss="hinge"), "trainer: "),
        (_set("trainer", metrics="mae"), "trainer.metrics: must be a list of metric names"),
        (
            _set("trainer", monitor="val_accuracy"),
            "trainer.monitor: 'val_accuracy' is not logged",
        ),
        (_set("trainer", early_stopping=-1), "trainer.early_stopping: must be an integer >= 0"),
        (_set("trainer", checkpoint_freq=1.5), "trainer.checkpoint_freq: must be an integer >= 0"),
        (_set(None, epochs=0), "config: 'epochs': must be an integer >= 1"),
        (_set(None, seed=True), "config: 'seed' must be an integer, got True"),
        (_set("sampler", SliceSampler={"axis": 5}), r"sampler: SliceSampler: axis 5 is out of range"),
        (
            _set("dataset", y={"file": "participants.tsv", "column": "agee"}),
            "dataset: .*column 'agee' not in",
        ),
    ],
)
def test_bad_configs_name_the_key(cohort, tmp_path, edit, message):
    cfg = example(cohort, tmp_path / "out")
    edit(cfg)
    with pytest.raises(ConfigError, match=message):
        build(cfg)


def test_the_seed_sets_the_initial_weights(cohort, tmp_path):
    def weights(seed):
        cfg = example(cohort, tmp_path / "out")
        cfg["seed"] = seed
        return np.concatenate([p.detach().numpy().ravel() for p in build(cfg)["trainer"].model.parameters()])

    assert np.array_equal(weights(0), weights(0))
    assert not np.array_equal(weights(0), weights(1))


def test_unreadable_configs(tmp_path, capsys):
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path)  # a folder
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 2")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)
    assert main(["train", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    other = tmp_path / "run.json"
    other.write_text("{}")
    with pytest.raises(ConfigError, match="expected a .toml, .yaml or .yml file"):
        load(other)


# -- TOML on Python 3.10 -----------------------------------------------------------------------------------


def test_python_3_11_reads_toml_with_tomllib():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    assert _toml_module((3, 11, 0)) is tomllib
    assert toml is tomllib


def test_python_3_10_reads_toml_with_tomli(tmp_path, monkeypatch):
    """On 3.10 ``load`` goes through ``tomli``. Where the backport is not installed, the standard
    library's ``tomllib`` (the same parser and API: tomli became tomllib) stands in for it."""
    try:
        import tomli
    except ImportError:
        import tomllib as tomli
    monkeypatch.setitem(sys.modules, "tomli", tomli)
    monkeypatch.setattr(sys, "version_info", (3, 10, 13, "final", 0))
    assert _toml_module() is tomli
    good = tmp_path / "good.toml"
    good.write_text('epochs = 3\n[model]\narchitecture = "basic"\n')
    assert load(good) == {"epochs": 3, "model": {"architecture": "basic"}}
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 2")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load(bad)


def test_python_3_10_without_tomli_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tomli", None)  # import tomli -> ImportError
    monkeypatch.setattr(sys, "version_info", (3, 10, 13, "final", 0))
    cfg = tmp_path / "run.toml"
    cfg.write_text("epochs = 3\n")
    with pytest.raises(ConfigError, match=r"Python 3.10 need tomli \(pip install 'tomli>=1.1'\)"):
        load(cfg)
