"""Loss and metric names, their validation, and the epoch metrics' math, written once for both backends.

Every built-in metric accumulates *sufficient statistics* (float64 sums) over the epoch and turns them
into one value at its end, so it is computed over the whole epoch (and, under ``torchrun``, over every
rank's batches), never as a mean of per-batch values.

The math is written against a small array adapter ``ops`` (``_Ops`` below lists what it must offer): the
torch backend computes the per-batch sums with torch tensors (on the GPU), the keras metric classes in
``_keras_objects`` with ``keras.ops`` inside the compiled step. ``Metric.value`` takes the summed vector and
an array module with numpy's ``maximum`` / ``where`` / ``mean``: numpy on float64 totals (the torch
backend), or ``keras.ops`` (a keras metric's ``result()``). No framework is imported here.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

LOSSES = ("mse", "mae", "l1", "bce", "cross_entropy", "categorical_crossentropy", "dice")
CLASS_LOSSES = ("cross_entropy", "categorical_crossentropy")
METRICS = ("mae", "mse", "r2", "accuracy", "dice")


class _Ops(Protocol):
    """What the metric math needs from a framework; ``axis`` is the class axis (torch 1, keras -1)."""

    axis: int

    def f64(self, a) -> Any: ...
    def abs(self, a) -> Any: ...
    def sum(self, a) -> Any: ...
    def count(self, a) -> Any: ...  # number of elements, float64
    def shape(self, a) -> tuple: ...
    def like(self, a, b) -> Any: ...  # ``a`` reshaped to ``b``'s shape
    def argmax(self, a) -> Any: ...  # over the class axis
    def squeeze_class(self, a) -> Any: ...  # drop a length-1 class axis
    def to_int(self, a) -> Any: ...  # round to integers
    def equal(self, a, b) -> Any: ...
    def both(self, a, b) -> Any: ...  # logical and, as float64


def loss_key(loss, owner: str = "ModelTrainer") -> str | None:
    """The built-in loss ``loss`` names (lower case), None for a callable; anything else is refused."""
    if isinstance(loss, str):
        key = loss.lower()
        if key not in LOSSES:
            raise ValueError(f"{owner}: unknown loss {loss!r}; valid names: {list(LOSSES)}, or a callable")
        return key
    if callable(loss):
        return None
    raise TypeError(f"{owner}: loss must be one of {list(LOSSES)} or a callable, got {loss!r}")


def callable_name(fn) -> str:
    return getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__


def check_target(loss_name: str, out_shape, y_shape, axis: int, owner: str = "ModelTrainer") -> None:
    """Before the first step: can ``loss_name`` compare the model's output with the targets? ``axis`` is
    the output's class axis (1 or -1)."""
    out_shape, y_shape = tuple(out_shape), tuple(y_shape)
    if len(y_shape) == 1 and len(out_shape) == 2 and out_shape[1] == 1:
        y_shape = (*y_shape, 1)
    same = out_shape[1:] == y_shape[1:]
    classes = out_shape[axis] if len(out_shape) >= 2 else 1
    rest = list(out_shape[1:])
    if len(out_shape) >= 2:
        del rest[axis if axis < 0 else axis - 1]
    with_one = [*rest, 1] if axis == -1 else [1, *rest]
    as_indices = list(y_shape[1:]) in (rest, with_one)
    if loss_name in CLASS_LOSSES or (loss_name == "dice" and classes > 1):
        ok = (same or as_indices) and len(out_shape) >= 2
        want = "one-hot targets shaped like the output, or class indices without its class axis"
    elif loss_name in ("mse", "mae", "l1", "bce", "dice"):
        ok, want = same, "the same shape"
    else:
        return  # a user's loss: its own business
    if not ok:
        raise ValueError(
            f"{owner}: loss {loss_name!r} needs {want}; the model's output has shape {out_shape} but "
            f"the target has shape {y_shape} (first batch; check channels= and the number of outputs)"
        )


# -- metrics -----------------------------------------------------------------------------------------
def class_targets(ops: _Ops, out, y):
    """Class indices (``out``'s shape without its class axis) from one-hot / probability targets shaped
    like ``out``, index maps with a length-1 class axis, or plain index arrays."""
    if ops.shape(y) == ops.shape(out) and len(ops.shape(out)) >= 2 and ops.shape(out)[ops.axis] > 1:
        return ops.to_int(ops.argmax(y))
    if len(ops.shape(y)) == len(ops.shape(out)) and ops.shape(y)[ops.axis] == 1:
        y = ops.squeeze_class(y)
    return ops.to_int(y)


def _mean(total, xp):
    return total[0] / xp.maximum(total[1], 1.0)


class Metric:
    """A metric from sums over the epoch: ``stats(ops, out, y)`` gives the list of float64 sums of one
    batch (``out`` the model's output, ``y`` the target, already aligned), ``value(total, xp)`` the metric
    from the summed vector. ``direction`` says whether higher is better ('up') or lower ('down')."""

    name = "metric"
    direction = "down"

    def size(self, classes: int) -> int:
        return 2

    def stats(self, ops: _Ops, out, y) -> list:
        raise NotImplementedError

    def value(self, total, xp=np):
        return _mean(total, xp)


class Error(Metric):
    """Mean of ``|output - target| ** power`` over every value of the epoch (power 1: mae, 2: mse)."""

    def __init__(self, name: str, power: int):
        self.name, self.power = name, power

    def stats(self, ops, out, y):
        e = ops.abs(ops.f64(out) - ops.f64(ops.like(y, out))) ** self.power
        return [ops.sum(e), ops.count(e)]


class R2(Metric):
    """1 - SSE / SST over every output value of the epoch (flattened)."""

    name, direction = "r2", "up"

    def size(self, classes):
        return 4

    def stats(self, ops, out, y):
        o, y = ops.f64(out), ops.f64(ops.like(y, out))
        return [ops.sum((y - o) ** 2), ops.sum(y), ops.sum(y * y), ops.count(y)]

    def value(self, total, xp=np):
        sse, sy, syy, n = (total[i] for i in range(4))
        sst = syy - sy * sy / xp.maximum(n, 1.0)
        return xp.where(sst > 0, 1.0 - sse / xp.where(sst > 0, sst, 1.0), np.nan)


class Accuracy(Metric):
    """Several outputs on the class axis: argmax vs class index (or argmax of one-hot targets); one output:
    a logit > 0 vs target > 0.5."""

    name, direction = "accuracy", "up"

    def stats(self, ops, out, y):
        if len(ops.shape(out)) >= 2 and ops.shape(out)[ops.axis] > 1:
            pred = ops.argmax(out)
            hit = ops.equal(ops.to_int(pred), ops.like(class_targets(ops, out, y), pred))
        else:
            hit = ops.equal(out > 0, ops.like(y, out) > 0.5)
        hit = ops.f64(hit)
        return [ops.sum(hit), ops.count(hit)]


class Dice(Metric):
    """Hard Dice over the epoch: one output channel -> logit > 0 vs target > 0.5; several -> argmax and the
    mean of the foreground classes' (1..C-1) Dice. Each class's Dice is 2|P∩Y| / (|P| + |Y|) summed over
    the whole epoch (1 when both are empty)."""

    name, direction = "dice", "up"

    def size(self, classes):
        return 2 * max(int(classes) - 1, 1)

    def stats(self, ops, out, y):
        classes = ops.shape(out)[ops.axis] if len(ops.shape(out)) >= 2 else 1
        if classes > 1:
            pred = ops.to_int(ops.argmax(out))
            target = ops.like(class_targets(ops, out, y), pred)
            pairs = [(ops.equal(pred, k), ops.equal(target, k)) for k in range(1, classes)]
        else:
            pairs = [(out > 0, ops.like(y, out) > 0.5)]
        rows = []
        for p, t in pairs:
            rows += [ops.sum(ops.both(p, t)), ops.sum(ops.f64(p)) + ops.sum(ops.f64(t))]
        return rows

    def value(self, total, xp=np):
        inter, both = total[0::2], total[1::2]
        return xp.mean(xp.where(both > 0, 2.0 * inter / xp.where(both > 0, both, 1.0), 1.0))


class UserMetric(Metric):
    """A user's callable ``f``: the batch-size weighted mean of its values over the epoch. Its argument
    order is the framework's (torch ``f(output, target)``, keras ``f(y_true, y_pred)``)."""

    def __init__(self, fn):
        self.fn = fn
        self.name = callable_name(fn)


def make_metrics(metrics, owner: str = "ModelTrainer") -> list[Metric]:
    """The metrics ``metrics`` asks for (a name, a callable, a ``Metric`` or a list of them), validated
    once for both backends; names must be unique."""
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics) or isinstance(metrics, Metric):
        metrics = [metrics]
    out: list[Metric] = []
    for m in metrics:
        if isinstance(m, str):
            key = m.lower()
            if key in ("mae", "mse"):
                out.append(Error(key, 1 if key == "mae" else 2))
            elif key == "r2":
                out.append(R2())
            elif key in ("accuracy", "acc"):
                out.append(Accuracy())
            elif key == "dice":
                out.append(Dice())
            else:
                raise ValueError(
                    f"{owner}: unknown metric {m!r}; valid names: {list(METRICS)}, or a callable"
                )
        elif isinstance(m, Metric):
            out.append(m)
        elif callable(m):
            out.append(UserMetric(m))
        else:
            raise TypeError(f"{owner}: a metric must be a name in {list(METRICS)} or a callable, got {m!r}")
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{owner}: metric names must be unique, got {names}")
    return out
