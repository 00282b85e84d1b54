import csv
import functools
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nitrain import datasets, loaders, samplers, trainers, utils  # noqa: E402

from ._helpers import make_loader, regression_dataset, same_weights, small_conv, weights  # noqa: E402


# -- the README snippet ------------------------------------------------------------------------------
def test_readme_snippet_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loader = make_loader(regression_dataset(), batch_size=8)
    model = small_conv()
    trainer = trainers.ModelTrainer(
        model,
        loss="mse",
        optimizer="adam",
        lr=1e-3,
        callbacks=[utils.EarlyStopping(), utils.ModelCheckpoints(freq=25)],
    )
    history = trainer.fit(loader, epochs=30)
    assert history is trainer.history
    assert len(history["loss"]) == 30  # loss keeps improving: no early stop
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert (tmp_path / "checkpoints" / "epoch_025.pt").exists()
    assert not (tmp_path / "checkpoints" / "epoch_030.pt").exists()
    assert set(history) == {"loss", "lr"}


def test_fit_with_validation_and_metrics_keys():
    train, val = make_loader(regression_dataset()), make_loader(regression_dataset(16, seed=1), shuffle=False)
    trainer = trainers.ModelTrainer(small_conv(), "mse", lr=1e-2, metrics=["mae", "r2"], verbose=0)
    h = trainer.fit(train, epochs=3, validation=val)
    assert list(h) == ["loss", "mae", "r2", "val_loss", "val_mae", "val_r2", "lr"]
    assert all(len(v) == 3 for v in h.values())
    ev = trainer.evaluate(val)
    assert ev.keys() == {"loss", "mae", "r2"}
    assert ev["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-6)


# -- metrics against numpy -----------------------------------------------------------------------------
def test_regression_metrics_match_numpy_over_the_whole_epoch():
    ds = regression_dataset(23)  # 23 records, batches of 5: uneven batches
    loader = make_loader(ds, batch_size=5, shuffle=False)
    trainer = trainers.ModelTrainer(small_conv(), "mse", metrics=["mae", "mse", "r2"], verbose=0)
    ev = trainer.evaluate(loader)
    pred = trainer.predict(loader)[:, 0].astype(np.float64)
    y = np.array([ds[i][1] for i in range(len(ds))])
    err = pred - y
    assert ev["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-5)
    assert ev["mse"] == pytest.approx((err**2).mean(), rel=1e-5)
    assert ev["loss"] == pytest.approx((err**2).mean(), rel=1e-5)
    r2 = 1 - (err**2).sum() / ((y - y.mean()) ** 2).sum()
    assert ev["r2"] == pytest.approx(r2, rel=1e-5)
    # not the mean of per-batch r2 values
    batch_r2 = [
        1 - (err[s : s + 5] ** 2).sum() / ((y[s : s + 5] - y[s : s + 5].mean()) ** 2).sum()
        for s in range(0, 23, 5)
    ]
    assert abs(np.mean(batch_r2) - r2) > 1e-3


def test_accuracy_matches_numpy():
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(8, 8)).astype(np.float32) for _ in range(21)]
    ys = [int(rng.integers(0, 3)) for _ in xs]
    loader = make_loader(datasets.MemoryDataset(xs, ys), batch_size=4, shuffle=False)
    trainer = trainers.ModelTrainer(small_conv(outputs=3), "cross_entropy", metrics=["accuracy"], verbose=0)
    ev = trainer.evaluate(loader)
    logits = trainer.predict(loader)
    assert logits.shape == (21, 3)
    assert ev["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == np.array(ys)))
    ls = logits - logits.max(1, keepdims=True)
    logp = ls - np.log(np.exp(ls).sum(1, keepdims=True))
    assert ev["loss"] == pytest.approx(-logp[np.arange(21), ys].mean(), rel=1e-5)
    trainer.fit(loader, epochs=2)  # class-index targets train without shape errors


class TinySeg(torch.nn.Module):
    def __init__(self, classes=1):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, classes, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def _seg_data(n=10, seed=4):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(8, 8)).astype(np.float32) for _ in range(n)]
    ys = [(x > 0.3).astype(np.float32) for x in xs]
    return xs, ys


def test_dice_metric_and_loss_on_segmentation():
    xs, ys = _seg_data()
    loader = make_loader(datasets.MemoryDataset(xs, ys), batch_size=3, shuffle=False)
    torch.manual_seed(0)
    trainer = trainers.ModelTrainer(TinySeg(), "dice", lr=5e-2, metrics=["dice", "accuracy"], verbose=0)
    ev = trainer.evaluate(loader)
    logits = trainer.predict(loader)
    assert logits.shape == (10, 1, 8, 8)  # channels-first, as the model returns them
    pred, truth = logits[:, 0] > 0, np.stack(ys) > 0.5
    dice = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
    assert ev["dice"] == pytest.approx(dice, rel=1e-6)
    assert ev["accuracy"] == pytest.approx((pred == truth).mean())
    h = trainer.fit(loader, epochs=15)
    assert h["loss"][-1] < h["loss"][0]
    assert h["dice"][-1] > h["dice"][0]


def test_multiclass_segmentation_with_cross_entropy_and_dice():
    xs, ys = _seg_data()
    ys = [y + (x > 1.0) for x, y in zip(xs, ys, strict=True)]  # classes 0, 1, 2 as an index map
    loader = make_loader(datasets.MemoryDataset(xs, ys), batch_size=5, shuffle=False)
    torch.manual_seed(0)
    for loss in ("cross_entropy", "dice"):
        trainer = trainers.ModelTrainer(TinySeg(3), loss, metrics=["dice"], verbose=0)
        ev = trainer.evaluate(loader)
        pred, truth = trainer.predict(loader).argmax(1), np.stack(ys)
        dices = [
            2 * ((pred == k) & (truth == k)).sum() / ((pred == k).sum() + (truth == k).sum()) for k in (1, 2)
        ]
        assert ev["dice"] == pytest.approx(np.mean(dices), rel=1e-6)
        trainer.fit(loader, epochs=1)


# -- callbacks -------------------------------------------------------------------------------------------
class FakeTrainer:
    def __init__(self):
        self.model = torch.nn.Linear(2, 1)
        self.stop_training = False
        self.is_main = True


def test_early_stopping_on_a_scripted_sequence_restores_best():
    fake = FakeTrainer()
    es = utils.EarlyStopping(monitor="val_loss", patience=3, min_delta=0.01)
    es.set_trainer(fake)
    es.on_train_begin()
    losses = [5.0, 4.0, 3.0, 2.995, 3.5, 2.999, 1.0]
    best_weights = None
    stopped_at = None
    for epoch, v in enumerate(losses):
        with torch.no_grad():
            fake.model.weight.fill_(float(epoch))
        if epoch == 2:
            best_weights = weights(fake.model)
        es.on_epoch_end(epoch, {"loss": 0.0, "val_loss": v})
        if fake.stop_training:
            stopped_at = epoch
            break
    # epochs 3, 4, 5 do not improve on 3.0 by more than 0.01 -> stop after epoch 5
    assert stopped_at == 5 and es.stopped_epoch == 5
    assert es.best_epoch == 2 and es.best == 3.0
    es.on_train_end()
    assert same_weights(weights(fake.model), best_weights)


def test_early_stopping_falls_back_to_loss_and_max_mode():
    fake = FakeTrainer()
    es = utils.EarlyStopping(patience=1, restore_best=False)
    es.set_trainer(fake)
    es.on_train_begin()
    for epoch, v in enumerate([3.0, 2.0, 2.5]):
        es.on_epoch_end(epoch, {"loss": v})
    assert fake.stop_training and es.stopped_epoch == 2 and es.best == 2.0
    acc = utils.EarlyStopping(monitor="val_accuracy", patience=1)
    acc.set_trainer(FakeTrainer())
    acc.on_train_begin()
    acc.on_epoch_end(0, {"val_accuracy": 0.5})
    acc.on_epoch_end(1, {"val_accuracy": 0.7})  # higher is better for accuracy
    assert not acc.trainer.stop_training and acc.best == 0.7
    with pytest.raises(KeyError, match="val_dice"):
        utils.EarlyStopping(monitor="val_dice").on_epoch_end(0, {"loss": 1.0})


def test_a_callback_stops_fit_and_early_stopping_restores_in_fit():
    class StopAfter(utils.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                self.trainer.stop_training = True

    trainer = trainers.ModelTrainer(small_conv(), "mse", callbacks=[StopAfter()], verbose=0)
    h = trainer.fit(make_loader(regression_dataset()), epochs=10)
    assert len(h["loss"]) == 3 and trainer.epoch == 3

    # patience 0 with a validation loss that never improves after epoch 0 -> weights of epoch 0 come back
    class Worse(utils.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = float(epoch)
            if epoch == 0:
                self.w0 = weights(self.trainer.model)

    worse, es = Worse(), utils.EarlyStopping(patience=1)
    trainer = trainers.ModelTrainer(small_conv(), "mse", lr=1e-2, callbacks=[worse, es], verbose=0)
    trainer.fit(make_loader(regression_dataset()), epochs=10)
    assert es.stopped_epoch == 1 and len(trainer.history["loss"]) == 2
    assert same_weights(weights(trainer.model), worse.w0)


def test_model_checkpoints_at_the_right_epochs(tmp_path):
    ck = utils.ModelCheckpoints(freq=3, directory=tmp_path / "ck", save_best=True, monitor="loss")
    trainer = trainers.ModelTrainer(small_conv(), "mse", lr=1e-2, callbacks=[ck], verbose=0)
    trainer.fit(make_loader(regression_dataset()), epochs=7)
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert names == ["best.pt", "epoch_003.pt", "epoch_006.pt"]
    state = trainers.load_checkpoint(tmp_path / "ck" / "epoch_006.pt")
    assert state["epoch"] == 6
    assert state["optimizer"]["state"]  # Adam moments are in there
    assert len(state["history"]["loss"]) == 6
    best = trainers.load_checkpoint(tmp_path / "ck" / "best.pt")
    assert best["epoch"] == 1 + int(np.argmin(trainer.history["loss"]))
    model = small_conv(seed=9)
    trainers.load_checkpoint(tmp_path / "ck" / "epoch_006.pt", model)
    assert same_weights(weights(model), {k: v.cpu() for k, v in state["model"].items()})


def test_csv_logger_content(tmp_path):
    path = tmp_path / "logs" / "train.csv"
    val = make_loader(regression_dataset(16, seed=1), shuffle=False)
    trainer = trainers.ModelTrainer(
        small_conv(), "mse", metrics=["mae"], callbacks=[utils.CSVLogger(path)], verbose=0
    )
    h = trainer.fit(make_loader(regression_dataset()), epochs=3, validation=val)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae", "lr"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    for j, key in enumerate(rows[0][1:], start=1):
        assert [float(r[j]) for r in rows[1:]] == pytest.approx(h[key])


def test_lr_scheduler_function_and_torch_factory():
    loader = make_loader(regression_dataset())
    sched = utils.LRScheduler(lambda epoch: 0.1 * 0.5**epoch)
    trainer = trainers.ModelTrainer(small_conv(), "mse", optimizer="sgd", callbacks=[sched], verbose=0)
    h = trainer.fit(loader, epochs=3)
    assert h["lr"] == pytest.approx([0.1, 0.05, 0.025])
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)

    factory = utils.LRScheduler(functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.1))
    trainer = trainers.ModelTrainer(small_conv(), "mse", lr=1.0, callbacks=[factory], verbose=0)
    h = trainer.fit(loader, epochs=3)
    assert h["lr"] == pytest.approx([1.0, 0.1, 0.01])
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)


# -- determinism and resuming --------------------------------------------------------------------------
def _run(epochs, seed=5, callbacks=None, resume_from=None, init_seed=0):
    model = small_conv(seed=init_seed, dropout=0.3)
    loader = make_loader(regression_dataset(), seed=11)
    val = make_loader(regression_dataset(16, seed=1), shuffle=False)
    trainer = trainers.ModelTrainer(
        model, "mse", lr=1e-2, metrics=["mae"], seed=seed, callbacks=callbacks, verbose=0
    )
    trainer.fit(loader, epochs=epochs, validation=val, resume_from=resume_from)
    return trainer


def test_same_seed_same_run():
    a, b = _run(4), _run(4)
    assert a.history == b.history
    assert same_weights(weights(a.model), weights(b.model))
    c = _run(4, seed=6)  # dropout draws differ
    assert c.history["loss"] != a.history["loss"]


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    full = _run(5)
    ck = utils.ModelCheckpoints(freq=2, directory=tmp_path)
    _run(2, callbacks=[ck])
    assert ck.saved == [str(tmp_path / "epoch_002.pt")]
    resumed = _run(5, resume_from=tmp_path / "epoch_002.pt", init_seed=123)  # other init: overwritten
    assert resumed.history == full.history
    assert same_weights(weights(resumed.model), weights(full.model))

    # the same through trainer.load_checkpoint
    model = small_conv(seed=7, dropout=0.3)
    trainer = trainers.ModelTrainer(model, "mse", lr=1e-2, metrics=["mae"], seed=5, verbose=0)
    state = trainer.load_checkpoint(tmp_path / "epoch_002.pt")
    assert state["epoch"] == 2 and trainer.epoch == 2
    trainer.fit(
        make_loader(regression_dataset(), seed=11),
        epochs=5,
        validation=make_loader(regression_dataset(16, seed=1), shuffle=False),
    )
    assert same_weights(weights(trainer.model), weights(full.model))


def test_resume_without_optimizer_state_differs(tmp_path):
    """The optimizer state matters: restoring only the weights does not reproduce the run."""
    full = _run(4)
    ck = utils.ModelCheckpoints(freq=2, directory=tmp_path)
    mid = _run(2, callbacks=[ck])
    model = small_conv(dropout=0.3)
    model.load_state_dict(mid.model.state_dict())
    trainer = trainers.ModelTrainer(model, "mse", lr=1e-2, seed=5, verbose=0)
    trainer.fit(make_loader(regression_dataset(), seed=11), epochs=2)
    assert not same_weights(weights(trainer.model), weights(full.model))


# -- channels ---------------------------------------------------------------------------------------------
class Recorder(torch.nn.Module):
    def __init__(self, conv=False):
        super().__init__()
        self.lin = torch.nn.Linear(1, 1)
        if conv:
            self.conv = torch.nn.Conv2d(1, 1, 1)
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.lin(x.mean(dim=tuple(range(1, x.ndim))).unsqueeze(1))


@pytest.mark.parametrize(
    ("conv", "spec", "channels", "expand_dims", "expected"),
    [
        (False, None, "auto", -1, (4, 8, 8, 1)),  # no conv, no spec: as served
        (True, None, "auto", -1, (4, 1, 8, 8)),  # a torch conv: channels first
        (False, "first", "auto", -1, (4, 1, 8, 8)),  # nitrain_spec says first
        (True, "last", "auto", -1, (4, 8, 8, 1)),  # nitrain_spec wins over the conv rule
        (False, None, "first", -1, (4, 1, 8, 8)),
        (True, None, "last", -1, (4, 8, 8, 1)),
        (False, None, "first", 1, (4, 1, 8, 8)),  # the loader is already channels-first
        (False, None, "last", 1, (4, 8, 8, 1)),
        (False, None, "first", None, (4, 1, 8, 8)),  # no channel axis: one is inserted
    ],
)
def test_channels_handling(conv, spec, channels, expand_dims, expected):
    model = Recorder(conv)
    if spec:
        model.nitrain_spec = {"channels": spec}
    loader = make_loader(regression_dataset(8), batch_size=4, expand_dims=expand_dims)
    trainer = trainers.ModelTrainer(model, "mse", channels=channels, verbose=0)
    trainer.fit(loader, epochs=1)
    assert model.shapes[0] == expected


def test_image_targets_move_with_x_and_scalar_targets_get_a_column():
    xs, ys = _seg_data(6)
    loader = make_loader(datasets.MemoryDataset(xs, ys), batch_size=3)
    seen = []

    def loss(out, y):
        seen.append((tuple(out.shape), tuple(y.shape)))
        return ((out - y) ** 2).mean()

    trainers.ModelTrainer(TinySeg(), loss, verbose=0).fit(loader, epochs=1)
    assert seen[0] == ((3, 1, 8, 8), (3, 1, 8, 8))
    seen.clear()
    trainers.ModelTrainer(small_conv(), loss, verbose=0).fit(make_loader(regression_dataset(6), 3), epochs=1)
    assert seen[0] == ((3, 1), (3, 1))


def test_shape_mismatch_is_reported():
    loader = make_loader(regression_dataset(8), batch_size=4)
    trainer = trainers.ModelTrainer(small_conv(outputs=2), "mse", verbose=0)
    with pytest.raises(ValueError, match=r"same shape.*\(4, 2\).*\(4,\)"):
        trainer.fit(loader, epochs=1)


# -- predict ----------------------------------------------------------------------------------------------
def test_predict_per_record_with_a_slice_sampler():
    rng = np.random.default_rng(2)
    vols = [rng.normal(size=(8, 8, 5)).astype(np.float32) for _ in range(5)]
    ds = datasets.MemoryDataset(vols, [float(v.mean()) for v in vols])
    sampler = samplers.SliceSampler(sub_batch_size=4, axis=2)
    loader = loaders.DatasetLoader(ds, batch_size=2, sampler=sampler, seed=0)
    trainer = trainers.ModelTrainer(small_conv(), "mse", verbose=0)
    items = trainer.predict(loader)
    assert items.shape == (25, 1)
    per_record = trainer.predict(loader, reduce="record")
    assert per_record.shape == (5, 1)
    np.testing.assert_allclose(per_record, items.reshape(5, 5, 1).mean(1), rtol=1e-6)
    # slice by slice by hand
    model = trainer.model.eval()
    with torch.no_grad():
        by_hand = model(torch.from_numpy(np.moveaxis(vols[3], 2, 0)[:, None].copy())).mean(0).numpy()
    np.testing.assert_allclose(per_record[3], by_hand, rtol=1e-5, atol=1e-6)

    # shuffled records and items, mixed across a pool: each Batch names its records, so the means agree
    sh_sampler = samplers.SliceSampler(sub_batch_size=4, axis=2, shuffle=True)
    shuffled = loaders.DatasetLoader(ds, batch_size=2, sampler=sh_sampler, shuffle=True, seed=0, pool=5)
    np.testing.assert_allclose(trainer.predict(shuffled, reduce="record"), per_record, rtol=1e-5)
    big = samplers.SliceSampler(sub_batch_size=8, axis=2)
    dropped = loaders.DatasetLoader(ds, batch_size=1, sampler=big, drop_last=True, seed=0)
    with pytest.raises(ValueError, match=r"records \[0, 1, 2, 3, 4\] got no item"):
        trainer.predict(dropped, reduce="record")  # 5 slices a record, sub-batches of 8, the last dropped


def test_predict_on_a_dataset_keeps_record_order():
    ds = regression_dataset(10)
    trainer = trainers.ModelTrainer(small_conv(), "mse", verbose=0)
    a = trainer.predict(ds, batch_size=3)
    b = trainer.predict(make_loader(ds, batch_size=4, shuffle=False))
    assert a.shape == (10, 1)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(trainer.predict(ds, reduce="record"), a, rtol=1e-6)


# -- options and bad inputs -----------------------------------------------------------------------------
def test_amp_grad_clip_and_optimizer_variants():
    loader = make_loader(regression_dataset(16))
    for opt in (
        "adamw",
        "sgd",
        "rmsprop",
        torch.optim.Adagrad,
        functools.partial(torch.optim.SGD, momentum=0.5),
    ):
        trainers.ModelTrainer(small_conv(), "mae", optimizer=opt, grad_clip=1.0, verbose=0).fit(
            loader, epochs=1
        )
    model = small_conv()
    inst = torch.optim.SGD(model.parameters(), lr=0.01)
    assert trainers.ModelTrainer(model, "l1", optimizer=inst, verbose=0).optimizer is inst
    h = trainers.ModelTrainer(small_conv(), torch.nn.MSELoss(), amp=True, verbose=0).fit(loader, epochs=2)
    assert np.isfinite(h["loss"]).all()


def test_bad_inputs_are_refused_with_the_valid_choices():
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*'mse'.*'dice'"):
        trainers.ModelTrainer(small_conv(), "hinge")
    with pytest.raises(ValueError, match=r"unknown optimizer 'adagrad'.*'adam', 'adamw', 'sgd', 'rmsprop'"):
        trainers.ModelTrainer(small_conv(), "mse", optimizer="adagrad")
    with pytest.raises(ValueError, match=r"unknown metric 'f1'.*'r2'"):
        trainers.ModelTrainer(small_conv(), "mse", metrics=["f1"])
    with pytest.raises(ValueError, match="channels"):
        trainers.ModelTrainer(small_conv(), "mse", channels="middle")
    with pytest.raises(ValueError, match="lr"):
        trainers.ModelTrainer(small_conv(), "mse", lr=0)
    with pytest.raises(ValueError, match="epochs"):
        trainers.ModelTrainer(small_conv(), "mse").fit(make_loader(regression_dataset(8)), epochs=-1)

    class KerasLike:
        def fit(self, *a):
            pass

    KerasLike.__module__ = "keras.src.models.sequential"
    with pytest.raises(TypeError, match=r"torch.nn.Module or a keras 3 model.*KerasLike, which is neither"):
        trainers.ModelTrainer(KerasLike(), "mse")
    with pytest.raises(TypeError, match="torch.nn.Module or a keras 3 model"):
        trainers.ModelTrainer(lambda x: x, "mse")


def test_importing_nitrain_does_not_import_torch():
    code = (
        "import sys, nitrain, nitrain.trainers, nitrain.utils\n"
        "from nitrain.trainers import ModelTrainer\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quiet_without_a_terminal_and_a_line_per_epoch_with_verbose_2(capsys):
    loader = make_loader(regression_dataset(8), batch_size=4)
    trainers.ModelTrainer(small_conv(), "mse", verbose=1).fit(loader, epochs=2)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # stderr is not a terminal under pytest
    trainers.ModelTrainer(small_conv(), "mse", verbose=2).fit(loader, epochs=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2: loss=")
