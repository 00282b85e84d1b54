"""The keras side of ModelTrainer: losses, metrics, optimizers, checkpoints and one epoch of keras training.

``ModelTrainer(model, ...)`` returns a ``KerasModelTrainer`` for a keras 3 model (tested with the
tensorflow backend). The epoch loop is ``ModelTrainer.fit``'s: the same history, nitrain callbacks,
resuming and per-record predictions as torch; each epoch runs ``model.fit(loader.to_keras(), epochs=1)``
and each validation pass ``model.evaluate``. keras is imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import numpy as np

from nitrain._frameworks import KERAS_EXTRA, declared_channels, is_keras_model, require_keras
from nitrain.loaders.loader import first_batch, move_channels
from nitrain.trainers._objectives import LOSSES, METRICS
from nitrain.trainers.trainer import (
    OPTIMIZERS,
    ModelTrainer,
    _Dist,
    _epoch_seed,
    check_callbacks,
    is_keras_callback,
)

FORMAT = "nitrain-checkpoint"
SUFFIX = ".weights.h5"
_CLASS_LOSSES = ("cross_entropy", "categorical_crossentropy")


def _check_keras_model(model, owner: str):
    if is_keras_model(model):
        return
    require_keras(owner)
    raise TypeError(
        f"{owner}: only keras 3 models (keras.Model / keras.layers.Layer) are accepted; got "
        f"{type(model).__module__}.{type(model).__name__}"
    )


# -- losses ----------------------------------------------------------------------------------------------
def make_keras_loss(loss):
    """A keras loss for ``loss`` (the torch names, logits where torch uses logits) and its name. A callable
    is used as a keras loss ``f(y_true, y_pred)``."""
    keras = require_keras("ModelTrainer")
    if isinstance(loss, str):
        key = loss.lower()
        if key == "mse":
            return keras.losses.MeanSquaredError(name="mse"), key
        if key in ("mae", "l1"):
            return keras.losses.MeanAbsoluteError(name=key), key
        if key == "bce":
            return keras.losses.BinaryCrossentropy(from_logits=True, name="bce"), key
        if key in _CLASS_LOSSES:
            from nitrain.trainers._keras_objects import cross_entropy

            return cross_entropy, key
        if key == "dice":
            from nitrain.trainers._keras_objects import soft_dice

            return soft_dice, key
        raise ValueError(f"ModelTrainer: unknown loss {loss!r}; valid names: {list(LOSSES)}, or a callable")
    if callable(loss):
        return loss, getattr(loss, "name", None) or getattr(loss, "__name__", type(loss).__name__)
    raise TypeError(
        f"ModelTrainer: loss must be one of {list(LOSSES)} or a keras loss (a callable), got {loss!r}"
    )


def _check_target(loss_name: str, out_shape, y_shape) -> None:
    """Before the first step: can ``loss_name`` compare the model's output with the targets?"""
    out_shape, y_shape = tuple(out_shape), tuple(y_shape)
    if len(y_shape) == 1 and len(out_shape) == 2 and out_shape[1] == 1:
        y_shape = (*y_shape, 1)
    same = out_shape[1:] == y_shape[1:]
    classes = out_shape[-1] if len(out_shape) >= 2 else 1
    as_indices = y_shape[1:] in (out_shape[1:-1], (*out_shape[1:-1], 1))
    if loss_name in _CLASS_LOSSES or (loss_name == "dice" and classes > 1):
        ok = (same or as_indices) and len(out_shape) >= 2
        want = "one-hot targets shaped like the output, or class indices without its last (class) axis"
    elif loss_name in ("mse", "mae", "l1", "bce", "dice"):
        ok, want = same, "the same shape"
    else:
        return  # a user's loss: its own business
    if not ok:
        raise ValueError(
            f"ModelTrainer: loss {loss_name!r} needs {want}; the model's output has shape {out_shape} but "
            f"the target has shape {tuple(y_shape)} (first batch; check channels= and the number of outputs)"
        )


# -- metrics ---------------------------------------------------------------------------------------------
def make_keras_metrics(metrics, classes: int) -> list:
    """keras metrics for ``metrics`` (the torch names; ``classes`` = the output's last axis, for dice);
    keras Metric instances pass through, other callables become batch-size weighted means. The built-in
    ones are ``_keras_objects``' registered classes, so a saved model reloads with ``load_model``."""
    keras = require_keras("ModelTrainer")
    from nitrain.trainers import _keras_objects as c

    out = []
    for m in metrics:
        if isinstance(m, str):
            key = m.lower()
            if key in ("mae", "mse"):
                out.append(c.EpochError(key, 1 if key == "mae" else 2))
            elif key == "r2":
                out.append(c.EpochR2("r2"))
            elif key in ("accuracy", "acc"):
                out.append(c.EpochAccuracy("accuracy"))
            elif key == "dice":
                out.append(c.EpochDice("dice", classes))
        elif isinstance(m, keras.metrics.Metric):
            out.append(m)
        else:
            out.append(keras.metrics.MeanMetricWrapper(m, name=getattr(m, "__name__", type(m).__name__)))
    return out


def _metric_names(metrics) -> list[str]:
    """Validate ``metrics`` at construction; their names in the logs."""
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    names = []
    for m in metrics:
        if isinstance(m, str):
            key = m.lower()
            if key not in (*METRICS, "acc"):
                raise ValueError(
                    f"ModelTrainer: unknown metric {m!r}; valid names: {list(METRICS)}, or a callable"
                )
            names.append("accuracy" if key == "acc" else key)
        elif callable(m):
            names.append(getattr(m, "name", None) or getattr(m, "__name__", type(m).__name__))
        else:
            raise TypeError(
                f"ModelTrainer: a metric must be a name in {list(METRICS)} or a callable, got {m!r}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"ModelTrainer: metric names must be unique, got {names}")
    return names


# -- optimizers ------------------------------------------------------------------------------------------
def make_keras_optimizer(optimizer, lr: float, grad_clip):
    keras = require_keras("ModelTrainer")
    clip = {} if grad_clip is None else {"global_clipnorm": float(grad_clip)}
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key == "adam":
            return keras.optimizers.Adam(learning_rate=lr, **clip)
        if key == "adamw":
            return keras.optimizers.AdamW(learning_rate=lr, **clip)
        if key == "sgd":
            return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, **clip)
        if key == "rmsprop":
            return keras.optimizers.RMSprop(learning_rate=lr, **clip)
        raise ValueError(
            f"ModelTrainer: unknown optimizer {optimizer!r}; valid names: {list(OPTIMIZERS)}, "
            "or a keras.optimizers.Optimizer class or instance"
        )
    base = keras.optimizers.Optimizer
    if isinstance(optimizer, base):
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, base):
        return optimizer(learning_rate=lr, **clip)
    if callable(optimizer):  # a factory such as functools.partial(keras.optimizers.SGD, momentum=0.5)
        opt = optimizer(learning_rate=lr)
        if not isinstance(opt, base):
            raise TypeError(f"ModelTrainer: the optimizer factory returned {type(opt).__name__}")
        return opt
    raise TypeError(
        f"ModelTrainer: optimizer must be one of {list(OPTIMIZERS)} or a keras optimizer class/instance, "
        f"got {optimizer!r}"
    )


# -- checkpoints -----------------------------------------------------------------------------------------
def _check_suffix(owner: str, path: str) -> str:
    path = os.fspath(path)
    if not path.endswith(SUFFIX):
        raise ValueError(f"{owner}: a keras checkpoint path must end in {SUFFIX!r}, got {path!r}")
    return path


def save_checkpoint(path, model, optimizer=None, epoch: int = 0, **extra) -> str:
    """Write ``model``'s weights (``model.save_weights``, a ``.weights.h5`` file) with the optimizer's
    variables, ``epoch`` and ``extra`` (JSON-able values) in a ``nitrain`` group of the same file. The folder
    is created; a temporary file is renamed into place, so a crash never leaves half a checkpoint."""
    import h5py

    path = _check_suffix("save_checkpoint", path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = f"{path[: -len(SUFFIX)]}.tmp{os.getpid()}{SUFFIX}"
    model.save_weights(tmp)
    with h5py.File(tmp, "a") as f:
        g = f.create_group("nitrain")
        g.attrs["format"] = FORMAT
        g.attrs["version"] = 1
        g.attrs["epoch"] = int(epoch)
        g.attrs["extra"] = json.dumps(extra)
        if optimizer is not None:
            store: dict = {}
            optimizer.save_own_variables(store)
            og = g.create_group("optimizer")
            for k, v in store.items():
                og.create_dataset(k, data=np.asarray(v))
    os.replace(tmp, path)
    return path


def load_checkpoint(path, model=None, optimizer=None) -> dict:
    """Read a keras checkpoint; load the weights into ``model`` and the optimizer's variables into
    ``optimizer`` (built on ``model``'s trainable variables if it is not yet) when given. Returns a dict
    with ``epoch``, ``optimizer`` (the saved variables, or None) and the saved extras."""
    import h5py

    path = _check_suffix("load_checkpoint", path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    with h5py.File(path, "r") as f:
        g = f.get("nitrain")
        if g is None or g.attrs.get("format") != FORMAT:
            raise ValueError(f"load_checkpoint: {path} is not a nitrain checkpoint (use save_checkpoint)")
        state = {"format": FORMAT, "epoch": int(g.attrs["epoch"]), **json.loads(g.attrs["extra"])}
        og = g.get("optimizer")
        state["optimizer"] = None if og is None else {k: np.array(og[k]) for k in og}
    if model is not None:
        model.load_weights(path)
    if optimizer is not None:
        saved = state["optimizer"]
        if saved is None:
            raise ValueError(f"load_checkpoint: {path} holds no optimizer state")
        if not optimizer.built:
            if model is None:
                raise ValueError("load_checkpoint: an optimizer that is not built needs the model too")
            optimizer.build(model.trainable_variables)
        if len(saved) != len(optimizer.variables):
            raise ValueError(
                f"load_checkpoint: {path} holds {len(saved)} optimizer variables, the optimizer has "
                f"{len(optimizer.variables)} (a different optimizer or model?)"
            )
        optimizer.load_own_variables(saved)
    return state


# -- the trainer -----------------------------------------------------------------------------------------
def _keras_channels(model, channels: str):
    """'first', 'last' or None (batches passed as served), like ``trainer._model_channels``."""
    declared = declared_channels(model, channels, "ModelTrainer")
    if declared is not None:
        return declared
    layers = (
        model._flatten_layers(include_self=True, recursive=True) if hasattr(model, "_flatten_layers") else []
    )
    for layer in layers:
        fmt = getattr(layer, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            return "first" if fmt == "channels_first" else "last"
    return None


def _inner_callback(bar, forward_to):
    """The one keras callback of each inner ``model.fit`` / ``model.evaluate``: moves the tqdm ``bar`` and
    hands the batch hooks (and, for validation, ``on_test_begin`` / ``on_test_end``) to the user's keras
    callbacks ``forward_to``; their train and epoch hooks come from ``ModelTrainer.fit``'s loop."""
    keras = require_keras("ModelTrainer")
    hooks = (
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_test_begin",
        "on_test_end",
        "on_test_batch_begin",
        "on_test_batch_end",
    )

    class Inner(keras.callbacks.Callback):
        def _step(self, logs):
            if bar is not None:
                bar.update(1)
                if logs and "loss" in logs:
                    bar.set_postfix(loss=f"{float(logs['loss']):.4g}")

    def forwarder(hook, steps):
        def call(self, *args, **kwargs):
            for cb in forward_to:
                getattr(cb, hook)(*args, **kwargs)
            if steps:
                self._step(kwargs.get("logs", args[1] if len(args) > 1 else None))

        return call

    for hook in hooks:
        setattr(Inner, hook, forwarder(hook, hook.endswith("batch_end")))
    return Inner()


def _is_tf_dataset(data) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def _as_tuple(x):
    return tuple(x) if isinstance(x, list | tuple) else x


class KerasModelTrainer(ModelTrainer):
    """``ModelTrainer`` for a keras 3 model (what ``ModelTrainer`` returns for one). Same arguments,
    history, callbacks, checkpoints and predictions as for torch, with these differences:

    - losses are the same names on logits, with classes on the *last* axis (keras is channels-last); a
      callable loss or metric follows keras' convention ``f(y_true, y_pred)``; metrics are computed over
      the whole epoch like torch's.
    - ``optimizer``: a name, a ``keras.optimizers.Optimizer`` class (built with ``lr``), a factory
      ``f(learning_rate=...)`` or an instance. ``grad_clip`` becomes the optimizer's ``global_clipnorm``.
    - ``device``: 'auto' (keras' placement) or a device for ``keras.device`` ('cpu', 'gpu', 'cuda:0' ...).
    - ``amp``: set ``keras.mixed_precision.set_global_policy('mixed_float16')`` before building the model
      instead; ``amp=True`` is refused.
    - ``seed``: ``keras.utils.set_random_seed`` of (seed, epoch) before every epoch.
    - ``channels='auto'``: the model's ``nitrain_spec['channels']``, else its first layer with a
      ``data_format`` (convolutions, pooling), else batches as served.
    - checkpoints are ``.weights.h5`` files (``model.save_weights``) with the optimizer's variables, the
      epoch and the history in a ``nitrain`` group; no torchrun.
    - ``callbacks`` may mix nitrain callbacks with keras' own (``keras.callbacks.ReduceLROnPlateau``,
      ``EarlyStopping``, ``TensorBoard``, ``CSVLogger``, ``ModelCheckpoint``, ``LearningRateScheduler``,
      ...), called in the order given. keras callbacks get ``set_model(model)`` and ``set_params``
      (``epochs``, ``steps``, ``verbose``) before training, the train and epoch hooks from the epoch loop
      (``logs`` = the epoch's history values, 'val_' ones included), the batch hooks from each epoch's
      ``model.fit`` and ``on_test_begin`` / ``on_test_end`` / test batch hooks from each validation pass.
      What they do acts: a learning rate they set on ``model.optimizer`` is the one the next steps use,
      and ``model.stop_training = True`` stops training after the epoch (``trainer.stop_training`` is
      ``model.stop_training``). ``keras.callbacks.BackupAndRestore`` is refused: use
      ``nitrain.utils.ModelCheckpoints`` and ``fit(resume_from=...)``.

    The model is compiled on the first ``fit`` / ``evaluate``, once the first batch shows the output's
    shape (checked against the targets before any step). nitrain's losses and metrics in the compiled
    model are registered with keras, so ``model.save('m.keras')`` reloads with ``keras.models.load_model``
    in any process that imported ``nitrain.trainers`` (before or after keras).
    """

    checkpoint_suffix = SUFFIX

    def __init__(
        self,
        model,
        loss="mse",
        optimizer="adam",
        lr: float = 1e-3,
        metrics=None,
        callbacks=None,
        device="auto",
        amp: bool = False,
        grad_clip: float | None = None,
        seed: int | None = None,
        verbose: int = 1,
        channels: str = "auto",
    ):
        owner = type(self).__name__ if type(self) is not KerasModelTrainer else "ModelTrainer"
        _check_keras_model(model, owner)
        require_keras(owner)
        self.model = model
        self.framework = "keras"
        if not isinstance(lr, int | float) or isinstance(lr, bool) or lr <= 0:
            raise ValueError(f"ModelTrainer: lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        if grad_clip is not None and (not isinstance(grad_clip, int | float) or grad_clip <= 0):
            raise ValueError(f"ModelTrainer: grad_clip must be a positive number or None, got {grad_clip!r}")
        self.grad_clip = grad_clip
        if amp:
            raise ValueError(
                "ModelTrainer: amp=True is for torch models; for keras call "
                "keras.mixed_precision.set_global_policy('mixed_float16') before building the model"
            )
        self.amp = False
        self.loss_fn, self.loss_name = make_keras_loss(loss)
        self._metric_specs = (
            []
            if metrics is None
            else [metrics]
            if isinstance(metrics, str) or callable(metrics)
            else list(metrics)
        )
        self.metric_names = _metric_names(self._metric_specs)
        self.metrics: list = []  # keras metric objects, made when the model is compiled
        self.optimizer = make_keras_optimizer(optimizer, self.lr, grad_clip)
        self.callbacks = check_callbacks(callbacks, owner, keras_ok=True)
        for i, cb in enumerate(self.callbacks):
            if type(cb).__name__ == "BackupAndRestore" and is_keras_callback(cb):
                raise TypeError(
                    f"{owner}: callbacks[{i}] is keras.callbacks.BackupAndRestore, which ModelTrainer cannot "
                    "honour (it resumes keras' own fit loop); use nitrain.utils.ModelCheckpoints and "
                    "fit(..., resume_from=checkpoint)"
                )
        self._keras_callbacks = [cb for cb in self.callbacks if is_keras_callback(cb)]
        self._forward_to: list = []  # keras callbacks that get batch hooks, during fit
        self.device = device
        self._device_scope = self._make_device_scope(device)
        self.seed = seed
        self.verbose = int(verbose)
        self.channels = _keras_channels(model, channels)
        self.history: dict[str, list] = {}
        self.epoch = 0
        self._stop = False
        self.stop_training = False
        self._dist = _Dist()
        self._net = self.model
        self._loaders: dict = {}
        self._resume: dict | None = None
        self._compiled = False
        self._checked: set[int] = set()

    @staticmethod
    def _make_device_scope(device):
        if device in ("auto", None):
            return contextlib.nullcontext
        name = str(device).lower().replace("cuda", "gpu")
        name = name if ":" in name else f"{name}:0"
        keras = require_keras("ModelTrainer")
        return lambda: keras.device(name)

    # -- first batch: compile and check shapes -------------------------------------------------------
    def _first(self, loader):
        if _is_tf_dataset(loader):
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
        return move_channels(x, y, getattr(loader, "channel", "last"), self.channels)

    def _prepare(self, loader, desc: str):
        if id(loader) in self._checked:
            return
        batch = self._first(loader)
        if batch is None:
            raise ValueError(f"ModelTrainer: the loader served no batches{' for ' + desc if desc else ''}")
        x, y = batch
        probe = _as_tuple([v[:2] for v in x]) if isinstance(x, list | tuple) else x[:2]
        with self._device_scope():
            out = self.model(probe, training=False)
        if isinstance(out, list | tuple):
            out = out[0]
        out_shape = tuple(int(d) for d in out.shape)
        _check_target(self.loss_name, (len(y), *out_shape[1:]), np.shape(y))
        if not self._compiled:
            classes = out_shape[-1] if len(out_shape) >= 2 else 1
            self.metrics = make_keras_metrics(self._metric_specs, classes)
            self.model.compile(optimizer=self.optimizer, loss=self.loss_fn, metrics=self.metrics)
            self._compiled = True
        self._checked.add(id(loader))

    def _keras_data(self, loader):
        if _is_tf_dataset(loader):
            return loader
        if hasattr(loader, "to_keras"):
            return loader.to_keras(channels=self.channels)
        from nitrain.loaders.keras import KerasLoader

        return KerasLoader(loader, channels=self.channels)

    # -- one pass (the epoch loop is ModelTrainer.fit) ------------------------------------------------
    def _run(self, loader, train: bool, desc: str = ""):
        self._prepare(loader, desc)
        data = self._keras_data(loader)
        bar = self._bar(loader, None, desc, False)
        cbs = [] if bar is None and not self._forward_to else [_inner_callback(bar, self._forward_to)]
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
            raise ValueError(f"ModelTrainer: the loader served no batches{' for ' + desc if desc else ''}")
        out = {"loss": float(logs["loss"])}
        for m in self.metrics:
            out[m.name] = float(logs[m.name])
        return out

    @contextlib.contextmanager
    def _fit_session(self, loader, validation, epochs: int):
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

    # -- stopping: keras callbacks set model.stop_training, nitrain ones trainer.stop_training --------------
    @property
    def stop_training(self) -> bool:
        return bool(self._stop or getattr(self.model, "stop_training", False))

    @stop_training.setter
    def stop_training(self, value) -> None:
        self._stop = bool(value)
        with contextlib.suppress(AttributeError):
            self.model.stop_training = bool(value)

    def _seed_epoch(self, epoch: int) -> None:
        if self.seed is not None:
            require_keras("ModelTrainer").utils.set_random_seed(_epoch_seed(self.seed, epoch) % 2**32)

    def _predict_batches(self, loader):
        src = getattr(loader, "channel", "last")
        with self._device_scope():
            for batch in loader:
                x = batch[0] if isinstance(batch, tuple | list) and len(batch) == 2 else batch
                if _is_tf_dataset(loader):
                    x = [np.asarray(v) for v in x] if isinstance(x, tuple | list) else np.asarray(x)
                x, _ = move_channels(x, None, src, self.channels)
                out = self.model.predict_on_batch(_as_tuple(x))
                if isinstance(out, list | tuple):
                    out = out[0]
                yield np.asarray(out, dtype=np.float32)

    # -- learning rate and weights (for the callbacks) ------------------------------------------------
    def get_lr(self) -> float:
        keras = require_keras("ModelTrainer")
        return float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))

    def set_lr(self, lr: float) -> None:
        self.optimizer.learning_rate = float(lr)

    def snapshot_weights(self):
        return [np.array(w, copy=True) for w in self.model.get_weights()]

    def restore_weights(self, weights) -> None:
        self.model.set_weights(weights)

    # -- checkpoints ---------------------------------------------------------------------------------
    def save_checkpoint(self, path) -> str:
        """Weights, optimizer variables, epochs completed, history and the loaders' epoch counters, in one
        ``.weights.h5`` file."""
        if not self.optimizer.built:
            self.optimizer.build(self.model.trainable_variables)
        loader_epochs = {
            k: int(ldr.epoch) for k, ldr in self._loaders.items() if ldr is not None and hasattr(ldr, "epoch")
        }
        return save_checkpoint(
            path,
            self.model,
            self.optimizer,
            epoch=self.epoch,
            history={k: [float(v) for v in vs] for k, vs in self.history.items()},
            loader_epochs=loader_epochs,
            seed=self.seed,
        )

    def load_checkpoint(self, path) -> dict:
        """Load weights and optimizer state; the next ``fit`` continues from the checkpoint's epoch."""
        state = load_checkpoint(path, self.model, self.optimizer)
        self.epoch = int(state["epoch"])
        self.history = {k: list(v) for k, v in (state.get("history") or {}).items()}
        self._resume = state
        return state

    def __repr__(self) -> str:
        return (
            f"ModelTrainer({type(self.model).__name__}, framework='keras', loss={self.loss_name!r}, "
            f"optimizer={type(self.optimizer).__name__}, metrics={self.metric_names}, "
            f"epochs_done={self.epoch})"
        )


__all__ = ["KERAS_EXTRA", "KerasModelTrainer", "load_checkpoint", "make_keras_loss", "save_checkpoint"]
