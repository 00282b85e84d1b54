"""torch adapter: the loader's batches as tensors, zero-copy from numpy."""

from __future__ import annotations


class TorchLoader:
    def __init__(self, loader, pin_memory: bool = False):
        try:
            import torch  # noqa: F401
        except ImportError as e:
            raise ImportError("nitrain: torch is not installed; pip install 'nitrain[torch]'") from e
        self.loader = loader
        self.pin_memory = pin_memory

    def __len__(self) -> int:
        return len(self.loader)

    def _tensor(self, a):
        import torch

        if isinstance(a, list):
            return [self._tensor(v) for v in a]
        t = torch.from_numpy(a)
        return t.pin_memory() if self.pin_memory and torch.cuda.is_available() else t

    def __iter__(self):
        for x, y in self.loader:
            yield self._tensor(x), self._tensor(y)
