"""What the trainer loop and both backends share: argument checks, callback checks, progress lines, the
backend protocol. Imports neither torch nor keras, nor the trainer or a backend."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from nitrain._typing import PathLike

#: one line per epoch goes here when no progress bar can be shown (see ``ModelTrainer``'s ``verbose``)
logger = logging.getLogger("nitrain.trainers")

#: ``progress(total_batches_or_None, desc)``: a tqdm-like bar (``update``, ``set_postfix``, ``close``) or None
Progress = Callable[[Any, str], Any]


class Backend(Protocol):
    """One framework's part of training; ``Trainer`` runs the epochs, history, callbacks, resuming,
    per-record predictions, logging and progress over it."""

    framework: str  # 'torch' or 'keras'
    checkpoint_suffix: str  # '.pt' or '.weights.h5'
    model: Any
    optimizer: Any
    loss_name: str
    metric_names: list[str]
    device: Any
    channels: str | None  # the model's layout: 'first', 'last' or None (batches as served)
    rank: int
    world_size: int
    learning_rate: float  # get and set (LRScheduler, the 'lr' history)
    stop_requested: bool  # get and set: a framework-side request to stop (keras' model.stop_training)

    def session(
        self, loader: Any, validation: Any, epochs: int, seed: int | None
    ) -> AbstractContextManager[None]: ...
    def seed_epoch(self, seed: int) -> None: ...
    def run_epoch(self, loader: Any, train: bool, desc: str, progress: Progress) -> dict[str, float]: ...
    def predict_batches(self, loader: Any) -> Iterator[np.ndarray]: ...
    def get_weights(self) -> Any: ...
    def set_weights(self, weights: Any) -> None: ...
    def save(self, path: PathLike, **extra: Any) -> str: ...
    def load(self, path: PathLike) -> dict: ...


def describe(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__name__}"


def positive(name: str, value: object, none_ok: bool = False, owner: str = "ModelTrainer") -> float | None:
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        extra = " or None" if none_ok else ""
        raise ValueError(f"{owner}: {name} must be a positive number{extra}, got {value!r}")
    return float(value)


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**63 - 1)


def no_batches(desc: str) -> ValueError:
    return ValueError(f"ModelTrainer: the loader served no batches{' for ' + desc if desc else ''}")


def is_keras_callback(cb: object) -> bool:
    """A ``keras.callbacks.Callback`` (keras 3, tf.keras or tf_keras), judged by its class hierarchy."""
    roots = ("keras", "tf_keras", "tensorflow")
    return any(c.__name__ == "Callback" and c.__module__.split(".")[0] in roots for c in type(cb).__mro__)


def check_callbacks(callbacks: Iterable[Any] | None, owner: str, keras_ok: bool) -> list[Any]:
    """The callbacks as a list; refuses anything without ``on_epoch_end``, keras callbacks unless the
    model is a keras model, and keras' ``BackupAndRestore``."""
    callbacks = list(callbacks or [])
    for i, cb in enumerate(callbacks):
        if not hasattr(cb, "on_epoch_end"):
            raise TypeError(
                f"{owner}: callbacks[{i}] = {cb!r} is not a callback (see nitrain.utils.Callback)"
            )
        if not is_keras_callback(cb):
            continue
        if not keras_ok:
            raise TypeError(
                f"{owner}: callbacks[{i}] is a keras callback ({describe(cb)}), "
                "which needs a keras model; this is a torch model: use nitrain.utils callbacks "
                "(EarlyStopping, ModelCheckpoints, LRScheduler, CSVLogger) or subclass nitrain.utils.Callback"
            )
        if type(cb).__name__ == "BackupAndRestore":
            raise TypeError(
                f"{owner}: callbacks[{i}] is keras.callbacks.BackupAndRestore, which ModelTrainer cannot "
                "honour (it resumes keras' own fit loop); use nitrain.utils.ModelCheckpoints and "
                "fit(..., resume_from=checkpoint)"
            )
    return callbacks


def epoch_line(epoch: int, epochs: int, logs: dict) -> str:
    """``'epoch 3/10: loss=0.123, val_loss=0.2, lr=0.001'`` (``epoch`` 0-based)."""
    return f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k}={v:.4g}" for k, v in logs.items())


def log_progress(line: str) -> None:
    """``line`` at INFO through the ``nitrain.trainers`` logger. When logging is not configured at all (no
    handler on the way to the root logger), it goes to stderr as ``logging.lastResort`` would, but at INFO,
    unless the ``nitrain`` / ``nitrain.trainers`` logger has been given a level above INFO."""
    if logger.hasHandlers():
        logger.info(line)
        return
    if logger.disabled:
        return
    level = logger.level or logging.getLogger("nitrain").level
    if level > logging.INFO:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, (), None))
