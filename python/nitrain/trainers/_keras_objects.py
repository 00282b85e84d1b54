"""The keras losses and metrics ``ModelTrainer`` compiles into a keras model, registered with keras'
serialization (package ``nitrain``), so that a model saved after training (``model.save('m.keras')``)
loads again with ``keras.models.load_model``.

Importing this module imports keras and registers the objects; ``nitrain.trainers._keras_saving`` imports
it as soon as keras is imported in a process that imported ``nitrain.trainers``. The registered names
(``nitrain>EpochError`` ...) are stored in saved models: keep them stable.
"""

from __future__ import annotations

import numpy as np

from nitrain._frameworks import require_keras

keras = require_keras("nitrain.trainers")
ops = keras.ops
_register = keras.saving.register_keras_serializable


def class_axis_targets(y, out):
    """Class indices (int32, ``out``'s shape without its last axis) from one-hot / probability targets
    shaped like ``out``, index maps with a trailing length-1 axis, or plain index arrays."""
    if tuple(y.shape) == tuple(out.shape) and out.shape[-1] > 1:
        return ops.argmax(y, axis=-1)
    if len(y.shape) == len(out.shape) and y.shape[-1] == 1:
        y = y[..., 0]
    return ops.cast(ops.round(y), "int32")


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
        class_axis_targets(y_true, y_pred), y_pred, from_logits=True
    )


@_register(package="nitrain", name="soft_dice")
def soft_dice(y_true, y_pred, eps: float = 1.0):
    """1 - soft Dice from logits (sigmoid for one output channel, softmax over the last axis for several),
    per class over the whole batch, averaged over classes: ``_objectives.soft_dice_loss`` channels-last."""
    c = y_pred.shape[-1]
    y = align(y_true, y_pred)
    if c == 1:
        probs, target = ops.sigmoid(y_pred), ops.reshape(y, ops.shape(y_pred))
    else:
        probs = ops.softmax(y_pred, axis=-1)
        target = y if tuple(y.shape) == tuple(y_pred.shape) else ops.one_hot(class_axis_targets(y, y_pred), c)
    target = ops.cast(target, probs.dtype)
    axes = tuple(range(len(y_pred.shape) - 1))
    inter = ops.sum(probs * target, axis=axes)
    total = ops.sum(probs, axis=axes) + ops.sum(target, axis=axes)
    return 1.0 - ops.mean((2.0 * inter + eps) / (total + eps))


# -- metrics ---------------------------------------------------------------------------------------------
class SumMetric(keras.metrics.Metric):
    """Sums (float64) of per-batch statistics over the whole epoch, one value at its end, like the torch
    trainer's metrics. ``_direction`` tells keras callbacks (EarlyStopping, ReduceLROnPlateau with
    ``mode='auto'``) whether higher is better."""

    size = 2

    def __init__(self, name, size=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.size = size or type(self).size
        self.total = self.add_variable(shape=(self.size,), initializer="zeros", dtype="float64", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, "float64")
        y_true = ops.cast(align(y_true, y_pred), "float64")
        self.total.assign_add(ops.cast(ops.stack(self.stats(y_true, y_pred)), "float64"))

    def reset_state(self):
        self.total.assign(ops.zeros((self.size,), dtype="float64"))

    @staticmethod
    def _count(a):
        return ops.cast(ops.size(a), "float64")


@_register(package="nitrain")
class EpochError(SumMetric):
    """Mean of ``|output - target| ** power`` over every value of the epoch (power 1: mae, 2: mse)."""

    _direction = "down"

    def __init__(self, name, power, **kwargs):
        super().__init__(name, **kwargs)
        self.power = power

    def stats(self, y, out):
        e = ops.abs(out - ops.reshape(y, ops.shape(out))) ** self.power
        return [ops.sum(e), self._count(e)]

    def result(self):
        return self.total[0] / ops.maximum(self.total[1], 1.0)

    def get_config(self):
        return {**super().get_config(), "power": self.power}


@_register(package="nitrain")
class EpochR2(SumMetric):
    """1 - SSE / SST over every output value of the epoch (flattened)."""

    size = 4
    _direction = "up"

    def stats(self, y, out):
        y = ops.reshape(y, ops.shape(out))
        return [ops.sum((y - out) ** 2), ops.sum(y), ops.sum(y * y), self._count(y)]

    def result(self):
        sse, sy, syy, n = (self.total[i] for i in range(4))
        sst = syy - sy * sy / ops.maximum(n, 1.0)
        return ops.where(sst > 0, 1.0 - sse / ops.where(sst > 0, sst, 1.0), np.nan)


@_register(package="nitrain")
class EpochAccuracy(SumMetric):
    """Several outputs on the last axis: argmax vs class index; one: logit > 0 vs target > 0.5."""

    _direction = "up"

    def stats(self, y, out):
        if len(out.shape) >= 2 and out.shape[-1] > 1:
            pred, target = ops.argmax(out, axis=-1), class_axis_targets(y, out)
            target = ops.reshape(target, ops.shape(pred))
            hit = ops.cast(ops.equal(ops.cast(pred, "int32"), ops.cast(target, "int32")), "float64")
        else:
            y = ops.reshape(y, ops.shape(out))
            hit = ops.cast(ops.equal(out > 0, y > 0.5), "float64")
        return [ops.sum(hit), self._count(hit)]

    def result(self):
        return self.total[0] / ops.maximum(self.total[1], 1.0)


@_register(package="nitrain")
class EpochDice(SumMetric):
    """Hard Dice over the epoch, per foreground class (1..C-1, or the one channel), then averaged."""

    _direction = "up"

    def __init__(self, name, classes, **kwargs):
        self.classes = int(classes)
        super().__init__(name, size=2 * max(self.classes - 1, 1), **kwargs)

    def stats(self, y, out):
        if self.classes > 1:
            pred = ops.argmax(out, axis=-1)
            target = ops.reshape(class_axis_targets(y, out), ops.shape(pred))
            rows = []
            for k in range(1, self.classes):
                p, t = ops.equal(pred, k), ops.equal(target, k)
                rows += [
                    ops.sum(ops.cast(p & t, "float64")),
                    ops.sum(ops.cast(p, "float64") + ops.cast(t, "float64")),
                ]
            return rows
        p, t = out > 0, ops.reshape(y, ops.shape(out)) > 0.5
        return [ops.sum(ops.cast(p & t, "float64")), ops.sum(ops.cast(p, "float64") + ops.cast(t, "float64"))]

    def result(self):
        inter, both = self.total[0::2], self.total[1::2]
        return ops.mean(ops.where(both > 0, 2.0 * inter / ops.where(both > 0, both, 1.0), 1.0))

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}


#: every object registered here, by its registered name
REGISTERED = {
    keras.saving.get_registered_name(obj): obj
    for obj in (cross_entropy, soft_dice, EpochError, EpochR2, EpochAccuracy, EpochDice)
}
