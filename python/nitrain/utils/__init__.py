"""Utilities: training callbacks (EarlyStopping, ModelCheckpoints, LRScheduler, CSVLogger)."""

from nitrain.utils.callbacks import Callback, CSVLogger, EarlyStopping, LRScheduler, ModelCheckpoints

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "LRScheduler", "ModelCheckpoints"]
