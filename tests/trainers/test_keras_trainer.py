"""ModelTrainer on keras 3 models (tensorflow backend): the same history, metrics, callbacks, checkpoints
and predictions as the torch path."""

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from nitrain import datasets, loaders, samplers, trainers, utils  # noqa: E402
from nitrain import transforms as tx  # noqa: E402

L = keras.layers


def _data(n=24, size=8, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(size, size)).astype(np.float32) for _ in range(n)]
    return datasets.MemoryDataset(xs, [float(3.0 * x.mean() + 1.0) for x in xs])


def _loader(ds, batch_size=6, shuffle=True, seed=0, **kw):
    return loaders.DatasetLoader(ds, batch_size=batch_size, shuffle=shuffle, seed=seed, **kw)


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


def _same(a, b, atol=0.0):
    return all(np.allclose(u, v, atol=atol, rtol=0) for u, v in zip(a, b, strict=True))


def test_model_trainer_trains_keras_with_the_torch_history_format():
    trainer = trainers.ModelTrainer(_conv(), "mse", lr=1e-2, metrics=["mae", "r2"], verbose=0)
    assert trainer.framework == "keras" and isinstance(trainer, trainers.ModelTrainer)
    val = _loader(_data(12, seed=1), shuffle=False)
    h = trainer.fit(_loader(_data()), epochs=3, validation=val)
    assert h is trainer.history
    assert list(h) == ["loss", "mae", "r2", "val_loss", "val_mae", "val_r2", "lr"]
    assert all(len(v) == 3 for v in h.values()) and h["lr"] == [pytest.approx(1e-2)] * 3
    assert h["loss"][-1] < h["loss"][0]
    ev = trainer.evaluate(val)
    assert ev.keys() == {"loss", "mae", "r2"}
    assert ev["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-5)


def test_same_seed_same_keras_training_run():
    """Two fits from the same seed (model initialisation, loader order, keras' own randomness) end with the
    same weights and history on CPU; another seed gives another run."""

    def run(seed):
        trainer = trainers.ModelTrainer(_conv(seed=0), "mse", lr=1e-2, seed=seed, verbose=0)
        h = trainer.fit(_loader(_data(), seed=seed), epochs=2)
        return trainer.model.get_weights(), h["loss"]

    (w1, l1), (w2, l2), (w3, _) = run(3), run(3), run(4)
    assert _same(w1, w2) and l1 == l2
    assert not _same(w1, w3)


def test_metrics_match_numpy_over_the_whole_epoch():
    ds = _data(23)  # batches of 5: uneven
    loader = _loader(ds, batch_size=5, shuffle=False)
    trainer = trainers.ModelTrainer(_conv(), "mse", metrics=["mae", "mse", "r2"], verbose=0)
    ev = trainer.evaluate(loader)
    pred = trainer.predict(loader)
    assert pred.shape == (23, 1)
    y = np.array([ds[i][1] for i in range(23)])
    err = pred[:, 0].astype(np.float64) - y
    assert ev["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-5)
    assert ev["mse"] == pytest.approx((err**2).mean(), rel=1e-5)
    assert ev["loss"] == pytest.approx((err**2).mean(), rel=1e-5)
    assert ev["r2"] == pytest.approx(1 - (err**2).sum() / ((y - y.mean()) ** 2).sum(), rel=1e-5)


def test_accuracy_and_cross_entropy_on_class_indices():
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(8, 8)).astype(np.float32) for _ in range(21)]
    ys = [int(rng.integers(0, 3)) for _ in xs]
    loader = _loader(datasets.MemoryDataset(xs, ys), batch_size=4, shuffle=False)
    trainer = trainers.ModelTrainer(_conv(outputs=3), "cross_entropy", metrics=["accuracy"], verbose=0)
    ev = trainer.evaluate(loader)
    logits = trainer.predict(loader).astype(np.float64)
    assert ev["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == np.array(ys)))
    ls = logits - logits.max(1, keepdims=True)
    logp = ls - np.log(np.exp(ls).sum(1, keepdims=True))
    assert ev["loss"] == pytest.approx(-logp[np.arange(21), ys].mean(), rel=1e-4)


def test_early_stopping_stops_on_a_plateau_and_restores_the_best_weights():
    stop = utils.EarlyStopping(monitor="val_loss", patience=2, min_delta=1e-3)
    trainer = trainers.ModelTrainer(_conv(), "mse", lr=1e-9, callbacks=[stop], verbose=0)  # no progress
    h = trainer.fit(_loader(_data()), epochs=20, validation=_loader(_data(8, seed=2), shuffle=False))
    assert len(h["loss"]) == 3 and stop.stopped_epoch == 2 and stop.best_epoch == 0
    assert trainer.epoch == 3
    assert _same(trainer.model.get_weights(), stop.best_state)


def test_model_checkpoints_at_the_given_frequency_and_resume(tmp_path):
    ck = utils.ModelCheckpoints(freq=2, directory=tmp_path / "ck", save_best=True, monitor="loss")
    data = _data()
    trainer = trainers.ModelTrainer(_conv(), "mse", lr=1e-2, callbacks=[ck], seed=0, verbose=0)
    trainer.fit(_loader(data), epochs=5)
    names = sorted(os.listdir(tmp_path / "ck"))
    assert names == ["best.weights.h5", "epoch_002.weights.h5", "epoch_004.weights.h5"]
    full = [np.array(w) for w in trainer.model.get_weights()]

    # resume from epoch 4: the fifth epoch gives the same weights as the uninterrupted run
    again = trainers.ModelTrainer(_conv(seed=9), "mse", lr=1e-2, seed=0, verbose=0)
    loader = _loader(data)
    h = again.fit(loader, epochs=5, resume_from=tmp_path / "ck" / "epoch_004.weights.h5")
    assert len(h["loss"]) == 5 and loader.epoch == 5 and again.epoch == 5
    assert h["loss"][:4] == trainer.history["loss"][:4]
    assert _same(again.model.get_weights(), full, atol=1e-6)
    assert int(again.optimizer.iterations.numpy()) == int(trainer.optimizer.iterations.numpy())


def test_lr_scheduler_and_csv_logger(tmp_path):
    sched = utils.LRScheduler(lambda epoch: 0.1 / (epoch + 1))
    log = utils.CSVLogger(tmp_path / "log.csv")
    trainer = trainers.ModelTrainer(_conv(), "mse", optimizer="sgd", callbacks=[sched, log], verbose=0)
    h = trainer.fit(_loader(_data()), epochs=3)
    assert h["lr"] == [pytest.approx(0.1), pytest.approx(0.05), pytest.approx(0.1 / 3)]
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss,lr" and len(rows) == 4
    factory = utils.LRScheduler(lambda opt: None, kind="factory")
    with pytest.raises(TypeError, match="give schedule as a function"):
        trainers.ModelTrainer(_conv(), "mse", callbacks=[factory], verbose=0).fit(_loader(_data()), 1)


def test_bad_inputs_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*'mse'.*'dice'"):
        trainers.ModelTrainer(_conv(), "hinge")
    with pytest.raises(ValueError, match=r"unknown optimizer 'adagrad'.*'adam', 'adamw', 'sgd', 'rmsprop'"):
        trainers.ModelTrainer(_conv(), "mse", optimizer="adagrad")
    with pytest.raises(ValueError, match=r"unknown metric 'f1'.*'r2'"):
        trainers.ModelTrainer(_conv(), "mse", metrics=["f1"])
    with pytest.raises(ValueError, match="amp=True is for torch"):
        trainers.ModelTrainer(_conv(), "mse", amp=True)
    trainer = trainers.ModelTrainer(_conv(outputs=2), "mse", verbose=0)
    with pytest.raises(ValueError, match=r"output has shape \(6, 2\) but the target has shape \(6,\)"):
        trainer.fit(_loader(_data()), epochs=1)
    assert int(trainer.optimizer.iterations.numpy()) == 0  # refused before the first step
    with pytest.raises(ValueError, match="served no batches"):
        trainers.ModelTrainer(_conv(), "mse", verbose=0).fit([], epochs=1)
    with pytest.raises(ValueError, match=r"must end in '\.weights\.h5'"):
        trainers.ModelTrainer(_conv(), "mse").save_checkpoint(tmp_path / "c.pt")
    _conv().save_weights(tmp_path / "plain.weights.h5")
    with pytest.raises(ValueError, match="not a nitrain checkpoint"):
        trainers.ModelTrainer(_conv(), "mse").load_checkpoint(tmp_path / "plain.weights.h5")
    with pytest.raises(TypeError, match="torch.nn.Module or a keras 3 model"):
        trainers.ModelTrainer(object(), "mse")
    import nitrain.keras as nk

    with pytest.raises(TypeError, match="KerasTrainer: only keras 3 models"):
        nk.KerasTrainer(object(), "mse")


def test_framework_modules_share_prediction_to_image():
    import nitrain.keras as nk
    import nitrain.tensorflow as ntf
    from nitrain._images import prediction_to_image

    assert nk.prediction_to_image is ntf.prediction_to_image is prediction_to_image
    assert ntf.KerasTrainer is nk.KerasTrainer
    try:
        import nitrain.torch as nt
    except ImportError:
        return
    assert nt.prediction_to_image is prediction_to_image


@pytest.mark.slow
def test_a_small_keras_cnn_learns_slice_level_brain_age():
    size, n = 32, 60
    ages = np.random.default_rng(0).uniform(20, 80, n)
    norm = tx.NormalizeIntensity(0, 1)
    imgs = [norm(datasets.make_phantom((size,) * 3, float(a), seed=100 + i)[0]) for i, a in enumerate(ages)]
    mu, sd = ages.mean(), ages.std()
    train, val, test = datasets.MemoryDataset(imgs, list((ages - mu) / sd)).split((0.6, 0.15, 0.25))
    window = (size * 5 // 16, size * 11 // 16)
    sampler = samplers.SliceSampler(sub_batch_size=32, axis=2, shuffle=True, slices=window)
    eval_sampler = samplers.SliceSampler(sub_batch_size=64, axis=2, slices=window)
    train_loader = _loader(train, batch_size=len(train), sampler=sampler)  # slices of all subjects mixed
    val_loader = _loader(val, batch_size=8, shuffle=False, sampler=eval_sampler)
    test_loader = _loader(test, batch_size=8, shuffle=False, sampler=eval_sampler)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((size, size, 1)),
            L.Conv2D(16, 3, padding="same"),
            L.BatchNormalization(),
            L.ReLU(),
            L.MaxPooling2D(),
            L.Conv2D(32, 3, padding="same"),
            L.BatchNormalization(),
            L.ReLU(),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(32, activation="relu"),
            L.Dense(1),
        ]
    )
    stop = utils.EarlyStopping(monitor="val_loss", patience=30, restore_best=True)
    trainer = trainers.ModelTrainer(model, "mse", lr=1e-3, seed=0, callbacks=[stop], verbose=0)
    h = trainer.fit(train_loader, epochs=30, validation=val_loader)
    assert min(h["val_loss"]) < h["val_loss"][0]
    trainer.model.set_weights(stop.best_state)  # the best validation epoch
    pred = trainer.predict(test_loader, reduce="record").reshape(-1) * sd + mu
    truth = np.array([test[i][1] for i in range(len(test))]) * sd + mu
    r2 = 1 - ((truth - pred) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
    assert pred.shape == (len(test),)
    assert r2 > 0.5, r2
