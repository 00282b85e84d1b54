"""The keras backend's pieces: losses, metrics and optimizers by name, the model's channel layout, and
the keras callback that forwards batch hooks. keras is imported inside the functions only."""

from __future__ import annotations

import sys
from typing import Any

from nitrain._frameworks import declared_channels, is_keras_model, require_keras
from nitrain.trainers._common import describe
from nitrain.trainers._objectives import CLASS_LOSSES, UserMetric, callable_name, loss_key

#: ``optimizer`` names and the keras optimizer class each builds (with ``learning_rate`` and extras)
OPTIMIZERS = {
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "sgd": ("SGD", {"momentum": 0.9}),
    "rmsprop": ("RMSprop", {}),
}


def check_keras_model(model, owner: str):
    if is_keras_model(model):
        return
    require_keras(owner)
    raise TypeError(
        f"{owner}: only keras 3 models (keras.Model / keras.layers.Layer) are accepted; got {describe(model)}"
    )


def make_keras_loss(loss):
    """A keras loss for ``loss`` (the torch names, logits where torch uses logits) and its name. A callable
    is used as a keras loss ``f(y_true, y_pred)``."""
    keras = require_keras("ModelTrainer")
    key = loss_key(loss)
    if key is None:
        return loss, callable_name(loss)
    from nitrain.trainers import _keras_objects as c

    if key == "mse":
        return keras.losses.MeanSquaredError(name="mse"), key
    if key in ("mae", "l1"):
        return keras.losses.MeanAbsoluteError(name=key), key
    if key == "bce":
        return keras.losses.BinaryCrossentropy(from_logits=True, name="bce"), key
    if key in CLASS_LOSSES:
        return c.cross_entropy, key
    return c.soft_dice, key


def make_keras_metrics(metrics, classes: int) -> list:
    """keras metrics for the validated ``_objectives`` metrics (``classes`` = the output's last axis): the
    built-in ones are ``_keras_objects``' registered classes (so a saved model reloads with
    ``load_model``), keras Metric instances pass through, other callables become batch-size weighted
    means."""
    keras = require_keras("ModelTrainer")
    from nitrain.trainers import _keras_objects as c

    out = []
    for m in metrics:
        if isinstance(m, UserMetric):
            fn = m.fn
            out.append(
                fn if isinstance(fn, keras.metrics.Metric) else keras.metrics.MeanMetricWrapper(fn, m.name)
            )
        elif type(m) in c.CLASSES:
            kind = c.CLASSES[type(m)]
            if kind is c.EpochError:
                out.append(c.EpochError(m.name, m.power))
            elif kind is c.EpochDice:
                out.append(c.EpochDice(m.name, classes))
            elif kind is c.EpochHD95:
                out.append(c.EpochHD95(m.name, classes, spacing=m.spacing))
            else:
                out.append(kind(m.name))
        else:
            out.append(c.SumMetric(m, m.name, classes))
    return out


def make_keras_optimizer(optimizer, lr: float, grad_clip):
    keras = require_keras("ModelTrainer")
    clip = {} if grad_clip is None else {"global_clipnorm": float(grad_clip)}
    if isinstance(optimizer, str):
        entry = OPTIMIZERS.get(optimizer.lower())
        if entry is None:
            raise ValueError(
                f"ModelTrainer: unknown optimizer {optimizer!r}; valid names: {list(OPTIMIZERS)}, "
                "or a keras.optimizers.Optimizer class or instance"
            )
        name, extra = entry
        return getattr(keras.optimizers, name)(learning_rate=lr, **extra, **clip)
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


def keras_channels(model, channels: str):
    """'first', 'last' or None (batches passed as served): ``channels`` when given, else the model's
    ``nitrain_spec['channels']``, else its first layer with a ``data_format``."""
    declared = declared_channels(model, channels, "ModelTrainer")
    if declared is not None:
        return declared
    flatten = getattr(model, "_flatten_layers", None)
    for layer in flatten(include_self=True, recursive=True) if flatten is not None else []:
        fmt = getattr(layer, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            return "first" if fmt == "channels_first" else "last"
    return None


def inner_callback(bar, forward_to):
    """The one keras callback of each inner ``model.fit`` / ``model.evaluate``: moves the tqdm ``bar`` and
    hands the batch hooks (and, for validation, ``on_test_begin`` / ``on_test_end``) to the user's keras
    callbacks ``forward_to``; their train and epoch hooks come from the trainer's epoch loop."""
    keras: Any = require_keras("ModelTrainer")
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


def is_tf_dataset(data) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def as_tuple(x):
    return tuple(x) if isinstance(x, list | tuple) else x
