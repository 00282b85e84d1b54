"""Training callbacks: hooks a trainer calls at the start and end of training and of every epoch.

``epoch`` is 0-based in the hooks (the first epoch is 0); ``logs`` is the epoch's dict of values
('loss', metrics, 'val_*', 'lr'). A callback may set ``self.trainer.stop_training = True`` to stop after
the current epoch. The same callbacks drive torch and keras training: they reach the model through the
trainer (``snapshot_weights`` / ``restore_weights``, ``set_lr``, ``save_checkpoint``). No torch or keras at
import time.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable
from typing import Any

_MAX_WORDS = ("acc", "accuracy", "r2", "dice", "auc")


class Callback:
    """Base class: override any of the hooks. ``self.trainer`` is set by the trainer before training."""

    trainer: Any = None  # a ModelTrainer (or a framework trainer); Any: no import cycle

    def set_trainer(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    @property
    def _is_main(self) -> bool:
        return getattr(self.trainer, "is_main", True)


def _mode_for(monitor: str, mode: str) -> str:
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    name = monitor[4:] if monitor.startswith("val_") else monitor
    name = re.sub(r"_\d+$", "", name)  # a class's value of a per-class metric: dice_2 is a dice
    return "max" if name in _MAX_WORDS else "min"


class _Monitor:
    """Which logged value to watch: ``monitor``, falling back to ``'loss'`` when a 'val_' key is absent
    (training without validation)."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        self.owner, self.monitor, self.min_delta = owner, monitor, abs(float(min_delta))
        self.mode = _mode_for(monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs: dict[str, Any] | None) -> float:
        logs = logs or {}
        if self.monitor in logs:
            return float(logs[self.monitor])
        if self.monitor.startswith("val_") and self.monitor[4:] in logs:
            return float(logs[self.monitor[4:]])
        raise KeyError(f"{self.owner}: monitor {self.monitor!r} is not in the logs {sorted(logs)}")

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


def _snapshot(trainer: Any) -> Any:
    if hasattr(trainer, "snapshot_weights"):
        return trainer.snapshot_weights()
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}  # a torch-like trainer


def _restore(trainer: Any, weights: Any) -> None:
    if hasattr(trainer, "restore_weights"):
        trainer.restore_weights(weights)
    else:
        trainer.model.load_state_dict(weights)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``monitor='val_loss'`` falls back to 'loss' when training without validation. ``mode='auto'`` means
    'max' for accuracy / r2 / dice (a class's ``dice_k`` too), else 'min' (hd95 ...). With ``restore_best``
    the model gets the weights of the best epoch back when training stops early. After training: ``best``,
    ``best_epoch`` and ``stopped_epoch`` (0-based; None when it did not stop).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 10,
        min_delta: float = 0.0,
        restore_best: bool = True,
        mode: str = "auto",
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 0, got {patience!r}")
        self._m = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.monitor, self.patience, self.min_delta = monitor, patience, self._m.min_delta
        self.restore_best = bool(restore_best)
        self.on_train_begin()

    @property
    def best(self) -> float:
        return self._m.best

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._m.reset()
        self.wait = 0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_state: Any = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = self._m.value(logs)
        if self._m.improved(value):
            self._m.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best and self.trainer is not None:
                self.best_state = _snapshot(self.trainer)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            if self.trainer is not None:
                self.trainer.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch is not None and self.restore_best and self.best_state is not None:
            _restore(self.trainer, self.best_state)


class ModelCheckpoints(Callback):
    """Save a checkpoint (model + optimizer state + epoch, via ``trainer.save_checkpoint``) every ``freq``
    epochs as ``directory/epoch_XXX.pt`` (XXX = epochs completed, 1-based), and with ``save_best`` also
    ``directory/best.pt`` whenever ``monitor`` improves. The ending is the trainer's
    ``checkpoint_suffix``: ``.pt`` for torch, ``.weights.h5`` for keras (``filename`` without an ending
    gets it). Only rank 0 writes. ``saved`` lists the files."""

    def __init__(
        self,
        freq: int | None = 25,
        directory: str | os.PathLike[str] = "checkpoints",
        save_best: bool = False,
        monitor: str = "val_loss",
        mode: str = "auto",
        filename: str = "epoch_{epoch:03d}",
    ) -> None:
        if freq is not None and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 1):
            raise ValueError(f"ModelCheckpoints: freq must be a positive integer or None, got {freq!r}")
        self.freq, self.directory, self.save_best = freq, os.fspath(directory), bool(save_best)
        self.monitor, self.filename = monitor, filename
        self._m = _Monitor("ModelCheckpoints", monitor, mode)
        self.saved: list[str] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._m.reset()

    @property
    def _suffix(self) -> str:
        return getattr(self.trainer, "checkpoint_suffix", ".pt")

    def _name(self, stem: str) -> str:
        suffix = self._suffix
        name = stem if stem.endswith(suffix) else stem.removesuffix(".pt") + suffix
        return os.path.join(self.directory, name)

    def _save(self, path: str) -> None:
        out = self.trainer.save_checkpoint(path)
        if out is not None and out not in self.saved:
            self.saved.append(out)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        done = epoch + 1
        if self.freq is not None and done % self.freq == 0 and self._is_main:
            self._save(self._name(self.filename.format(epoch=done)))
        if self.save_best:
            value = self._m.value(logs)
            if self._m.improved(value):
                self._m.best = value
                if self._is_main:
                    self._save(self._name("best"))


class LRScheduler(Callback):
    """Set the learning rate each epoch.

    ``schedule`` is either a function ``epoch -> lr`` (0-based epoch; set at the start of each epoch), or a
    torch scheduler factory ``optimizer -> scheduler`` such as a ``torch.optim.lr_scheduler`` class or a
    ``functools.partial`` of one (built at the start of training, stepped at the end of each epoch; when
    resuming it is first stepped once per epoch already done). ``kind`` ('auto', 'function', 'factory')
    says which, when 'auto' cannot tell: auto treats classes and partials of classes as factories and
    other callables as epoch functions. Factories build torch schedulers, so they need a torch trainer; with
    keras give a function."""

    def __init__(self, schedule: Callable[..., Any], kind: str = "auto") -> None:
        if not callable(schedule):
            raise TypeError(f"LRScheduler: schedule must be callable, got {schedule!r}")
        if kind not in ("auto", "function", "factory"):
            raise ValueError(f"LRScheduler: kind must be 'auto', 'function' or 'factory', got {kind!r}")
        if kind == "auto":
            target = getattr(schedule, "func", schedule)
            kind = "factory" if isinstance(target, type) else "function"
        self.schedule, self.kind = schedule, kind
        self.scheduler: Any = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.kind == "factory":
            import warnings

            if getattr(self.trainer, "framework", "torch") != "torch":
                raise TypeError(
                    "LRScheduler: a scheduler factory builds a torch scheduler, but this trainer trains a "
                    f"{self.trainer.framework} model; give schedule as a function epoch -> lr"
                )

            self.scheduler = self.schedule(self.trainer.optimizer)
            if not hasattr(self.scheduler, "step"):
                raise TypeError("LRScheduler: the factory must return a torch scheduler (with .step())")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # stepping before optimizer.step() when catching up
                for _ in range(getattr(self.trainer, "initial_epoch", 0)):
                    self.scheduler.step()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.kind == "function":
            lr = float(self.schedule(epoch))
            if not lr > 0:
                raise ValueError(f"LRScheduler: schedule({epoch}) gave lr={lr}; it must be positive")
            if hasattr(self.trainer, "set_lr"):
                self.trainer.set_lr(lr)
            else:
                for group in self.trainer.optimizer.param_groups:
                    group["lr"] = lr

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.kind == "factory" and self.scheduler is not None:
            self.scheduler.step()


class CSVLogger(Callback):
    """Append one row per epoch to ``path``: 'epoch' (1-based) and the logged values, a header first.
    ``append=True`` keeps an existing file (for resumed runs). Only rank 0 writes."""

    def __init__(self, path: str | os.PathLike[str], append: bool = False, separator: str = ",") -> None:
        self.path, self.append, self.separator = os.fspath(path), bool(append), separator
        self._keys: list[str] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._keys = None
        if not self._is_main:
            return
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self._keys = header[1:] if header else None
        else:
            open(self.path, "w").close()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._is_main:
            return
        logs = dict(logs or {})
        write_header = self._keys is None
        keys = self._keys = list(logs) if self._keys is None else self._keys
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f, delimiter=self.separator)
            if write_header:
                w.writerow(["epoch", *keys])
            w.writerow([epoch + 1, *(logs.get(k, "") for k in keys)])
