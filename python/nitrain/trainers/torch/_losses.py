"""torch losses on logits (classes on axis 1) and the array adapter the shared metric math runs on."""

from __future__ import annotations

from collections.abc import Callable

import torch

from nitrain.trainers._objectives import CLASS_LOSSES, UserMetric, callable_name, class_targets, loss_key


def align_target(out, y):
    """Scalar targets of shape (N,) become (N, 1) for a model with one output."""
    if y.ndim == 1 and out.ndim == 2 and out.shape[1] == 1:
        return y[:, None]
    return y


class TorchOps:
    """``_objectives._Ops`` on torch tensors, class axis 1."""

    axis = 1

    @staticmethod
    def f64(a):
        return a.double()

    abs = staticmethod(torch.abs)

    @staticmethod
    def sum(a):
        return a.sum(dtype=torch.float64) if a.dtype != torch.bool else a.double().sum()

    @staticmethod
    def count(a):
        return torch.tensor(float(a.numel()), dtype=torch.float64, device=a.device)

    @staticmethod
    def shape(a):
        return tuple(a.shape)

    @staticmethod
    def like(a, b):
        return a.reshape(b.shape)

    @staticmethod
    def argmax(a):
        return a.argmax(1)

    @staticmethod
    def squeeze_class(a):
        return a[:, 0]

    @staticmethod
    def to_int(a):
        return a.round().long() if a.is_floating_point() else a.long()

    @staticmethod
    def equal(a, b):
        return a == b

    @staticmethod
    def both(a, b):
        return (a & b).double()

    @staticmethod
    def numpy(a):
        return a.detach().cpu().numpy()


OPS = TorchOps()


def _same_shape(name: str, out, y):
    if tuple(out.shape) != tuple(y.shape):
        raise ValueError(
            f"ModelTrainer: loss {name!r} needs the model output and the target to have the same shape; "
            f"got output {tuple(out.shape)} and target {tuple(y.shape)} (check channels= and the number "
            "of outputs)"
        )


def _one_hot(out, y):
    c = out.shape[1]
    if c == 1:
        return y if y.ndim == out.ndim else y.reshape(out.shape)
    if y.shape == out.shape:
        return y
    return torch.nn.functional.one_hot(class_targets(OPS, out, y), c).movedim(-1, 1).to(out.dtype)


def soft_dice_loss(out, y, eps: float = 1.0):
    """1 - soft Dice, from logits: sigmoid for one output channel, softmax over axis 1 for several (the
    target then holds class indices or one-hot maps). Dice is computed per class over the whole batch and
    averaged over classes."""
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


def _cross_entropy(out, y):
    if y.shape == out.shape:
        return torch.nn.functional.cross_entropy(out, y)
    return torch.nn.functional.cross_entropy(out, class_targets(OPS, out, y))


_ELEMENTWISE: dict[str, Callable[..., torch.Tensor]] = {
    "mse": torch.nn.functional.mse_loss,
    "mae": torch.nn.functional.l1_loss,
    "l1": torch.nn.functional.l1_loss,
    "bce": torch.nn.functional.binary_cross_entropy_with_logits,
}


def make_loss(loss):
    """``f(output, target) -> scalar tensor`` and its name."""
    key = loss_key(loss)
    if key is None:
        return loss, callable_name(loss)
    if key in CLASS_LOSSES:
        return _cross_entropy, key
    if key == "dice":
        return soft_dice_loss, key
    fn = _ELEMENTWISE[key]

    def checked(out, y):
        y = align_target(out, y)
        _same_shape(key, out, y)
        return fn(out, y.to(out.dtype))

    return checked, key


def metric_stats(metric, out, y):
    """The float64 sums of ``metric`` for one batch, as one tensor on ``out``'s device."""
    if isinstance(metric, UserMetric):
        v = metric.fn(out, y)
        v = (
            v.detach().double()
            if isinstance(v, torch.Tensor)
            else torch.tensor(float(v), dtype=torch.float64)
        )
        n = torch.tensor(float(out.shape[0]), dtype=torch.float64, device=out.device)
        return torch.stack([v.to(out.device).reshape(()) * n, n])
    stats = metric.stats(OPS, out, align_target(out, y))
    if metric.host:  # numbers computed on the host
        return torch.tensor(stats, dtype=torch.float64, device=out.device)
    return torch.stack([s.reshape(()) for s in stats])
