import json

import pytest

from nitrain import datasets
from nitrain.cli import main
from nitrain.config import ConfigError, build, load

pytest.importorskip("torch")

GOOD = """
output = "{out}"
epochs = 2
seed = 0

[dataset]
base_dir = "{cohort}"
x = {{ pattern = "sub-*/anat/*_T1w.nii.gz" }}
y = {{ file = "participants.tsv", column = "age" }}
x_transforms = [ {{ NormalizeIntensity = [0, 1] }} ]
split = 0.75

[loader]
batch_size = 4
x_transforms = [ {{ RandomNoise = {{ sd = 0.05 }} }} ]

[sampler]
SliceSampler = {{ sub_batch_size = 16, axis = 2 }}

[model]
architecture = "basic"
dim = 2
input_image_size = [20, 20, 1]
mode = "regression"
options = {{ norm = "group", filters = [8, 16] }}

[trainer]
loss = "mse"
optimizer = "adam"
lr = 0.001
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return datasets.make_phantom_cohort(
        tmp_path_factory.mktemp("c") / "ds", n_subjects=8, seed=1, shape=(20, 20, 20)
    )


def test_train_from_a_toml_config(cohort, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(GOOD.format(out=tmp_path / "out", cohort=cohort))
    assert main(["train", str(cfg)]) == 0
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert len(history["loss"]) == 2 and "val_loss" in history


def test_train_a_keras_model_from_a_config(cohort, tmp_path):
    pytest.importorskip("keras")
    text = GOOD.format(out=tmp_path / "out", cohort=cohort)
    text = text.replace("dim = 2", 'dim = 2\nframework = "keras"').replace(
        "lr = 0.001", "lr = 0.001\ncheckpoint_freq = 1"
    )
    cfg = tmp_path / "run.toml"
    cfg.write_text(text)
    parts = build(load(cfg))
    assert type(parts["trainer"]).__name__ == "KerasModelTrainer"
    assert main(["train", str(cfg)]) == 0
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert len(history["loss"]) == 2 and "val_loss" in history
    saved = sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir())
    assert saved == ["epoch_001.weights.h5", "epoch_002.weights.h5"], saved


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("[loader]", "[loader]\nworkers = 3"), "loader: unknown key 'workers'; allowed:"),
        (
            lambda t: t.replace('architecture = "basic"', 'architecture = "lenet"'),
            "model.architecture: unknown",
        ),
        (lambda t: t.replace("NormalizeIntensity", "Normalise"), "unknown transform 'Normalise'; allowed:"),
        (lambda t: t.replace('loss = "mse"', 'loss = "hinge"'), "trainer:"),
        (lambda t: t.replace("SliceSampler", "CubeSampler"), "sampler: unknown sampler 'CubeSampler'"),
        (lambda t: t.replace("dim = 2", 'dim = 2\nframework = "jax"'), "model.framework: unknown framework"),
        (lambda t: t.replace("epochs = 2", "epochs = 2\nbatchsize = 3"), "config: unknown key 'batchsize'"),
        (lambda t: t.replace('base_dir = "', 'basedir = "'), "dataset: unknown key 'basedir'"),
    ],
)
def test_bad_configs_name_the_key(cohort, tmp_path, edit, message):
    text = edit(GOOD.format(out=tmp_path / "out", cohort=cohort))
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        build(load(cfg))


def test_unreadable_configs(tmp_path, capsys):
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 2")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)
    assert main(["train", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
