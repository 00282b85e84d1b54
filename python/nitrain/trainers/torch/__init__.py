"""The torch backend of ``ModelTrainer``: one process or torchrun (DistributedDataParallel), AMP,
gradient clipping, ``.pt`` checkpoints. Imports torch; ``nitrain.trainers.trainer`` imports this package
only for a torch model."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from nitrain._frameworks import declared_channels, is_keras_model, is_torch_module
from nitrain._layout import layout_of
from nitrain.trainers._checkpoint import load_checkpoint, save_checkpoint
from nitrain.trainers._common import describe, no_batches
from nitrain.trainers._objectives import make_metrics
from nitrain.trainers.torch._dist import Dist
from nitrain.trainers.torch._losses import align_target, make_loss, metric_stats

#: ``optimizer`` names and the torch optimizer each builds (with ``lr``)
OPTIMIZERS = {
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr),
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr),
}


def check_torch_model(model, owner="ModelTrainer"):
    """``owner`` trains torch models only: anything else is refused, naming what it is."""
    if is_torch_module(model):
        return
    if is_keras_model(model):
        raise TypeError(
            f"{owner}: only torch models (torch.nn.Module) are accepted; got a keras model "
            f"({describe(model)}): use nitrain.trainers.ModelTrainer or nitrain.keras.KerasTrainer"
        )
    raise TypeError(f"{owner}: only torch models (torch.nn.Module) are accepted; got {describe(model)}")


def make_optimizer(optimizer, params, lr):
    if isinstance(optimizer, str):
        build = OPTIMIZERS.get(optimizer.lower())
        if build is None:
            raise ValueError(
                f"ModelTrainer: unknown optimizer {optimizer!r}; valid names: {list(OPTIMIZERS)}, "
                "or a torch.optim.Optimizer class or instance"
            )
        return build(params, lr)
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        # every torch optimizer takes lr; the base class's __init__ (what the stub knows) takes defaults
        return optimizer(params, lr=lr)  # type: ignore[call-arg]
    if callable(optimizer):  # a factory such as functools.partial(torch.optim.SGD, momentum=0.5)
        opt = optimizer(params, lr=lr)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"ModelTrainer: the optimizer factory returned {type(opt).__name__}")
        return opt
    raise TypeError(
        f"ModelTrainer: optimizer must be one of {list(OPTIMIZERS)} or a torch optimizer class/instance, "
        f"got {optimizer!r}"
    )


def model_channels(model, channels: str):
    """'first', 'last' or None (pass batches as served)."""
    declared = declared_channels(model, channels, "ModelTrainer")
    if declared is not None:
        return declared
    if any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules()):
        return "first"  # torch convolutions take (N, C, *spatial)
    return None


def _arrange(t, move):
    if move is None:
        return t
    src, dst = move
    if src is None:
        return t.unsqueeze(1 if dst == "first" else -1)
    return t.movedim(-1, 1) if dst == "first" else t.movedim(1, -1)


class TorchBackend:
    framework = "torch"
    checkpoint_suffix = ".pt"

    def __init__(
        self,
        model,
        *,
        loss,
        optimizer,
        lr,
        metrics,
        callbacks,
        device,
        amp,
        grad_clip,
        channels,
        verbose,
        owner,
    ):
        check_torch_model(model, owner)
        self.model = model
        self.loss_fn, self.loss_name = make_loss(loss)
        self.metrics = make_metrics(metrics)
        self.metric_names = [m.name for m in self.metrics]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device_pref = "auto" if device == "auto" else str(device)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.optimizer = make_optimizer(optimizer, self.model.parameters(), lr)
        self.amp = bool(amp)
        self.grad_clip = grad_clip
        self.channels = model_channels(model, channels)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.device.type == "cuda")
        self.stop_requested = False
        self._dist = Dist()
        self._net = self.model

    # -- what the trainer reads ----------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self._dist.rank

    @property
    def world_size(self) -> int:
        return self._dist.world_size

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @learning_rate.setter
    def learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = float(lr)

    def get_weights(self):
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def set_weights(self, weights) -> None:
        self.model.load_state_dict(weights)

    # -- around the epochs ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, loader, validation, epochs: int, seed):
        """Deterministic algorithms with a seed, and torchrun's process group (DDP) around the epochs."""
        det_before = torch.are_deterministic_algorithms_enabled()
        if seed is not None:
            torch.use_deterministic_algorithms(True, warn_only=True)
        device = self._dist.setup(self._device_pref)
        self._dist.device = self.device
        try:
            if device is not None:
                self.device = self._dist.device = device
                self.model.to(device)
                for ldr in (loader, validation):  # every rank draws rank 0's batch order
                    if ldr is not None and hasattr(ldr, "seed") and hasattr(ldr, "epoch"):
                        ldr.seed, ldr.epoch = self._dist.broadcast([ldr.seed, ldr.epoch])
                from torch.nn.parallel import DistributedDataParallel

                ids = [device.index] if device.type == "cuda" else None
                self._net = DistributedDataParallel(self.model, device_ids=ids)
            yield
        finally:
            self._net = self.model
            self._dist.teardown()
            if seed is not None:
                torch.use_deterministic_algorithms(det_before)

    def seed_epoch(self, seed: int) -> None:
        torch.manual_seed(seed)

    # -- batches -------------------------------------------------------------------------------------
    def _layout(self, loader):
        src, dst = layout_of(loader), self.channels
        return None if dst is None or src == dst else (src, dst)

    def _tensors(self, x, y, move):
        def tensor(a):
            t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
            return t.to(self.device, non_blocking=True)

        xs = [tensor(v) for v in x] if isinstance(x, list | tuple) else [tensor(x)]
        ref_ndim = xs[0].ndim
        xs = [_arrange(v, move).contiguous() for v in xs]
        yt = None
        if y is not None:
            yt = tensor(y)
            if yt.ndim == ref_ndim and yt.ndim >= 3:
                yt = _arrange(yt, move).contiguous()
        return xs, yt

    def _forward(self, net, xs):
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        with torch.autocast(device_type=self.device.type, dtype=dtype, enabled=self.amp):
            out = net(*xs)
        if isinstance(out, tuple | list):
            out = out[0]
        return out.float()

    def _shard(self, loader, train: bool) -> tuple[bool, int | None]:
        """(skip batches by rank?, steps per rank or None)."""
        if not self._dist.active:
            return False, None
        sharded = getattr(loader, "world_size", 1) > 1  # the loader already shards records by rank
        if not train:
            return not sharded, None
        if sharded:
            try:
                return False, self._dist.all_min(len(loader))
            except TypeError:
                return False, None
        n, w = len(loader), self._dist.world_size
        if n < w:
            raise ValueError(
                f"ModelTrainer: the loader has {n} batches per epoch, fewer than the {w} ranks; use a "
                "smaller batch size"
            )
        return True, n // w

    def _step(self, loss):
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def run_epoch(self, loader, train: bool, desc: str, progress) -> dict:
        """One pass over ``loader``; {'loss': ..., metric: ...} over every batch (summed over ranks)."""
        net = self._net if train else self.model
        net.train(train)
        move = self._layout(loader)
        skip, steps = self._shard(loader, train)
        w, r = self._dist.world_size, self._dist.rank
        total = steps
        if total is None:
            try:
                total = math.ceil(len(loader) / w) if skip else len(loader)
            except TypeError:
                total = None
        bar = progress(total, desc)
        totals = None
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        count = torch.zeros((), dtype=torch.float64, device=self.device)
        done = 0
        try:
            for i, (x, y) in enumerate(loader):
                if skip and i % w != r:
                    continue
                if steps is not None and done >= steps:
                    break
                xs, yt = self._tensors(x, y, move)
                with torch.set_grad_enabled(train):
                    out = self._forward(net, xs)
                    yt = align_target(out, yt)
                    loss = self.loss_fn(out, yt)
                if train:
                    self._step(loss)
                n = out.shape[0]
                loss_sum += loss.detach().double() * n
                count += n
                if self.metrics:
                    with torch.no_grad():
                        stats = [metric_stats(m, out.detach(), yt) for m in self.metrics]
                    totals = stats if totals is None else [a + b for a, b in zip(totals, stats, strict=True)]
                done += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss_sum / count):.4g}")
        finally:
            if bar is not None:
                bar.close()
        flat = torch.cat([loss_sum.reshape(1), count.reshape(1), *(t.reshape(-1) for t in totals or [])])
        if self._dist.active:
            sizes = self._dist.broadcast([[len(t) for t in totals] if totals is not None else None])[0]
            if totals is None and sizes is not None:  # this rank saw no batch
                flat = torch.zeros(2 + sum(sizes), dtype=torch.float64, device=self.device)
            self._dist.all_sum(flat)
            totals = None if sizes is None else list(torch.split(flat[2:], sizes))
        if float(flat[1]) == 0:
            raise no_batches(desc)
        logs = {"loss": float(flat[0] / flat[1])}
        for m, t in zip(self.metrics, totals or [], strict=False):
            logs.update(m.values(t.cpu().numpy()))  # the segmentation metrics add one value per class
        return logs

    def predict_batches(self, loader):
        """The model's outputs for each batch of ``loader``, as numpy arrays."""
        move = self._layout(loader)
        self.model.eval()
        with torch.no_grad():
            for batch in loader:
                x = batch[0] if isinstance(batch, tuple) else batch
                xs, _ = self._tensors(x, None, move)
                yield self._forward(self.model, xs).cpu().numpy()

    # -- checkpoints ---------------------------------------------------------------------------------
    def save(self, path, **extra) -> str:
        scaler = self.scaler.state_dict() if self.scaler.is_enabled() else None
        return save_checkpoint(path, self.model, self.optimizer, scaler=scaler, **extra)

    def load(self, path) -> dict:
        state = load_checkpoint(path, self.model, self.optimizer, map_location=self.device)
        if state.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        return state
