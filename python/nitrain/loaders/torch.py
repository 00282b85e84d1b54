"""torch adapter: the loader's batches as tensors, zero-copy from numpy."""

from __future__ import annotations

from nitrain._frameworks import require_torch
from nitrain.loaders.loader import check_channels, move_channels


class TorchLoader:
    """``loader``'s batches as torch tensors. ``channel`` is the layout served: ``channels`` when given,
    else the loader's own (a trainer reads it to know whether to move axes)."""

    def __init__(self, loader, pin_memory: bool = False, channels: str | None = None):
        require_torch("DatasetLoader.to_torch")
        self.loader = loader
        self.pin_memory = pin_memory
        self.source = getattr(loader, "channel", "last")
        self.target = check_channels("DatasetLoader.to_torch", channels)
        self.channel = self.source if channels is None else channels

    def __len__(self) -> int:
        return len(self.loader)

    def _tensor(self, a):
        import torch

        if isinstance(a, list | tuple):
            return [self._tensor(v) for v in a]
        t = torch.from_numpy(a)
        return t.pin_memory() if self.pin_memory and torch.cuda.is_available() else t

    def __iter__(self):
        for x, y in self.loader:
            x, y = move_channels(x, y, self.source, self.target)
            yield self._tensor(x), self._tensor(y)
