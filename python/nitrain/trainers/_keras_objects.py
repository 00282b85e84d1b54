"""The keras losses and metrics ``ModelTrainer`` compiles into a keras model, registered with keras'
serialization (package ``nitrain``), so that a model saved after training (``model.save('m.keras')``)
loads again with ``keras.models.load_model``.

The metrics' math is ``_objectives``' (shared with the torch backend), run on ``keras.ops`` with the
classes on the last axis. Importing this module imports keras and registers the objects;
``nitrain.trainers._keras_saving`` imports it as soon as keras is imported in a process that imported
``nitrain.trainers``. The registered names (``nitrain>EpochError`` ...) are stored in saved models: keep
them stable, with their constructor arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nitrain._frameworks import require_keras
from nitrain.trainers import _objectives as obj

keras: Any = require_keras("nitrain.trainers")
ops = keras.ops
_register = keras.saving.register_keras_serializable


class KerasOps:
    """``_objectives._Ops`` on keras tensors, class axis -1."""

    axis = -1

    @staticmethod
    def f64(a):
        return ops.cast(a, "float64")

    abs = staticmethod(ops.abs)

    @staticmethod
    def sum(a):
        return ops.sum(ops.cast(a, "float64"))

    @staticmethod
    def count(a):
        return ops.cast(ops.size(a), "float64")

    @staticmethod
    def shape(a):
        return tuple(a.shape)

    @staticmethod
    def like(a, b):
        return ops.reshape(a, ops.shape(b))

    @staticmethod
    def argmax(a):
        return ops.argmax(a, axis=-1)

    @staticmethod
    def squeeze_class(a):
        return a[..., 0]

    @staticmethod
    def to_int(a):
        return ops.cast(ops.round(a), "int32") if "float" in str(a.dtype) else ops.cast(a, "int32")

    @staticmethod
    def equal(a, b):
        return ops.equal(a, b)

    @staticmethod
    def both(a, b):
        return ops.cast(ops.logical_and(a, b), "float64")

    @staticmethod
    def numpy(a):
        try:
            return ops.convert_to_numpy(a)
        except Exception as e:  # a symbolic tensor: the step is compiled (tf.function, jax.jit)
            raise RuntimeError(
                "nitrain's host metrics (hd95) need a keras model run eagerly: compile it with "
                "run_eagerly=True (ModelTrainer does so when it is given such a metric)"
            ) from e


OPS = KerasOps()


def align(y, out):
    """Scalar targets of shape (N,) become (N, 1) for a model with one output (as for torch)."""
    if len(y.shape) == 1 and len(out.shape) == 2 and out.shape[-1] == 1:
        return ops.expand_dims(y, -1)
    return y


# -- losses ----------------------------------------------------------------------------------------------
@_register(package="nitrain", name="cross_entropy")
def cross_entropy(y_true, y_pred):
    """Cross-entropy on logits, classes on the last axis; targets as class indices, index maps or one-hot."""
    if (
        len(y_true.shape) == len(y_pred.shape)
        and y_true.shape[-1] == y_pred.shape[-1]
        and y_pred.shape[-1] > 1
    ):
        return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True)
    return keras.losses.sparse_categorical_crossentropy(
        obj.class_targets(OPS, y_pred, y_true), y_pred, from_logits=True
    )


@_register(package="nitrain", name="soft_dice")
def soft_dice(y_true, y_pred, eps: float = 1.0):
    """1 - soft Dice from logits (sigmoid for one output channel, softmax over the last axis for several),
    per class over the whole batch, averaged over classes: the torch backend's ``soft_dice_loss``
    channels-last."""
    c = y_pred.shape[-1]
    y = align(y_true, y_pred)
    if c == 1:
        probs, target = ops.sigmoid(y_pred), ops.reshape(y, ops.shape(y_pred))
    else:
        probs = ops.softmax(y_pred, axis=-1)
        same = tuple(y.shape) == tuple(y_pred.shape)
        target = y if same else ops.one_hot(obj.class_targets(OPS, y_pred, y), c)
    target = ops.cast(target, probs.dtype)
    axes = tuple(range(len(y_pred.shape) - 1))
    inter = ops.sum(probs * target, axis=axes)
    total = ops.sum(probs, axis=axes) + ops.sum(target, axis=axes)
    return 1.0 - ops.mean((2.0 * inter + eps) / (total + eps))


# -- metrics ---------------------------------------------------------------------------------------------
class SumMetric(keras.metrics.Metric):
    """A shared ``_objectives.Metric`` (``self.spec``) as a keras metric: float64 sums of its per-batch
    statistics over the whole epoch, its value at the end. ``_direction`` tells keras callbacks
    (EarlyStopping, ReduceLROnPlateau with ``mode='auto'``) whether higher is better."""

    def __init__(self, spec: obj.Metric, name, classes: int = 1, **kwargs):
        super().__init__(name=name, **kwargs)
        self.spec = spec
        self._direction = spec.direction
        self.size = spec.size(classes)
        self.total = self.add_variable(shape=(self.size,), initializer="zeros", dtype="float64", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, "float64")
        y_true = ops.cast(align(y_true, y_pred), "float64")
        stats = self.spec.stats(OPS, y_pred, y_true)
        if self.spec.host:  # numbers computed on the host, in an eager step
            self.total.assign_add(ops.convert_to_tensor(np.asarray(stats, dtype=np.float64)))
        else:
            self.total.assign_add(ops.stack(stats))

    def reset_state(self):
        self.total.assign(ops.zeros((self.size,), dtype="float64"))

    def result(self):
        return self.spec.value(self.total, ops)

    def totals(self):
        """The summed statistics as a float64 numpy vector."""
        return ops.convert_to_numpy(self.total)


@_register(package="nitrain")
class EpochError(SumMetric):
    """Mean of ``|output - target| ** power`` over every value of the epoch (power 1: mae, 2: mse)."""

    def __init__(self, name, power, **kwargs):
        super().__init__(obj.Error(name, power), name, **kwargs)
        self.power = power

    def get_config(self):
        return {**super().get_config(), "power": self.power}


@_register(package="nitrain")
class EpochR2(SumMetric):
    """1 - SSE / SST over every output value of the epoch (flattened)."""

    def __init__(self, name, **kwargs):
        super().__init__(obj.R2(), name, **kwargs)


@_register(package="nitrain")
class EpochAccuracy(SumMetric):
    """Several outputs on the last axis: argmax vs class index; one: logit > 0 vs target > 0.5."""

    def __init__(self, name, **kwargs):
        super().__init__(obj.Accuracy(), name, **kwargs)


@_register(package="nitrain")
class EpochDice(SumMetric):
    """Hard Dice over the epoch, per foreground class (1..C-1, or the one channel), then averaged."""

    def __init__(self, name, classes, **kwargs):
        self.classes = int(classes)
        super().__init__(obj.Dice(), name, classes=self.classes, **kwargs)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}


@_register(package="nitrain")
class EpochHD95(SumMetric):
    """95% Hausdorff distance per foreground class, per item, averaged over the items where prediction and
    target both contain the class, then over the classes (``_objectives.HD95``). Computed on the host:
    the model must run eagerly (``run_eagerly=True``, which ``ModelTrainer`` sets)."""

    def __init__(self, name, classes, spacing=None, **kwargs):
        self.classes = int(classes)
        self.spacing = None if spacing is None else [float(s) for s in spacing]
        super().__init__(obj.HD95(self.spacing), name, classes=self.classes, **kwargs)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "spacing": self.spacing}


#: the keras class for each built-in ``_objectives`` metric
CLASSES = {
    obj.Error: EpochError,
    obj.R2: EpochR2,
    obj.Accuracy: EpochAccuracy,
    obj.Dice: EpochDice,
    obj.HD95: EpochHD95,
}

#: every object registered here, by its registered name
REGISTERED = {
    keras.saving.get_registered_name(o): o
    for o in (cross_entropy, soft_dice, EpochError, EpochR2, EpochAccuracy, EpochDice, EpochHD95)
}
