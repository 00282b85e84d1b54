"""The keras 3 backend of ``ModelTrainer`` (tested with the tensorflow backend): each epoch is
``model.fit(loader.to_keras(), epochs=1)``, each validation pass ``model.evaluate``; the epoch loop,
history, nitrain callbacks, resuming and per-record predictions are the trainer's. keras callbacks get
``set_model`` / ``set_params`` before training, their batch hooks from the inner ``model.fit`` /
``model.evaluate`` and their train and epoch hooks from the trainer's loop. keras is imported when the
backend is built."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from nitrain._frameworks import require_keras
from nitrain._layout import first_batch, layout_of, move_channels
from nitrain.trainers._common import is_keras_callback, no_batches
from nitrain.trainers._objectives import check_target, make_metrics
from nitrain.trainers.keras._setup import (
    OPTIMIZERS,
    as_tuple,
    check_keras_model,
    inner_callback,
    is_tf_dataset,
    keras_channels,
    make_keras_loss,
    make_keras_metrics,
    make_keras_optimizer,
)
from nitrain.trainers.keras.checkpoint import SUFFIX, load_checkpoint, save_checkpoint

__all__ = ["OPTIMIZERS", "KerasBackend", "keras_channels", "load_checkpoint", "save_checkpoint"]


class KerasBackend:
    framework = "keras"
    checkpoint_suffix = SUFFIX
    rank, world_size = 0, 1  # no torchrun for keras

    def __init__(
        self,
        model,
        *,
        loss,
        optimizer,
        lr,
        metrics,
        callbacks,
        device,
        amp,
        grad_clip,
        channels,
        verbose,
        owner,
    ):
        check_keras_model(model, owner)
        self._keras = require_keras(owner)
        if amp:
            raise ValueError(
                "ModelTrainer: amp=True is for torch models; for keras call "
                "keras.mixed_precision.set_global_policy('mixed_float16') before building the model"
            )
        self.model = model
        self.loss_fn, self.loss_name = make_keras_loss(loss)
        self._specs = make_metrics(metrics)
        self.metric_names = [m.name for m in self._specs]
        self.metrics: list = []  # keras metric objects, made when the model is compiled
        self.optimizer = make_keras_optimizer(optimizer, lr, grad_clip)
        self._keras_callbacks = [cb for cb in callbacks if is_keras_callback(cb)]
        self._forward_to: list = []  # keras callbacks that get batch hooks, during fit
        self.device = device
        self._device_scope: Callable[[], contextlib.AbstractContextManager[Any]]
        if device in ("auto", None):
            self._device_scope = contextlib.nullcontext
        else:
            name = str(device).lower().replace("cuda", "gpu")
            name = name if ":" in name else f"{name}:0"
            self._device_scope = lambda: self._keras.device(name)
        self.channels = keras_channels(model, channels)
        self.verbose = verbose
        self._compiled = False
        self._checked: set[int] = set()

    # -- what the trainer reads (keras callbacks set model.stop_training) ----------------------------------
    @property
    def stop_requested(self) -> bool:
        return bool(getattr(self.model, "stop_training", False))

    @stop_requested.setter
    def stop_requested(self, value) -> None:
        with contextlib.suppress(AttributeError):
            self.model.stop_training = bool(value)

    @property
    def learning_rate(self) -> float:
        return float(self._keras.ops.convert_to_numpy(self.optimizer.learning_rate))

    @learning_rate.setter
    def learning_rate(self, lr: float) -> None:
        self.optimizer.learning_rate = float(lr)

    def get_weights(self):
        return [np.array(w, copy=True) for w in self.model.get_weights()]

    def set_weights(self, weights) -> None:
        self.model.set_weights(weights)

    # -- first batch: compile and check shapes -------------------------------------------------------
    def _first(self, loader):
        if is_tf_dataset(loader):
            for x, y in loader.take(1):
                x = [np.asarray(v) for v in x] if isinstance(x, tuple | list) else np.asarray(x)
                return x, np.asarray(y)
            return None
        try:
            if len(loader) == 0:
                return None
        except TypeError:
            pass
        batch = first_batch(loader)
        if batch is None:
            return None
        x, y = batch
        return move_channels(x, y, layout_of(loader), self.channels)

    def _prepare(self, loader, desc: str):
        if id(loader) in self._checked:
            return
        batch = self._first(loader)
        if batch is None:
            raise no_batches(desc)
        x, y = batch
        probe = as_tuple([v[:2] for v in x]) if isinstance(x, list | tuple) else x[:2]
        with self._device_scope():
            out = self.model(probe, training=False)
        if isinstance(out, list | tuple):
            out = out[0]
        out_shape = tuple(int(d) for d in out.shape)
        check_target(self.loss_name, (len(y), *out_shape[1:]), np.shape(y), axis=-1)
        if not self._compiled:
            classes = out_shape[-1] if len(out_shape) >= 2 else 1
            self.metrics = make_keras_metrics(self._specs, classes)
            # a host metric (hd95) computes on numpy arrays: the steps then run eagerly
            eager = any(m.host for m in self._specs)
            self.model.compile(
                optimizer=self.optimizer, loss=self.loss_fn, metrics=self.metrics, run_eagerly=eager
            )
            self._compiled = True
        self._checked.add(id(loader))

    def _keras_data(self, loader):
        if is_tf_dataset(loader):
            return loader
        if hasattr(loader, "to_keras"):
            return loader.to_keras(channels=self.channels)
        from nitrain.loaders.keras import KerasLoader

        return KerasLoader(loader, channels=self.channels)

    # -- around the epochs ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, loader, validation, epochs: int, seed):
        """Compile from the first batch, then hand the model and the run's parameters to the keras
        callbacks; they get the batch hooks while the loop runs."""
        if self._keras_callbacks:
            self._prepare(loader, "training")
            try:
                steps = len(loader)
            except TypeError:  # a loader without a length, a tf.data.Dataset of unknown cardinality
                steps = None
            params = {"verbose": self.verbose, "epochs": epochs, "steps": steps}
            for cb in self._keras_callbacks:
                cb.set_model(self.model)
                cb.set_params(params)
        self._forward_to = list(self._keras_callbacks)
        try:
            yield
        finally:
            self._forward_to = []

    def seed_epoch(self, seed: int) -> None:
        self._keras.utils.set_random_seed(seed % 2**32)

    def run_epoch(self, loader, train: bool, desc: str, progress) -> dict:
        self._prepare(loader, desc)
        data = self._keras_data(loader)
        try:
            total = len(loader)
        except TypeError:
            total = None
        bar = progress(total, desc)
        cbs = [] if bar is None and not self._forward_to else [inner_callback(bar, self._forward_to)]
        try:
            with self._device_scope():
                if train:
                    h = self.model.fit(data, epochs=1, verbose=0, callbacks=cbs, shuffle=False)
                    logs = {k: v[-1] for k, v in h.history.items()}
                else:
                    logs = self.model.evaluate(data, verbose=0, callbacks=cbs, return_dict=True)
        finally:
            if bar is not None:
                bar.close()
        if "loss" not in logs:
            raise no_batches(desc)
        out = {"loss": float(logs["loss"])}
        for m in self.metrics:
            spec = getattr(m, "spec", None)  # nitrain's: every value (per class too) from the pass's sums
            out.update(spec.values(m.totals()) if spec is not None else {m.name: float(logs[m.name])})
        return out

    def predict_batches(self, loader):
        src = layout_of(loader)
        with self._device_scope():
            for batch in loader:
                x = batch[0] if isinstance(batch, tuple | list) and len(batch) == 2 else batch
                if is_tf_dataset(loader):
                    x = [np.asarray(v) for v in x] if isinstance(x, tuple | list) else np.asarray(x)
                x, _ = move_channels(x, None, src, self.channels)
                out = self.model.predict_on_batch(as_tuple(x))
                if isinstance(out, list | tuple):
                    out = out[0]
                yield np.asarray(out, dtype=np.float32)

    # -- checkpoints ---------------------------------------------------------------------------------
    def save(self, path, **extra) -> str:
        if not self.optimizer.built:
            self.optimizer.build(self.model.trainable_variables)
        extra["history"] = {k: [float(v) for v in vs] for k, vs in extra.get("history", {}).items()}
        return save_checkpoint(path, self.model, self.optimizer, **extra)

    def load(self, path) -> dict:
        return load_checkpoint(path, self.model, self.optimizer)
