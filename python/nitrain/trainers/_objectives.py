"""Losses and epoch metrics for the torch trainer. torch is imported inside the functions only.

Every built-in metric accumulates *sufficient statistics* (sums) over the epoch and turns them into one
value at its end, so it is computed over the whole epoch (and, under ``torchrun``, over every rank's
batches), never as a mean of per-batch values.
"""

from __future__ import annotations

LOSSES = ("mse", "mae", "l1", "bce", "cross_entropy", "categorical_crossentropy", "dice")
METRICS = ("mae", "mse", "r2", "accuracy", "dice")


def align_target(out, y):
    """Scalar targets of shape (N,) become (N, 1) for a model with one output."""
    if y.ndim == 1 and out.ndim == 2 and out.shape[1] == 1:
        return y[:, None]
    return y


def _same_shape(name: str, out, y):
    if tuple(out.shape) != tuple(y.shape):
        raise ValueError(
            f"ModelTrainer: loss {name!r} needs the model output and the target to have the same shape; "
            f"got output {tuple(out.shape)} and target {tuple(y.shape)} (check channels= and the number "
            "of outputs)"
        )


def class_targets(out, y):
    """Class-index targets (long, shape of ``out`` without its class axis 1) from index maps with a
    length-1 channel axis, plain index arrays, or one-hot / probability targets shaped like ``out``."""
    if y.shape == out.shape and out.ndim >= 2 and out.shape[1] > 1:
        return y.argmax(1)
    if y.ndim == out.ndim and y.shape[1] == 1:
        y = y[:, 0]
    return y.round().long()


def _one_hot(out, y):
    import torch

    c = out.shape[1]
    if c == 1:
        return y if y.ndim == out.ndim else y.reshape(out.shape)
    if y.shape == out.shape:
        return y
    idx = class_targets(out, y)
    return torch.nn.functional.one_hot(idx, c).movedim(-1, 1).to(out.dtype)


def soft_dice_loss(out, y, eps: float = 1.0):
    """1 - soft Dice, from logits: sigmoid for one output channel, softmax over axis 1 for several (the
    target then holds class indices or one-hot maps). Dice is computed per class over the whole batch and
    averaged over classes."""
    import torch

    if out.ndim < 2:
        raise ValueError(
            f"ModelTrainer: loss 'dice' needs outputs of shape (N, C, ...), got {tuple(out.shape)}"
        )
    y = align_target(out, y)
    probs = torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, dim=1)
    target = _one_hot(out, y).to(probs.dtype)
    _same_shape("dice", probs, target)
    dims = [0, *range(2, out.ndim)]
    inter = (probs * target).sum(dims)
    total = probs.sum(dims) + target.sum(dims)
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def make_loss(loss):
    """``f(output, target) -> scalar tensor`` and its name."""
    import torch

    if isinstance(loss, str):
        key = loss.lower()
        if key == "mse":
            fn = torch.nn.functional.mse_loss
        elif key in ("mae", "l1"):
            fn = torch.nn.functional.l1_loss
        elif key == "bce":
            fn = torch.nn.functional.binary_cross_entropy_with_logits
        elif key in ("cross_entropy", "categorical_crossentropy"):

            def ce(out, y):
                if y.shape == out.shape:
                    return torch.nn.functional.cross_entropy(out, y)
                return torch.nn.functional.cross_entropy(out, class_targets(out, y))

            return ce, key
        elif key == "dice":
            return soft_dice_loss, key
        else:
            raise ValueError(
                f"ModelTrainer: unknown loss {loss!r}; valid names: {list(LOSSES)}, or a callable"
            )

        def checked(out, y):
            y = align_target(out, y)
            _same_shape(key, out, y)
            return fn(out, y.to(out.dtype))

        return checked, key
    if callable(loss):
        return loss, getattr(loss, "__name__", type(loss).__name__)
    raise TypeError(
        f"ModelTrainer: loss must be one of {list(LOSSES)} or a callable (e.g. a torch loss module), "
        f"got {loss!r}"
    )


# -- metrics -----------------------------------------------------------------------------------------


class Metric:
    """A metric from sums over the epoch: ``stats(out, y)`` gives a float64 vector of sums for one batch,
    ``value(total)`` the metric from the summed vector."""

    name = "metric"
    size = 1

    def stats(self, out, y):
        raise NotImplementedError

    def value(self, total) -> float:
        raise NotImplementedError


class _Error(Metric):
    size = 2

    def __init__(self, name, power):
        self.name, self.power = name, power

    def stats(self, out, y):
        import torch

        y = align_target(out, y)
        e = (out.double() - y.double().reshape(out.shape)).abs() ** self.power
        return torch.stack([e.sum(), torch.tensor(float(e.numel()), dtype=torch.float64, device=e.device)])

    def value(self, total):
        return float(total[0] / max(float(total[1]), 1.0))


class _R2(Metric):
    """1 - SSE / SST over every output value of the epoch (flattened)."""

    name = "r2"
    size = 4

    def stats(self, out, y):
        import torch

        y = align_target(out, y).double().reshape(out.shape)
        o = out.double()
        n = torch.tensor(float(y.numel()), dtype=torch.float64, device=y.device)
        return torch.stack([((y - o) ** 2).sum(), y.sum(), (y * y).sum(), n])

    def value(self, total):
        sse, sy, syy, n = (float(v) for v in total)
        sst = syy - sy * sy / max(n, 1.0)
        return float(1.0 - sse / sst) if sst > 0 else float("nan")


class _Accuracy(Metric):
    """Several outputs along axis 1: argmax vs class index (or argmax of one-hot targets); one output: a
    logit > 0 vs target > 0.5."""

    name = "accuracy"
    size = 2

    def stats(self, out, y):
        import torch

        if out.ndim >= 2 and out.shape[1] > 1:
            pred, target = out.argmax(1), class_targets(out, y)
        else:
            y = align_target(out, y).reshape(out.shape)
            pred, target = out > 0, y > 0.5
        correct = (pred == target.reshape(pred.shape)).sum().double()
        return torch.stack(
            [correct, torch.tensor(float(pred.numel()), dtype=torch.float64, device=out.device)]
        )

    def value(self, total):
        return float(total[0] / max(float(total[1]), 1.0))


class _Dice(Metric):
    """Hard Dice over the epoch: one output channel -> logit > 0 vs target > 0.5; several -> argmax and the
    mean of the foreground classes' (1..C-1) Dice. Each class's Dice is 2|P∩Y| / (|P| + |Y|) summed over
    the whole epoch (1 when both are empty)."""

    name = "dice"

    def __init__(self):
        self.size = None  # set from the first batch (2 sums per class)

    def stats(self, out, y):
        import torch

        if out.ndim >= 2 and out.shape[1] > 1:
            c = out.shape[1]
            pred, target = out.argmax(1), class_targets(out, y).reshape(out.argmax(1).shape)
            rows = []
            for k in range(1, c):
                p, t = pred == k, target == k
                rows += [(p & t).sum(), p.sum() + t.sum()]
        else:
            y = align_target(out, y).reshape(out.shape)
            p, t = out > 0, y > 0.5
            rows = [(p & t).sum(), p.sum() + t.sum()]
        s = torch.stack(rows).double()
        self.size = len(s)
        return s

    def value(self, total):
        dices = []
        for k in range(0, len(total), 2):
            inter, both = float(total[k]), float(total[k + 1])
            dices.append(1.0 if both == 0 else 2 * inter / both)
        return float(sum(dices) / len(dices))


class _Callable(Metric):
    """A user metric ``f(output, target) -> number``: the batch-size weighted mean over the epoch."""

    size = 2

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def stats(self, out, y):
        import torch

        v = self.fn(out, y)
        v = (
            v.detach().double()
            if isinstance(v, torch.Tensor)
            else torch.tensor(float(v), dtype=torch.float64)
        )
        n = float(out.shape[0])
        return torch.stack(
            [v.to(out.device).reshape(()) * n, torch.tensor(n, dtype=torch.float64, device=out.device)]
        )

    def value(self, total):
        return float(total[0] / max(float(total[1]), 1.0))


def make_metrics(metrics) -> list[Metric]:
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    out = []
    for m in metrics:
        if isinstance(m, str):
            key = m.lower()
            if key == "mae":
                out.append(_Error("mae", 1))
            elif key == "mse":
                out.append(_Error("mse", 2))
            elif key == "r2":
                out.append(_R2())
            elif key in ("accuracy", "acc"):
                out.append(_Accuracy())
            elif key == "dice":
                out.append(_Dice())
            else:
                raise ValueError(
                    f"ModelTrainer: unknown metric {m!r}; valid names: {list(METRICS)}, or a callable"
                )
        elif isinstance(m, Metric):
            out.append(m)
        elif callable(m):
            out.append(_Callable(m))
        else:
            raise TypeError(
                f"ModelTrainer: a metric must be a name in {list(METRICS)} or a callable, got {m!r}"
            )
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ValueError(f"ModelTrainer: metric names must be unique, got {names}")
    return out
