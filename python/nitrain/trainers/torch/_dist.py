"""torch.distributed state of one fit under torchrun: rank, world size, the process group nitrain owns."""

from __future__ import annotations

import os

import torch


class Dist:
    """Rank, world size, whether this fit started the process group; collectives that are no-ops alone."""

    def __init__(self):
        self.rank, self.world_size, self.owned, self.active = 0, 1, False, False
        self.device = torch.device("cpu")

    def setup(self, device_pref):
        """Join (or start) torchrun's process group; the device this rank trains on, or None alone."""
        import torch.distributed as dist

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1 or not dist.is_available():
            return None
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and device_pref in ("auto", "cuda")
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
            self.owned = True
        self.rank, self.world_size, self.active = dist.get_rank(), dist.get_world_size(), True
        if use_cuda:
            torch.cuda.set_device(local)
            return torch.device("cuda", local)
        return torch.device("cpu")

    def all_sum(self, t):
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def all_min(self, n: int) -> int:
        if not self.active:
            return n
        import torch.distributed as dist

        t = torch.tensor([n], dtype=torch.int64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def broadcast(self, values: list) -> list:
        if self.active:
            import torch.distributed as dist

            dist.broadcast_object_list(values, src=0)
        return values

    def teardown(self):
        if self.active and self.owned:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
        self.rank, self.world_size, self.owned, self.active = 0, 1, False, False
