"""Trainers: fit, evaluate and predict models on nitrain loaders.

``ModelTrainer`` detects the framework from the model: torch ``nn.Module`` models and keras 3 models.
torch and keras are imported lazily (``import nitrain.trainers`` imports neither).
"""

from nitrain.trainers._checkpoint import load_checkpoint, save_checkpoint
from nitrain.trainers._objectives import LOSSES, METRICS
from nitrain.trainers.trainer import OPTIMIZERS, ModelTrainer

__all__ = ["LOSSES", "METRICS", "OPTIMIZERS", "ModelTrainer", "load_checkpoint", "save_checkpoint"]
