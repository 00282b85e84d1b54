"""Trainers: fit, evaluate and predict models on nitrain loaders.

``ModelTrainer`` detects the framework from the model: torch ``nn.Module`` models and keras 3 models.
torch and keras are imported lazily (``import nitrain.trainers`` imports neither), and so are this
package's own modules: ``nitrain.trainers.ModelTrainer`` imports ``nitrain.trainers.trainer`` on first use,
and the trainer imports its backend (``nitrain.trainers.torch`` or ``nitrain.trainers.keras``) for the
first model of that framework. ``load_checkpoint`` / ``save_checkpoint`` here are torch's (``.pt``);
``nitrain.keras`` has keras'. ``Dice`` and ``HD95`` are the segmentation metrics ``metrics=['dice', 'hd95']``
names, as objects (``HD95(spacing=(1.0, 1.0, 1.2))`` measures in mm rather than voxels).

Importing this package arranges for nitrain's keras losses and metrics to be registered with keras as
soon as keras is imported (``_keras_saving.watch_keras``), so ``keras.models.load_model`` reloads models
``ModelTrainer`` trained.
"""

from __future__ import annotations

import importlib
from typing import Any

from nitrain.trainers._keras_saving import watch_keras as _watch_keras

_watch_keras()

_WHERE = {
    "Dice": "nitrain.trainers._objectives",
    "HD95": "nitrain.trainers._objectives",
    "LOSSES": "nitrain.trainers._objectives",
    "METRICS": "nitrain.trainers._objectives",
    "ModelTrainer": "nitrain.trainers.trainer",
    "load_checkpoint": "nitrain.trainers._checkpoint",
    "save_checkpoint": "nitrain.trainers._checkpoint",
}

__all__ = ["HD95", "LOSSES", "METRICS", "Dice", "ModelTrainer", "load_checkpoint", "save_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nitrain.trainers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
