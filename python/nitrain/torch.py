"""The torch pieces of nitrain in one place: trainer, checkpoints, tensor loaders, a collate function for
datasets of ANTs images, predictions as images (``nitrain.keras`` and ``nitrain.tensorflow`` are the same
for keras).

Importing this module needs torch (``pip install 'nitrain[torch]'``); ``import nitrain`` does not. It
registers ANTs images in torch's ``default_collate_fn_map``: ``DataLoader(dataset, batch_size=4)`` over a
nitrain dataset then stacks its images into ``(N, 1, *spatial)`` float32 tensors (see ``collate``).
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised in a subprocess without torch
    raise ImportError(
        "nitrain.torch needs torch, which is not installed: pip install 'nitrain[torch]'"
    ) from e

import numpy as np

from nitrain._images import prediction_to_image
from nitrain.loaders.torch import TorchLoader, collate
from nitrain.trainers._checkpoint import load_checkpoint, save_checkpoint
from nitrain.trainers.trainer import ModelTrainer

__all__ = [
    "TorchLoader",
    "TorchTrainer",
    "collate",
    "load_checkpoint",
    "prediction_to_image",
    "save_checkpoint",
    "to_tensor_loader",
]


class TorchTrainer(ModelTrainer):
    """``ModelTrainer`` for torch models (same arguments); refuses anything that is not an ``nn.Module``."""

    framework_required = "torch"


class _TensorLoader:
    """Any iterable of numpy ``(x, y)`` batches, as torch tensors (zero-copy)."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self):
        return len(self.loader)

    @staticmethod
    def _tensor(a):
        if isinstance(a, list | tuple):
            return [_TensorLoader._tensor(v) for v in a]
        return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))

    def __iter__(self):
        for x, y in self.loader:
            yield self._tensor(x), self._tensor(y)


def to_tensor_loader(loader, pin_memory: bool = False):
    """The loader's batches as torch tensors: ``loader.to_torch()`` when it has one (a DatasetLoader:
    channels-first), else a wrapper converting each numpy ``(x, y)`` batch as it is."""
    if hasattr(loader, "to_torch"):
        return loader.to_torch(pin_memory=pin_memory)
    return _TensorLoader(loader)
