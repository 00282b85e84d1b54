"""Loss and metric names, their validation, and the epoch metrics' math, written once for both backends.

Every built-in metric accumulates *sufficient statistics* (float64 sums) over the epoch and turns them
into one value at its end, so it is computed over the whole epoch (and, under ``torchrun``, over every
rank's batches), never as a mean of per-batch values.

The math is written against a small array adapter ``ops`` (``_Ops`` below lists what it must offer): the
torch backend computes the per-batch sums with torch tensors (on the GPU), the keras metric classes in
``_keras_objects`` with ``keras.ops`` inside the compiled step. ``Metric.value`` takes the summed vector and
an array module with numpy's ``maximum`` / ``where`` / ``mean``: numpy on float64 totals (the torch
backend), or ``keras.ops`` (a keras metric's ``result()``). No framework is imported here.

A metric with ``host = True`` (``hd95``) computes its per-batch sums on numpy arrays instead (distance
transforms have no ``keras.ops``): ``ops.numpy`` brings the batch's label maps to the host, the sums go
back as float64, and the keras backend runs such a model eagerly. A metric reports one history value per
name of ``values(total)``: the segmentation metrics add one per foreground class (``dice_1``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

LOSSES = ("mse", "mae", "l1", "bce", "cross_entropy", "categorical_crossentropy", "dice")
CLASS_LOSSES = ("cross_entropy", "categorical_crossentropy")
METRICS = ("mae", "mse", "r2", "accuracy", "dice", "hd95")


class _Ops(Protocol):
    """What the metric math needs from a framework; ``axis`` is the class axis (torch 1, keras -1)."""

    axis: int

    def f64(self, a: Any) -> Any: ...
    def abs(self, a: Any) -> Any: ...
    def sum(self, a: Any) -> Any: ...
    def count(self, a: Any) -> Any: ...  # number of elements, float64
    def shape(self, a: Any) -> tuple: ...
    def like(self, a: Any, b: Any) -> Any: ...  # ``a`` reshaped to ``b``'s shape
    def argmax(self, a: Any) -> Any: ...  # over the class axis
    def squeeze_class(self, a: Any) -> Any: ...  # drop a length-1 class axis
    def to_int(self, a: Any) -> Any: ...  # round to integers
    def equal(self, a: Any, b: Any) -> Any: ...
    def both(self, a: Any, b: Any) -> Any: ...  # logical and, as float64
    def numpy(self, a: Any) -> np.ndarray: ...  # the array on the host (host metrics only)


def loss_key(loss: object, owner: str = "ModelTrainer") -> str | None:
    """The built-in loss ``loss`` names (lower case), None for a callable; anything else is refused."""
    if isinstance(loss, str):
        key = loss.lower()
        if key not in LOSSES:
            raise ValueError(f"{owner}: unknown loss {loss!r}; valid names: {list(LOSSES)}, or a callable")
        return key
    if callable(loss):
        return None
    raise TypeError(f"{owner}: loss must be one of {list(LOSSES)} or a callable, got {loss!r}")


def callable_name(fn: object) -> str:
    return getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__


def check_target(
    loss_name: str, out_shape: Sequence[int], y_shape: Sequence[int], axis: int, owner: str = "ModelTrainer"
) -> None:
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
def class_targets(ops: _Ops, out: Any, y: Any) -> Any:
    """Class indices (``out``'s shape without its class axis) from one-hot / probability targets shaped
    like ``out``, index maps with a length-1 class axis, or plain index arrays."""
    if ops.shape(y) == ops.shape(out) and len(ops.shape(out)) >= 2 and ops.shape(out)[ops.axis] > 1:
        return ops.to_int(ops.argmax(y))
    if len(ops.shape(y)) == len(ops.shape(out)) and ops.shape(y)[ops.axis] == 1:
        y = ops.squeeze_class(y)
    return ops.to_int(y)


def _mean(total: Any, xp: Any) -> Any:
    return total[0] / xp.maximum(total[1], 1.0)


class Metric:
    """A metric from sums over the epoch: ``stats(ops, out, y)`` gives the list of float64 sums of one
    batch (``out`` the model's output, ``y`` the target, already aligned), ``value(total, xp)`` the metric
    from the summed vector, ``values(total)`` every history value it reports (``{name: value}``).
    ``direction`` says whether higher is better ('up') or lower ('down'); ``host`` that ``stats`` works on
    numpy arrays (through ``ops.numpy``) and returns numbers rather than tensors."""

    name = "metric"
    direction = "down"
    host = False

    def size(self, classes: int) -> int:
        return 2

    def stats(self, ops: _Ops, out: Any, y: Any) -> list[Any]:
        raise NotImplementedError

    def value(self, total: Any, xp: Any = np) -> Any:
        return _mean(total, xp)

    def values(self, total: Any) -> dict[str, float]:
        """The history values from the summed vector (float64 numpy)."""
        return {self.name: float(self.value(np.asarray(total, dtype=np.float64), np))}


class Error(Metric):
    """Mean of ``|output - target| ** power`` over every value of the epoch (power 1: mae, 2: mse)."""

    def __init__(self, name: str, power: int) -> None:
        self.name, self.power = name, power

    def stats(self, ops: _Ops, out: Any, y: Any) -> list[Any]:
        e = ops.abs(ops.f64(out) - ops.f64(ops.like(y, out))) ** self.power
        return [ops.sum(e), ops.count(e)]


class R2(Metric):
    """1 - SSE / SST over every output value of the epoch (flattened)."""

    name, direction = "r2", "up"

    def size(self, classes: int) -> int:
        return 4

    def stats(self, ops: _Ops, out: Any, y: Any) -> list[Any]:
        o, y = ops.f64(out), ops.f64(ops.like(y, out))
        return [ops.sum((y - o) ** 2), ops.sum(y), ops.sum(y * y), ops.count(y)]

    def value(self, total: Any, xp: Any = np) -> Any:
        sse, sy, syy, n = (total[i] for i in range(4))
        sst = syy - sy * sy / xp.maximum(n, 1.0)
        return xp.where(sst > 0, 1.0 - sse / xp.where(sst > 0, sst, 1.0), np.nan)


class Accuracy(Metric):
    """Several outputs on the class axis: argmax vs class index (or argmax of one-hot targets); one output:
    a logit > 0 vs target > 0.5."""

    name, direction = "accuracy", "up"

    def stats(self, ops: _Ops, out: Any, y: Any) -> list[Any]:
        if len(ops.shape(out)) >= 2 and ops.shape(out)[ops.axis] > 1:
            pred = ops.argmax(out)
            hit = ops.equal(ops.to_int(pred), ops.like(class_targets(ops, out, y), pred))
        else:
            hit = ops.equal(out > 0, ops.like(y, out) > 0.5)
        hit = ops.f64(hit)
        return [ops.sum(hit), ops.count(hit)]


def label_maps(ops: _Ops, out: Any, y: Any) -> tuple[Any, Any, range]:
    """``(predicted, true, classes)``: integer label maps of a segmentation output and its target, and
    the foreground labels. Several output channels: argmax and the class indices, classes 1..C-1 (the
    maps lose the class axis); one channel: logit > 0 and target > 0.5 as 0/1, class 1 (the maps keep
    it)."""
    classes = ops.shape(out)[ops.axis] if len(ops.shape(out)) >= 2 else 1
    if classes > 1:
        pred = ops.to_int(ops.argmax(out))
        return pred, ops.like(class_targets(ops, out, y), pred), range(1, classes)
    return ops.to_int(out > 0), ops.to_int(ops.like(y, out) > 0.5), range(1, 2)


class PerClass(Metric):
    """A segmentation metric with two float64 sums per foreground class (1..C-1, or class 1 of a
    one-channel output). It reports the mean over the classes as ``name`` and each class ``k`` as
    ``name_k`` (``k`` the class index: the label value in index maps, the channel in one-hot maps)."""

    def size(self, classes: int) -> int:
        return 2 * max(int(classes) - 1, 1)

    def per_class(self, total: Any, xp: Any = np) -> Any:
        """One value per foreground class from the summed vector."""
        raise NotImplementedError

    def value(self, total: Any, xp: Any = np) -> Any:
        return xp.mean(self.per_class(total, xp))

    def values(self, total: Any) -> dict[str, float]:
        total = np.asarray(total, dtype=np.float64)
        per = self.per_class(total, np)
        out = {self.name: float(self.value(total, np))}
        out.update({f"{self.name}_{k}": float(v) for k, v in enumerate(per, start=1)})
        return out


class Dice(PerClass):
    """Hard Dice over the epoch: one output channel -> logit > 0 vs target > 0.5; several -> argmax. Each
    foreground class's Dice is 2 sum|P∩Y| / (sum|P| + sum|Y|), the sums over every item of the pass (so
    blocks that tile whole volumes give the volumes' Dice), 1 when both are empty; ``dice`` is the mean of
    the classes' (1..C-1), ``dice_k`` class k's."""

    name, direction = "dice", "up"

    def stats(self, ops: _Ops, out: Any, y: Any) -> list[Any]:
        pred, target, classes = label_maps(ops, out, y)
        rows = []
        for k in classes:
            p, t = ops.equal(pred, k), ops.equal(target, k)
            rows += [ops.sum(ops.both(p, t)), ops.sum(ops.f64(p)) + ops.sum(ops.f64(t))]
        return rows

    def per_class(self, total: Any, xp: Any = np) -> Any:
        inter, both = total[0::2], total[1::2]
        return xp.where(both > 0, 2.0 * inter / xp.where(both > 0, both, 1.0), 1.0)


class HD95(PerClass):
    """95% Hausdorff distance of each foreground class (labels as for ``Dice``), computed per item (per
    volume when the loader serves whole volumes) and averaged over the items where both the prediction and
    the target contain the class; items where only one of them does (a missed or a spurious structure,
    which Dice counts) and items where neither does are left out. A class that never had both is NaN.
    ``hd95`` is the mean over the classes that are not NaN, ``hd95_k`` class k's.

    Distances are in voxels, or in the units of ``spacing`` (one value per spatial axis, in the order of
    the model's output, e.g. mm) when every item has that spacing. Per item: the larger of the two directed
    95th percentiles of the distances between the surface voxels of prediction and target (see
    ``_surface.hd95``). Computed on the host from the batch's label maps (ANTs' exact distance transform)."""

    name, direction, host = "hd95", "down", True

    def __init__(self, spacing: Sequence[float] | None = None) -> None:
        if spacing is not None:
            try:
                spacing = tuple(float(s) for s in spacing)
            except (TypeError, ValueError):
                raise ValueError(f"hd95: spacing must be a sequence of numbers, got {spacing!r}") from None
            if not spacing or not all(s > 0 for s in spacing):
                raise ValueError(f"hd95: spacing must be positive numbers, one per axis, got {spacing!r}")
        self.spacing = spacing

    def stats(self, ops: _Ops, out: Any, y: Any) -> list[Any]:
        from nitrain.trainers._surface import hd95

        pred, target, classes = label_maps(ops, out, y)
        pred, target = np.asarray(ops.numpy(pred)), np.asarray(ops.numpy(target))
        if pred.ndim == len(ops.shape(out)):  # one channel: drop its class axis
            pred, target = np.take(pred, 0, axis=ops.axis), np.take(target, 0, axis=ops.axis)
        if self.spacing is not None and len(self.spacing) != pred.ndim - 1:
            raise ValueError(
                f"hd95: spacing {self.spacing} has {len(self.spacing)} values but the label maps have "
                f"{pred.ndim - 1} spatial axes (shape {pred.shape[1:]})"
            )
        rows: list[float] = []
        for k in classes:
            found = [hd95(p == k, t == k, self.spacing) for p, t in zip(pred, target, strict=True)]
            found = [d for d in found if not np.isnan(d)]
            rows += [float(np.sum(found)), float(len(found))]
        return rows

    def per_class(self, total: Any, xp: Any = np) -> Any:
        sums, n = total[0::2], total[1::2]
        return xp.where(n > 0, sums / xp.maximum(n, 1.0), np.nan)

    def value(self, total: Any, xp: Any = np) -> Any:
        n = total[1::2]  # item counts: whole numbers
        known = xp.sum(xp.minimum(n, 1.0))  # classes with a value
        mean = xp.sum(total[0::2] / xp.maximum(n, 1.0)) / xp.maximum(known, 1.0)  # (sums are 0 where n is)
        return xp.where(known > 0, mean, np.nan)


class UserMetric(Metric):
    """A user's callable ``f``: the batch-size weighted mean of its values over the epoch. Its argument
    order is the framework's (torch ``f(output, target)``, keras ``f(y_true, y_pred)``)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.name = callable_name(fn)


def make_metrics(metrics: Any, owner: str = "ModelTrainer") -> list[Metric]:
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
            elif key == "hd95":
                out.append(HD95())
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
    for m in out:  # a per-class metric's history keys are its name and name_1, name_2, ...
        if not isinstance(m, PerClass):
            continue
        taken = [n for n in names if re.fullmatch(rf"{re.escape(m.name)}_\d+", n)]
        if taken:
            raise ValueError(
                f"{owner}: metric {m.name!r} reports per-class values {m.name}_1, {m.name}_2, ...; "
                f"rename the metric(s) {taken}"
            )
    return out
