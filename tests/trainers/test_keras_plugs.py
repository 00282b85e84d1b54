"""keras' own callbacks in ModelTrainer, keras.models.load_model of a model ModelTrainer trained, and the
line per epoch logged when no progress bar can be shown (torch and keras)."""

import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from nitrain import datasets, loaders, trainers, utils  # noqa: E402

L = keras.layers


def _data(n=24, size=8, seed=0, classes=None):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(size, size)).astype(np.float32) for _ in range(n)]
    if classes:
        return datasets.MemoryDataset(xs, [int(rng.integers(0, classes)) for _ in xs])
    return datasets.MemoryDataset(xs, [float(3.0 * x.mean() + 1.0) for x in xs])


def _loader(ds, batch_size=6, shuffle=False, seed=0):
    return loaders.DatasetLoader(ds, batch_size=batch_size, shuffle=shuffle, seed=seed)


def _conv(outputs=1, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(outputs),
        ]
    )


def _flat(model):
    return np.concatenate([np.ravel(w) for w in model.get_weights()])


class _Weights(utils.Callback):
    """The model's weights after every epoch."""

    def __init__(self):
        self.after = []

    def on_epoch_end(self, epoch, logs=None):
        self.after.append(_flat(self.trainer.model))


# -- keras callbacks ---------------------------------------------------------------------------------------
def test_reduce_lr_on_plateau_lowers_the_lr_the_next_epoch_trains_with():
    # min_delta=10: no epoch after the first counts as an improvement, so the LR drops after epoch 2
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.1, patience=1, min_delta=10.0)
    record = _Weights()
    trainer = trainers.ModelTrainer(
        _conv(), "mse", optimizer=keras.optimizers.SGD(0.01), callbacks=[plateau, record], verbose=0
    )
    h = trainer.fit(_loader(_data()), epochs=3)
    assert h["lr"] == [pytest.approx(0.01), pytest.approx(0.01), pytest.approx(0.001)]
    assert trainer.get_lr() == pytest.approx(1e-4, rel=1e-5)  # and again after the third
    # the third epoch's SGD steps (same batches, no momentum) are about a tenth of the second's
    step2 = np.linalg.norm(record.after[1] - record.after[0])
    step3 = np.linalg.norm(record.after[2] - record.after[1])
    assert step2 > 0 and step3 < 0.3 * step2


def test_keras_early_stopping_stops_the_trainer_and_restores_the_best_weights():
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=2, min_delta=1.0, restore_best_weights=True
    )
    record = _Weights()
    trainer = trainers.ModelTrainer(_conv(), "mse", lr=1e-2, callbacks=[stop, record], verbose=0)
    h = trainer.fit(_loader(_data()), epochs=20, validation=_loader(_data(8, seed=2)))
    assert len(h["loss"]) == 3 and trainer.epoch == 3 and stop.stopped_epoch == 2
    assert trainer.stop_training and trainer.model.stop_training
    assert np.array_equal(_flat(trainer.model), record.after[0])  # the best (first) epoch's weights
    # a new fit starts afresh: the flag set by the callback does not stop it at once
    h = trainer.fit(_loader(_data()), epochs=1, validation=_loader(_data(8, seed=2)))
    assert len(h["loss"]) == 1


def test_keras_early_stopping_knows_which_way_nitrain_metrics_improve():
    stop = keras.callbacks.EarlyStopping(monitor="val_r2", patience=1)  # mode 'auto': r2 is 'up'
    trainer = trainers.ModelTrainer(_conv(), "mse", lr=1e-2, metrics=["r2"], callbacks=[stop], verbose=0)
    h = trainer.fit(_loader(_data()), epochs=2, validation=_loader(_data(8, seed=2)))
    assert len(h["val_r2"]) >= 1


def test_tensorboard_writes_train_and_validation_events(tmp_path):
    pytest.importorskip("tensorboard")  # tf.summary needs it
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"))
    trainer = trainers.ModelTrainer(_conv(), "mse", metrics=["mae"], callbacks=[board], verbose=0)
    trainer.fit(_loader(_data()), epochs=2, validation=_loader(_data(8, seed=2)))
    tags: dict = {}
    for split in ("train", "validation"):
        files = [f for f in os.listdir(tmp_path / "tb" / split) if f.startswith("events.out.tfevents")]
        assert files, split
        for f in files:
            for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "tb" / split / f)):
                for v in event.summary.value:
                    tags.setdefault(split, {}).setdefault(v.tag, set()).add(event.step)
    assert tags["train"]["epoch_loss"] == {0, 1} and tags["train"]["epoch_mae"] == {0, 1}
    assert tags["train"]["epoch_learning_rate"] == {0, 1}
    assert tags["validation"]["epoch_loss"] == {0, 1}
    assert "evaluation_loss_vs_iterations" in tags["validation"]  # from the forwarded on_test_end


def test_keras_csv_logger_and_batch_hooks(tmp_path):
    batches = []

    class Batches(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(("train", batch, sorted(logs)))

        def on_test_batch_end(self, batch, logs=None):
            batches.append(("test", batch))

    log = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    trainer = trainers.ModelTrainer(_conv(), "mse", callbacks=[log, Batches()], verbose=0)
    trainer.fit(_loader(_data()), epochs=2, validation=_loader(_data(8, seed=2)))
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].split(",") == ["epoch", "loss", "lr", "val_loss"] and len(rows) == 3
    assert rows[2].startswith("1,")
    train = [b for b in batches if b[0] == "train"]
    assert [b[1] for b in train] == [0, 1, 2, 3] * 2 and "loss" in train[0][2]  # 24 records, batches of 6
    assert [b[1] for b in batches if b[0] == "test"] == [0, 1] * 2
    batches.clear()
    trainer.evaluate(_loader(_data(8, seed=2)))  # outside fit the keras callbacks are not called
    assert batches == []


def test_keras_callbacks_are_refused_for_torch_models_and_backup_and_restore(tmp_path):
    torch = pytest.importorskip("torch")
    with pytest.raises(
        TypeError, match=r"callbacks\[1\] is a keras callback .*ReduceLROnPlateau.*nitrain\.utils"
    ):
        trainers.ModelTrainer(
            torch.nn.Linear(2, 1),
            "mse",
            callbacks=[utils.CSVLogger(tmp_path / "a.csv"), keras.callbacks.ReduceLROnPlateau()],
        )
    with pytest.raises(TypeError, match="BackupAndRestore.*ModelCheckpoints"):
        trainers.ModelTrainer(
            _conv(), "mse", callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "b"))]
        )
    with pytest.raises(TypeError, match=r"callbacks\[0\] = 3 is not a callback"):
        trainers.ModelTrainer(_conv(), "mse", callbacks=[3])


# -- keras.models.load_model -------------------------------------------------------------------------------
_LOAD = textwrap.dedent(
    """
    import json, sys
    {imports}
    import numpy as np
    d = np.load(sys.argv[1] + '/data.npz')
    out = {{}}
    for name in ('reg', 'cls'):
        m = keras.models.load_model(sys.argv[1] + '/' + name + '.keras')
        same = bool(np.array_equal(m.predict(d['x'], verbose=0), d[name]))
        ev = m.evaluate(d['x'], d['y_' + name], verbose=0, return_dict=True)
        metrics = sorted(type(x).__name__ for x in m.metrics[1].metrics)
        out[name] = {{'same': same, 'eval': ev, 'metrics': metrics}}
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A regression and a classification model, one epoch each with ModelTrainer, saved as .keras files
    with 12 images, their targets, the trainers' predictions and evaluations."""
    folder = tmp_path_factory.mktemp("saved")
    ds_reg, ds_cls = _data(), _data(classes=3)  # the same images
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(8, 8)).astype(np.float32) for _ in range(12)]  # _data's first 12 images
    reg = trainers.ModelTrainer(_conv(), "mse", metrics=["mae", "r2"], verbose=0)
    reg.fit(_loader(ds_reg), epochs=1)
    cls = trainers.ModelTrainer(_conv(outputs=3), "cross_entropy", metrics=["accuracy", "dice"], verbose=0)
    cls.fit(_loader(ds_cls), epochs=1)
    reg.model.save(folder / "reg.keras")
    cls.model.save(folder / "cls.keras")
    imgs = arrays
    y_reg = np.array([ds_reg[i][1] for i in range(12)], np.float32)
    y_cls = np.array([ds_cls[i][1] for i in range(12)])
    x = np.stack(imgs)[..., None]
    np.savez(
        folder / "data.npz",
        x=x,
        y_reg=y_reg,
        y_cls=y_cls,
        reg=reg.model.predict(x, verbose=0),
        cls=cls.model.predict(x, verbose=0),
    )
    evals = {
        "reg": reg.evaluate(_loader(datasets.MemoryDataset(imgs, list(y_reg)), 12)),
        "cls": cls.evaluate(_loader(datasets.MemoryDataset(imgs, list(y_cls)), 12)),
    }
    return folder, evals


def _load_in_fresh_process(folder, imports: str) -> dict:
    import json

    code = _LOAD.format(imports=imports)
    run = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _check_loaded(out, evals):
    assert out["reg"]["same"] and out["cls"]["same"]  # the same predictions
    assert out["reg"]["metrics"] == ["EpochError", "EpochR2"]
    assert out["cls"]["metrics"] == ["EpochAccuracy", "EpochDice"]
    for name, keys in (("reg", ("loss", "mae", "r2")), ("cls", ("loss", "accuracy", "dice"))):
        for k in keys:
            assert out[name]["eval"][k] == pytest.approx(evals[name][k], rel=1e-5), (name, k)


def test_load_model_after_import_nitrain_and_keras(saved_models):
    """The issue's case: a process that only imported nitrain, then keras."""
    _check_loaded(_load_in_fresh_process(saved_models[0], "import nitrain\nimport keras"), saved_models[1])


@pytest.mark.parametrize(
    "imports",
    ["import nitrain.trainers\nimport keras", "import keras\nimport nitrain.trainers"],
    ids=["nitrain-first", "keras-first"],
)
def test_load_model_after_importing_nitrain_trainers(saved_models, imports):
    _check_loaded(_load_in_fresh_process(saved_models[0], imports), saved_models[1])


def test_without_nitrain_load_model_names_the_nitrain_class(saved_models):
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import keras, sys; keras.models.load_model(sys.argv[1] + '/reg.keras')",
            str(saved_models[0]),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0 and "nitrain>EpochError" in run.stderr


# -- progress lines --------------------------------------------------------------------------------------
def test_keras_training_logs_a_line_per_epoch_without_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="nitrain")
    trainer = trainers.ModelTrainer(_conv(), "mse", metrics=["mae"], verbose=1)
    trainer.fit(_loader(_data()), epochs=2, validation=_loader(_data(8, seed=2)))
    lines = [r.getMessage() for r in caplog.records if r.name == "nitrain.trainers"]
    assert len(lines) == 2
    assert lines[1].startswith("epoch 2/2: loss=") and "val_loss=" in lines[1] and "mae=" in lines[1]
    caplog.clear()
    trainers.ModelTrainer(_conv(), "mse", verbose=0).fit(_loader(_data()), epochs=1)
    assert not [r for r in caplog.records if r.name == "nitrain.trainers"]


def test_torch_training_logs_a_line_per_epoch_without_a_terminal(caplog):
    pytest.importorskip("torch")
    from ._helpers import make_loader, regression_dataset, small_conv

    caplog.set_level(logging.INFO, logger="nitrain.trainers")
    loader = make_loader(regression_dataset(8), batch_size=4)
    trainers.ModelTrainer(small_conv(), "mse", verbose=1).fit(loader, epochs=3, validation=loader)
    lines = [r.getMessage() for r in caplog.records if r.name == "nitrain.trainers"]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("loss=" in line and "val_loss=" in line and "lr=" in line for line in lines)


def test_progress_goes_to_stderr_when_logging_is_not_configured():
    pytest.importorskip("torch")
    code = textwrap.dedent(
        """
        import logging
        import numpy as np, torch
        from nitrain import datasets, loaders, trainers
        xs = [np.full((4, 4), i, np.float32) for i in range(8)]
        loader = loaders.DatasetLoader(datasets.MemoryDataset(xs, [float(i) for i in range(8)]), 4)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
        trainers.ModelTrainer(model, "mse").fit(loader, epochs=2)
        logging.getLogger("nitrain").setLevel(logging.WARNING)  # silenced on purpose
        trainers.ModelTrainer(model, "mse").fit(loader, epochs=1)
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = [line for line in run.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"], run.stderr
    assert run.stdout == ""
