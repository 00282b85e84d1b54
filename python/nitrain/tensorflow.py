"""The tensorflow pieces of nitrain: ``tf.data`` and keras loader adapters, the keras trainer, checkpoints
and predictions as images (everything in ``nitrain.keras``, plus ``to_tf_dataset``).

Importing this module needs tensorflow (``pip install 'nitrain[tensorflow]'``); ``import nitrain`` does not.
"""

from __future__ import annotations

from nitrain._frameworks import require_tensorflow

require_tensorflow("nitrain.tensorflow")

from nitrain.keras import (  # noqa: E402
    KerasTrainer,
    load_checkpoint,
    prediction_to_image,
    save_checkpoint,
    to_keras_loader,
)
from nitrain.loaders.tensorflow import to_tf_dataset  # noqa: E402

__all__ = [
    "KerasTrainer",
    "load_checkpoint",
    "prediction_to_image",
    "save_checkpoint",
    "to_keras_loader",
    "to_tf_dataset",
]
