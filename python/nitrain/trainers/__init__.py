"""Trainers: fit, evaluate and predict models on nitrain loaders (torch in this build).

``ModelTrainer`` detects the framework from the model; only torch ``nn.Module`` models are supported.
torch is imported lazily (``import nitrain.trainers`` does not import it).
"""

from nitrain.trainers._checkpoint import load_checkpoint, save_checkpoint
from nitrain.trainers._objectives import LOSSES, METRICS
from nitrain.trainers.trainer import OPTIMIZERS, ModelTrainer

__all__ = ["LOSSES", "METRICS", "OPTIMIZERS", "ModelTrainer", "load_checkpoint", "save_checkpoint"]
