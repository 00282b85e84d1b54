"""torch adapters: a loader's batches as a ``torch.utils.data.IterableDataset`` of tensors (zero-copy from
numpy), shared out over ``DataLoader`` workers, and a collate function for datasets of ANTs images.

Importing this module (``DatasetLoader.to_torch`` and ``nitrain.torch`` do) registers ANTs images in
torch's ``default_collate_fn_map``, so ``DataLoader(dataset, batch_size=4)`` stacks them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from nitrain._frameworks import require_torch
from nitrain._layout import check_channels, layout_of, move_channels

torch = require_torch("nitrain.loaders.torch")

from torch.utils.data import IterableDataset, get_worker_info  # noqa: E402
from torch.utils.data._utils import collate as _torch_collate  # noqa: E402

__all__ = ["TorchLoader", "collate"]


class _Batch(tuple):
    """One ``(x, y)`` batch served by a TorchLoader. Its own type, so that a DataLoader that batches
    again (``batch_size`` other than None) gets a clear error instead of an extra leading axis."""

    __slots__ = ()


def _refuse_rebatching(batch: Any, *, collate_fn_map: dict | None = None) -> Any:
    raise ValueError(
        "DataLoader(loader.to_torch()) needs batch_size=None: the DatasetLoader already serves whole "
        f"batches, and the DataLoader's batch_size would stack {len(batch)} of them along a new axis "
        "(set the batch size on the DatasetLoader)"
    )


class TorchLoader(IterableDataset):
    """``loader``'s batches as torch tensors, as an ``IterableDataset``. Made by
    ``DatasetLoader.to_torch``.

    ``channel`` is the layout served: ``channels`` ('first': ``(N, C, *spatial)``, the default of
    ``to_torch``; 'last': ``(N, *spatial, C)``) when given, else the loader's own (None: as served). A
    trainer reads it to know whether to move axes. ``len()`` is the loader's batches per epoch.

    Each ``iter()`` serves one loader epoch and moves ``epoch`` on by one (in the process that iterates).

    **DataLoader workers.** ``DataLoader(loader.to_torch(), batch_size=None, num_workers=k)``: worker w
    prepares image-batches w, w + k, w + 2k, ... of the epoch (the loader's ``batch_size`` records each,
    with a sampler all the sub-batches of those records), so the k workers together serve exactly the
    batches of that epoch without workers, each once, whatever k. Without a sampler the DataLoader's
    round-robin over the workers also keeps the order. The DataLoader's ``batch_size`` must be None: any
    other value is refused with a ValueError when the first batch is collated (the loader makes the
    batches). With ``rank`` / ``world_size`` the workers share out this rank's records.

    **Epochs with workers.** Each worker iterates its own copy of this object, made when the worker
    starts, and that copy's ``epoch`` moves on, not this one's. With ``persistent_workers=True`` the
    workers live across epochs and step their copies together, so successive DataLoader epochs are the
    loader's epochs ``epoch``, ``epoch + 1``, ... as when iterating the loader itself. Without it the
    workers are new each epoch and copy ``epoch`` as it is then: call ``set_epoch(e)`` before each epoch
    (as with torch's ``DistributedSampler``), else every epoch repeats the same batches. ``set_epoch``
    is also right with no workers and with persistent workers before their first epoch.

    Workers may fork (the Linux default) or spawn; everything the loader holds (dataset, transforms,
    sampler) must pickle for 'spawn'. Each worker runs its own kernel thread pool of the parent's size
    (``nitrain.set_num_threads``; a forked worker gets a fresh one, see ``nitrain._threads``).
    ``pin_memory`` pins batches in the main process only; a worker asked to pin raises (pass
    ``pin_memory=True`` to the DataLoader instead).
    """

    def __init__(self, loader: Any, pin_memory: bool = False, channels: str | None = "first") -> None:
        self.loader = loader
        self.pin_memory = bool(pin_memory)
        self.source = layout_of(loader)
        self.target = check_channels("DatasetLoader.to_torch", channels)
        self.channel = self.source if channels is None else channels

    def __len__(self) -> int:
        return len(self.loader)

    # -- the wrapped loader's epoch and seed (what trainers read and set) ------------------------------
    @property
    def epoch(self) -> int:
        """The loader epoch the next iteration serves."""
        return self.loader.epoch

    @epoch.setter
    def epoch(self, value: Any) -> None:
        self.set_epoch(value)

    def set_epoch(self, epoch: int) -> None:
        """Serve loader epoch ``epoch`` at the next iteration (and in DataLoader workers started after
        this call): its order and random transforms come from the loader's seed and ``epoch``."""
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
            raise ValueError(f"TorchLoader.set_epoch: epoch must be an integer >= 0, got {epoch!r}")
        self.loader.epoch = int(epoch)

    @property
    def seed(self) -> Any:
        return self.loader.seed

    @seed.setter
    def seed(self, value: Any) -> None:
        self.loader.seed = value

    @property
    def rank(self) -> int:
        return getattr(self.loader, "rank", 0)

    @property
    def world_size(self) -> int:
        return getattr(self.loader, "world_size", 1)

    # -- iteration -----------------------------------------------------------------------------------
    def _tensor(self, a: Any, pin: bool) -> Any:
        if isinstance(a, list | tuple):
            return [self._tensor(v, pin) for v in a]
        t = torch.from_numpy(a)
        return t.pin_memory() if pin else t

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """One loader epoch, claimed now (``epoch`` moves on at this call); in a DataLoader worker, this
        worker's share of it."""
        worker = get_worker_info()
        if worker is not None:
            if self.pin_memory:
                raise ValueError(
                    "to_torch(pin_memory=True) pins in the process that iterates; in DataLoader workers "
                    "pass pin_memory=True to the DataLoader instead"
                )
            if not hasattr(self.loader, "_next_plan"):
                raise TypeError(
                    f"TorchLoader: only a nitrain DatasetLoader can be shared out over DataLoader workers, "
                    f"got {type(self.loader).__name__}"
                )
            plan = self.loader._next_plan()[worker.id :: worker.num_workers]
            batches = self.loader._serve(plan)
        elif hasattr(self.loader, "_next_plan"):
            batches = self.loader._serve(self.loader._next_plan())
        else:
            batches = iter(self.loader)
        return self._tensors(batches, self.pin_memory and torch.cuda.is_available())

    def _tensors(self, batches: Iterable[tuple[Any, Any]], pin: bool) -> Iterator[tuple[Any, Any]]:
        for x, y in batches:
            x, y = move_channels(x, y, self.source, self.target)
            yield _Batch((self._tensor(x, pin), self._tensor(y, pin)))

    def __repr__(self) -> str:
        return f"TorchLoader({self.loader!r}, channel={self.channel!r})"


# -- collating datasets of ANTs images ---------------------------------------------------------------
def _image_type() -> type:
    import ants

    return ants.ANTsImage


def _collate_images(batch: Any, *, collate_fn_map: dict | None = None) -> Any:
    """ANTs images -> one float32 tensor ``(N, C, *spatial)``: C = 1, or the images' components."""
    views = [img.view() for img in batch]  # zero-copy; (C, *spatial) for multi-component images
    comps = [int(getattr(img, "components", 1)) for img in batch]
    shapes = {(c, *(v.shape if c == 1 else v.shape[1:])) for c, v in zip(comps, views, strict=True)}
    if len(shapes) > 1:
        raise ValueError(
            f"nitrain.torch.collate: images in one batch have different (channels, *shape) "
            f"{sorted(shapes)}; resize them with a fixed transform (e.g. tx.Resize), or use a DatasetLoader "
            "with a sampler"
        )
    shape = (len(batch), *shapes.pop())
    out = torch.empty(shape, dtype=torch.float32)
    if get_worker_info() is not None:
        out.share_memory_()  # filled in place: no copy when the batch goes back to the main process
    dest = out.numpy()
    for i, (c, v) in enumerate(zip(comps, views, strict=True)):
        dest[i] = v if c > 1 else v[None]  # numpy converts the dtype, reads any strides
    return out


def _collate_float32(batch: Any, *, collate_fn_map: dict | None = None) -> Any:
    return torch.tensor(np.asarray(batch, dtype=np.float32))


def _collate_map() -> dict:
    ours: dict[Any, Any] = {
        _image_type(): _collate_images,
        np.floating: _collate_float32,
        float: _collate_float32,
    }
    ours.update({k: v for k, v in _torch_collate.default_collate_fn_map.items() if k not in ours})
    return ours


def collate(batch: Any) -> Any:
    """Collate a list of dataset records (``dataset[i]``: ANTs images, lists of them for several inputs,
    numbers) into tensors, for ``DataLoader(dataset, batch_size=..., collate_fn=nitrain.torch.collate)``.

    Images (inputs and label maps alike) stack into one float32 tensor ``(N, C, *spatial)``,
    channels-first (C = 1, or the images' components); their shapes must agree (a ValueError names
    them). Floating-point numbers become a float32 vector (what nitrain's loaders and torch models use);
    everything else as ``torch.utils.data.default_collate`` does it (ints: int64). The plain
    ``default_collate`` also stacks ANTs images once nitrain's torch part is imported, but keeps torch's
    float64 for Python floats.
    """
    return _torch_collate.collate(batch, collate_fn_map=_COLLATE_MAP)


_torch_collate.default_collate_fn_map.setdefault(_image_type(), _collate_images)
_torch_collate.default_collate_fn_map.setdefault(_Batch, _refuse_rebatching)
_COLLATE_MAP = _collate_map()  # after the registrations: collate refuses re-batching too
