"""An epoch's plan, made from the seed before any record is read: the record order, the groups records are
served in, and the random generator of every record and every group.

Record ``i``'s transforms in epoch ``e`` draw from a generator keyed by ``(seed, e, i)``, and a group's
sampler (its item table and shuffle) from one keyed by ``(seed, e, group)``. So what a record becomes does
not depend on which worker lane prepares it, on how many lanes there are, or on how far ahead they work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_ORDER, _RECORD, _GROUP = 0, 1, 2


@dataclass(frozen=True)
class Group:
    """Records served together: one batch without a sampler; with one, a pool whose items are mixed."""

    index: int
    indices: np.ndarray  # dataset records, in epoch order
    entropy: Any
    epoch_key: tuple[int, ...]

    def record_rng(self, i: int) -> np.random.Generator:
        """The generator record ``i``'s transforms draw from (fresh at each call: the same draws)."""
        return np.random.default_rng(
            np.random.SeedSequence(self.entropy, spawn_key=(*self.epoch_key, _RECORD, int(i)))
        )

    def rng(self) -> np.random.Generator:
        """The generator of the group's sampler (fresh at each call)."""
        return np.random.default_rng(
            np.random.SeedSequence(self.entropy, spawn_key=(*self.epoch_key, _GROUP, self.index))
        )

    def jobs(self) -> list[tuple[int, np.random.Generator]]:
        return [(int(i), self.record_rng(int(i))) for i in self.indices]


def root_seed(seed: Any, epoch: int) -> np.random.SeedSequence:
    if isinstance(seed, int | np.integer):
        return np.random.SeedSequence([int(seed) % 2**63, epoch])
    return np.random.SeedSequence([seed, epoch])


def plan_epoch(
    seed: Any, epoch: int, n: int, shuffle: bool, rank: int, world_size: int, sizes: Sequence[int]
) -> list[Group]:
    """The groups of ``epoch``: the records (all ``n``, shuffled when ``shuffle``), this rank's share
    (every ``world_size``-th from ``rank``), cut into groups of ``sizes``."""
    root = root_seed(seed, epoch)
    order = np.arange(n)
    if shuffle:
        order = np.random.default_rng(
            np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, _ORDER))
        ).permutation(n)
    order = order[rank::world_size]
    bounds = np.cumsum([0, *sizes])
    return [
        Group(g, order[a:b], root.entropy, tuple(root.spawn_key))
        for g, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]
