"""The keras pieces of nitrain in one place: trainer, checkpoints, loader adapter, predictions as images.

Importing this module needs keras 3 (``pip install 'nitrain[tensorflow]'``); ``import nitrain`` does not.
``nitrain.tensorflow`` adds the ``tf.data`` adapter; ``nitrain.torch`` is the same for torch.
"""

from __future__ import annotations

from nitrain._frameworks import require_keras

require_keras("nitrain.keras")

from nitrain._images import prediction_to_image  # noqa: E402
from nitrain.trainers.keras.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from nitrain.trainers.trainer import ModelTrainer  # noqa: E402

__all__ = ["KerasTrainer", "load_checkpoint", "prediction_to_image", "save_checkpoint", "to_keras_loader"]


class KerasTrainer(ModelTrainer):
    """``ModelTrainer`` for keras models (same arguments); refuses anything that is not a keras 3 model."""

    framework_required = "keras"


def to_keras_loader(loader, channels: str | None = None):
    """The loader as a ``keras.utils.PyDataset``: ``loader.to_keras()`` when it has one (a DatasetLoader),
    else the same adapter over any re-iterable of numpy ``(x, y)`` batches with a length."""
    if hasattr(loader, "to_keras"):
        return loader.to_keras(channels=channels)
    from nitrain.loaders.keras import KerasLoader

    return KerasLoader(loader, channels=channels)
