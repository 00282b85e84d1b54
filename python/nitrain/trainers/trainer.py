"""ModelTrainer: fit, evaluate and predict a torch model (single process or torchrun) or a keras 3 model
on nitrain loaders. The epoch loop (history, callbacks, resuming, per-record predictions) is shared; the
keras specifics live in ``nitrain.trainers.keras``.

torch and keras are imported inside the methods only, so ``import nitrain.trainers`` stays light.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys

import numpy as np

from nitrain._frameworks import TORCH_EXTRA, declared_channels, framework_of, is_keras_model, is_torch_module
from nitrain._progress import interactive
from nitrain.trainers._checkpoint import load_checkpoint, save_checkpoint
from nitrain.trainers._objectives import align_target, make_loss, make_metrics

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")

#: one line per epoch goes here when no progress bar can be shown (see ``ModelTrainer``'s ``verbose``)
logger = logging.getLogger("nitrain.trainers")


def _describe(model) -> str:
    return f"{type(model).__module__}.{type(model).__name__}"


def _check_torch_model(model, owner="ModelTrainer"):
    """``owner`` trains torch models only (TorchTrainer): anything else is refused, naming what it is."""
    if is_torch_module(model):
        return
    if is_keras_model(model):
        raise TypeError(
            f"{owner}: only torch models (torch.nn.Module) are accepted; got a keras model "
            f"({_describe(model)}): use nitrain.trainers.ModelTrainer or nitrain.keras.KerasTrainer"
        )
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{owner}: training needs torch; {TORCH_EXTRA}") from e
    raise TypeError(f"{owner}: only torch models (torch.nn.Module) are accepted; got {_describe(model)}")


def _check_model(model, owner="ModelTrainer"):
    """A model ModelTrainer can train: a torch ``nn.Module`` or a keras 3 model."""
    if framework_of(model) is not None:
        return
    if sys.modules.get("torch") is None and sys.modules.get("keras") is None:
        try:
            import torch  # noqa: F401
        except ImportError as e:
            raise ImportError(f"{owner}: training needs torch or keras; {TORCH_EXTRA}") from e
    raise TypeError(
        f"{owner}: the model must be a torch.nn.Module or a keras 3 model (keras.Model / keras.layers.Layer);"
        f" got {_describe(model)}, which is neither"
    )


def is_keras_callback(cb) -> bool:
    """A ``keras.callbacks.Callback`` (keras 3, tf.keras or tf_keras), judged by its class hierarchy."""
    roots = ("keras", "tf_keras", "tensorflow")
    return any(c.__name__ == "Callback" and c.__module__.split(".")[0] in roots for c in type(cb).__mro__)


def check_callbacks(callbacks, owner: str, keras_ok: bool) -> list:
    """The callbacks as a list; refuses anything without ``on_epoch_end``, and keras callbacks unless the
    model is a keras model."""
    callbacks = list(callbacks or [])
    for i, cb in enumerate(callbacks):
        if not hasattr(cb, "on_epoch_end"):
            raise TypeError(
                f"{owner}: callbacks[{i}] = {cb!r} is not a callback (see nitrain.utils.Callback)"
            )
        if not keras_ok and is_keras_callback(cb):
            raise TypeError(
                f"{owner}: callbacks[{i}] is a keras callback ({type(cb).__module__}.{type(cb).__name__}), "
                "which needs a keras model; this is a torch model: use nitrain.utils callbacks "
                "(EarlyStopping, ModelCheckpoints, LRScheduler, CSVLogger) or subclass nitrain.utils.Callback"
            )
    return callbacks


def epoch_line(epoch: int, epochs: int, logs: dict) -> str:
    """``'epoch 3/10: loss=0.123, val_loss=0.2, lr=0.001'`` (``epoch`` 0-based)."""
    return f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k}={v:.4g}" for k, v in logs.items())


def log_progress(line: str) -> None:
    """``line`` at INFO through the ``nitrain.trainers`` logger. When logging is not configured at all (no
    handler on the way to the root logger), it goes to stderr as ``logging.lastResort`` would, but at INFO,
    unless the ``nitrain`` / ``nitrain.trainers`` logger has been given a level above INFO."""
    if logger.hasHandlers():
        logger.info(line)
        return
    if logger.disabled:
        return
    level = logger.level or logging.getLogger("nitrain").level
    if level > logging.INFO:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, None, None))


def _make_optimizer(optimizer, params, lr):
    import torch

    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key == "adam":
            return torch.optim.Adam(params, lr=lr)
        if key == "adamw":
            return torch.optim.AdamW(params, lr=lr)
        if key == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=0.9)
        if key == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)
        raise ValueError(
            f"ModelTrainer: unknown optimizer {optimizer!r}; valid names: {list(OPTIMIZERS)}, "
            "or a torch.optim.Optimizer class or instance"
        )
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(params, lr=lr)
    if callable(optimizer):  # a factory such as functools.partial(torch.optim.SGD, momentum=0.5)
        opt = optimizer(params, lr=lr)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"ModelTrainer: the optimizer factory returned {type(opt).__name__}")
        return opt
    raise TypeError(
        f"ModelTrainer: optimizer must be one of {list(OPTIMIZERS)} or a torch optimizer class/instance, "
        f"got {optimizer!r}"
    )


def _model_channels(model, channels: str):
    """'first', 'last' or None (pass batches as served)."""
    declared = declared_channels(model, channels, "ModelTrainer")
    if declared is not None:
        return declared
    import torch

    convs = (torch.nn.modules.conv._ConvNd,)
    if any(isinstance(m, convs) for m in model.modules()):
        return "first"  # torch convolutions take (N, C, *spatial)
    return None


def _epoch_seed(seed, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**63 - 1)


class _Dist:
    """torch.distributed state of one fit: rank, world size, whether we started the process group."""

    def __init__(self):
        self.rank, self.world_size, self.owned, self.active = 0, 1, False, False

    def setup(self, device_pref):
        import torch
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
        import torch
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


class ModelTrainer:
    """Train a torch ``nn.Module`` or a keras 3 model on nitrain loaders.

    The framework is detected from the model: a keras model gets a ``nitrain.trainers.keras``
    ``KerasModelTrainer`` (a subclass: same arguments, same history, callbacks, checkpoints and
    predictions; the differences are listed there). What follows describes the torch path.

    Parameters
    ----------
    model : torch.nn.Module or keras 3 model (anything else is refused with a TypeError)
    loss : 'mse', 'mae' / 'l1', 'bce' (binary cross-entropy on logits), 'cross_entropy' /
        'categorical_crossentropy' (logits; targets are class indices, index maps, or one-hot), 'dice'
        (soft Dice on logits for segmentation), or a callable ``f(output, target)`` such as a torch loss.
    optimizer : 'adam', 'adamw', 'sgd' (momentum 0.9), 'rmsprop', a torch optimizer class (built with
        ``lr``), a factory ``f(params, lr=...)``, or an optimizer instance (used as is; ``lr`` ignored).
    metrics : names from 'mae', 'mse', 'r2', 'accuracy', 'dice' or callables ``f(output, target)``.
        Built-in metrics are computed over the whole epoch (from summed statistics), not averaged per batch.
    callbacks : ``nitrain.utils`` callbacks (EarlyStopping, ModelCheckpoints, LRScheduler, CSVLogger, ...).
        keras callbacks are for keras models (see ``KerasModelTrainer``); with a torch model they are
        refused.
    device : 'auto' (CUDA when available, else CPU), or anything ``torch.device`` accepts.
    amp : mixed precision (float16 with a gradient scaler on CUDA, bfloat16 autocast on CPU).
    grad_clip : clip the gradients' global norm to this value.
    seed : with a seed, every epoch starts from ``torch.manual_seed`` of (seed, epoch) and torch's
        deterministic algorithms are switched on during ``fit`` (warn-only): the same seed, model
        initialisation and loader seed give the same run, and a resumed run the same weights. The loader's
        order and random transforms come from the *loader's* seed.
    verbose : 0 silent; 1 a ``tqdm.auto`` bar per epoch when stderr is a terminal or in a Jupyter kernel,
        else one line per epoch (``'epoch 3/10: loss=..., val_loss=..., lr=...'``) logged at INFO to the
        ``nitrain.trainers`` logger (to stderr when logging is not configured); 2 the bar and that line
        printed to stdout instead of logged.
    channels : how batches are laid out for the model. Loaders serve channels-last ``(N, *spatial, C)``
        (``expand_dims=-1``). The model's layout is ``channels`` when 'first' or 'last'; with 'auto' it is
        ``model.nitrain_spec['channels']`` when the model has one, else 'first' when the model contains a
        torch convolution (``nn.ConvNd`` / ``ConvTransposeNd``), else None (batches passed as served).
        When the model's layout is 'first' and the loader's is 'last' (``loader.channel``, or
        ``loader.dataset.channel`` for a torch DataLoader over ``loader.to_torch()``, which serves
        channels-first; objects without either count as 'last'), the last axis of x is moved to
        position 1 — and of y too when y has as many axes as x (image targets). 'last' from a 'first'
        loader moves axis 1 to the end; a loader without a channel axis (``expand_dims=None``) gets one
        inserted where the model wants it.
    """

    #: file ending of the checkpoints ``ModelCheckpoints`` writes
    checkpoint_suffix = ".pt"

    def __new__(cls, model=None, *args, **kwargs):
        if cls is ModelTrainer and framework_of(model) == "keras":
            from nitrain.trainers.keras import KerasModelTrainer

            return super().__new__(KerasModelTrainer)
        return super().__new__(cls)

    def __init__(
        self,
        model,
        loss="mse",
        optimizer="adam",
        lr: float = 1e-3,
        metrics=None,
        callbacks=None,
        device="auto",
        amp: bool = False,
        grad_clip: float | None = None,
        seed: int | None = None,
        verbose: int = 1,
        channels: str = "auto",
    ):
        _check_model(model)
        _check_torch_model(model, owner=type(self).__name__)  # a keras model in a torch-only subclass
        import torch

        self.model = model
        self.framework = "torch"
        self.loss_fn, self.loss_name = make_loss(loss)
        self.metrics = make_metrics(metrics)
        self.callbacks = check_callbacks(callbacks, type(self).__name__, keras_ok=False)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device_pref = "auto" if device == "auto" else str(device)
        self.device = torch.device(device)
        self.model.to(self.device)
        if not isinstance(lr, int | float) or lr <= 0:
            raise ValueError(f"ModelTrainer: lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.optimizer = _make_optimizer(optimizer, self.model.parameters(), self.lr)
        self.amp = bool(amp)
        if grad_clip is not None and (not isinstance(grad_clip, int | float) or grad_clip <= 0):
            raise ValueError(f"ModelTrainer: grad_clip must be a positive number or None, got {grad_clip!r}")
        self.grad_clip = grad_clip
        self.seed = seed
        self.verbose = int(verbose)
        self.channels = _model_channels(model, channels)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.device.type == "cuda")
        self.history: dict[str, list] = {}
        self.epoch = 0  # epochs completed
        self.stop_training = False
        self._dist = _Dist()
        self._net = self.model
        self._loaders: dict = {}
        self._resume: dict | None = None

    # -- distributed -----------------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self._dist.rank

    @property
    def world_size(self) -> int:
        return self._dist.world_size

    @property
    def is_main(self) -> bool:
        """True on rank 0 (and always in a single process): the rank that writes files."""
        return self._dist.rank == 0

    # -- batches -------------------------------------------------------------------------------------
    def _layout(self, loader):
        # a torch DataLoader over loader.to_torch() has the layout of its dataset
        holder = loader if hasattr(loader, "channel") else getattr(loader, "dataset", None)
        src = getattr(holder, "channel", "last")
        dst = self.channels
        if dst is None or src == dst:
            return None
        return src, dst

    def _arrange(self, t, move):
        if move is None:
            return t
        src, dst = move
        if src is None:
            return t.unsqueeze(1 if dst == "first" else -1)
        return t.movedim(-1, 1) if dst == "first" else t.movedim(1, -1)

    def _tensors(self, x, y, move):
        import torch

        def tensor(a):
            t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
            return t.to(self.device, non_blocking=True)

        xs = [tensor(v) for v in x] if isinstance(x, list | tuple) else [tensor(x)]
        ref_ndim = xs[0].ndim
        xs = [self._arrange(v, move).contiguous() for v in xs]
        yt = None
        if y is not None:
            yt = tensor(y)
            if yt.ndim == ref_ndim and yt.ndim >= 3:
                yt = self._arrange(yt, move).contiguous()
        return xs, yt

    def _autocast(self):
        import torch

        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(device_type=self.device.type, dtype=dtype, enabled=self.amp)

    def _forward(self, net, xs):
        with self._autocast():
            out = net(*xs)
        if isinstance(out, tuple | list):
            out = out[0]
        return out.float()

    def _stat_sizes(self, out, y):
        return [m.stats(out, y) for m in self.metrics]

    # -- one pass ------------------------------------------------------------------------------------
    def _shard(self, loader) -> tuple[bool, int | None]:
        """(skip batches by rank?, steps per rank or None)."""
        if not self._dist.active:
            return False, None
        if getattr(loader, "world_size", 1) > 1:  # the loader already shards records by rank
            try:
                return False, self._dist.all_min(len(loader))
            except TypeError:
                return False, None
        n = len(loader)
        w = self._dist.world_size
        if n < w:
            raise ValueError(
                f"ModelTrainer: the loader has {n} batches per epoch, fewer than the {w} ranks; use a "
                "smaller batch size"
            )
        return True, n // w

    def _run(self, loader, train: bool, desc: str = ""):
        """One pass over ``loader``; returns {'loss': ..., metric: ...} (summed over ranks)."""
        import torch

        net = self._net if train else self.model
        net.train(train)
        move = self._layout(loader)
        skip, steps = self._shard(loader) if train else (self._dist.active and self._eval_skip(loader), None)
        w, r = self._dist.world_size, self._dist.rank
        totals = None
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        count = torch.zeros((), dtype=torch.float64, device=self.device)
        bar = self._bar(loader, steps, desc, skip)
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
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scaler.scale(loss).backward()
                    if self.grad_clip is not None:
                        self.scaler.unscale_(self.optimizer)
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                n = out.shape[0]
                loss_sum += loss.detach().double() * n
                count += n
                if self.metrics:
                    with torch.no_grad():
                        stats = self._stat_sizes(out.detach(), yt)
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
            raise ValueError(f"ModelTrainer: the loader served no batches{' for ' + desc if desc else ''}")
        logs = {"loss": float(flat[0] / flat[1])}
        if totals is not None:
            for m, t in zip(self.metrics, totals, strict=True):
                logs[m.name] = m.value(t.cpu())
        return logs

    def _eval_skip(self, loader) -> bool:
        return getattr(loader, "world_size", 1) <= 1

    def _bar(self, loader, steps, desc, skip):
        if self.verbose < 1 or not self.is_main or not interactive():
            return None
        from tqdm.auto import tqdm

        total = steps
        if total is None:
            try:
                total = len(loader)
                if skip:
                    total = math.ceil(total / self._dist.world_size)
            except TypeError:
                total = None
        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    # -- fit -----------------------------------------------------------------------------------------
    def _call(self, hook, *args):
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    def fit(self, loader, epochs: int, validation=None, resume_from=None) -> dict:
        """Train for ``epochs`` epochs in total (counting any resumed ones: resuming a checkpoint of epoch
        k trains epochs k+1..epochs). Returns the history dict (also ``trainer.history``): 'loss',
        the metrics, 'val_loss' and 'val_<metric>' with a ``validation`` loader, and 'lr'."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"ModelTrainer.fit: epochs must be an integer >= 0, got {epochs!r}")
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        resume, self._resume = self._resume, None
        if resume is None:
            self.history, start = {}, 0
        else:
            self.history = {k: list(v) for k, v in resume.get("history", {}).items()}
            start = int(resume["epoch"])
            for key, ldr in (("train", loader), ("validation", validation)):
                e = resume.get("loader_epochs", {}).get(key)
                if e is not None and ldr is not None and hasattr(ldr, "epoch"):
                    ldr.epoch = int(e)
        self.initial_epoch = start
        self.epoch = start
        self.stop_training = False
        self._loaders = {"train": loader, "validation": validation}

        logs: dict = {}
        with self._fit_session(loader, validation, epochs):
            for cb in self.callbacks:
                if hasattr(cb, "set_trainer"):
                    cb.set_trainer(self)
            self._call("on_train_begin", {})
            for epoch in range(start, epochs):
                self._seed_epoch(epoch)
                self._call("on_epoch_begin", epoch, {})
                logs = self._run(loader, train=True, desc=f"epoch {epoch + 1}/{epochs}")
                if validation is not None:
                    val = self._run(validation, train=False, desc="validation")
                    logs.update({f"val_{k}": v for k, v in val.items()})
                logs["lr"] = self.get_lr()
                for k, v in logs.items():
                    self.history.setdefault(k, []).append(v)
                self.epoch = epoch + 1
                if self.verbose >= 1 and self.is_main:
                    if self.verbose >= 2:
                        print(epoch_line(epoch, epochs, logs))
                    elif not interactive():
                        log_progress(epoch_line(epoch, epochs, logs))
                self._call("on_epoch_end", epoch, dict(logs))
                if self.stop_training:
                    break
            self._call("on_train_end", dict(logs))
        return self.history

    # -- the framework's part of fit ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _fit_session(self, loader, validation, epochs: int):
        """Around the epoch loop: deterministic algorithms with a seed, and torchrun's process group."""
        import torch

        det_before = torch.are_deterministic_algorithms_enabled()
        if self.seed is not None:
            torch.use_deterministic_algorithms(True, warn_only=True)
        device = self._dist.setup(self._device_pref)
        self._dist.device = self.device
        try:
            if device is not None:
                self.device = device
                self._dist.device = device
                self.model.to(device)
                self._sync_loaders(loader, validation)
                from torch.nn.parallel import DistributedDataParallel

                ids = [device.index] if device.type == "cuda" else None
                self._net = DistributedDataParallel(self.model, device_ids=ids)
            yield
        finally:
            self._net = self.model
            self._dist.teardown()
            if self.seed is not None:
                torch.use_deterministic_algorithms(det_before)

    def _seed_epoch(self, epoch: int) -> None:
        if self.seed is not None:
            import torch

            torch.manual_seed(_epoch_seed(self.seed, epoch))

    def get_lr(self) -> float:
        """The optimizer's current learning rate (of its first parameter group)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of every parameter group (what ``LRScheduler`` calls)."""
        for group in self.optimizer.param_groups:
            group["lr"] = float(lr)

    def snapshot_weights(self):
        """A copy of the model's weights (``EarlyStopping(restore_best=True)`` keeps the best one)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restore_weights(self, weights) -> None:
        self.model.load_state_dict(weights)

    def _sync_loaders(self, *loaders):
        """Every rank must draw the same batch order: rank 0's loader seed and epoch go to all ranks."""
        for ldr in loaders:
            if ldr is not None and hasattr(ldr, "seed") and hasattr(ldr, "epoch"):
                seed, epoch = self._dist.broadcast([ldr.seed, ldr.epoch])
                ldr.seed, ldr.epoch = seed, epoch

    # -- evaluate / predict --------------------------------------------------------------------------
    def evaluate(self, loader) -> dict:
        """Loss and metrics over one pass of ``loader`` (no training)."""
        return self._run(loader, train=False, desc="evaluate")

    def predict(self, data, reduce: str | None = None, batch_size: int = 8) -> np.ndarray:
        """The model's raw outputs (logits for classification/segmentation losses) as one numpy array, in
        the order the loader serves its items, channels as the model returns them.

        ``data``: a DatasetLoader (or any iterable of (x, y) batches) or a dataset (served in order,
        ``batch_size`` records at a time). ``reduce='record'`` averages the items of each record (a loader
        with a sampler such as SliceSampler: one mean prediction per record); it needs a loader that serves
        records in order: ``shuffle=False``, a sampler with ``shuffle=False`` and ``drop_last=False``.
        """
        loader = self._as_loader(data, batch_size)
        if reduce not in (None, "record"):
            raise ValueError(f"ModelTrainer.predict: reduce must be None or 'record', got {reduce!r}")
        if reduce == "record":
            self._check_ordered(loader)
        outs = list(self._predict_batches(loader))
        if not outs:
            return np.empty((0,), np.float32)
        pred = np.concatenate(outs)
        if reduce == "record":
            pred = self._per_record(loader, pred)
        return pred

    def _predict_batches(self, loader):
        """The model's outputs for each batch of ``loader``, as numpy arrays."""
        import torch

        move = self._layout(loader)
        self.model.eval()
        with torch.no_grad():
            for batch in loader:
                x = batch[0] if isinstance(batch, tuple) else batch
                xs, _ = self._tensors(x, None, move)
                yield self._forward(self.model, xs).cpu().numpy()

    def _as_loader(self, data, batch_size):
        if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not hasattr(data, "batch_size"):
            from nitrain.datasets.base import BaseDataset

            if isinstance(data, BaseDataset):
                from nitrain.loaders import DatasetLoader

                return DatasetLoader(data, batch_size=batch_size, shuffle=False, prefetch=0)
        return data

    @staticmethod
    def _check_ordered(loader):
        sampler = getattr(loader, "sampler", None)
        if not hasattr(loader, "dataset"):
            raise TypeError("ModelTrainer.predict: reduce='record' needs a nitrain DatasetLoader")
        if getattr(loader, "shuffle", False) or getattr(sampler, "shuffle", False):
            raise ValueError(
                "ModelTrainer.predict: reduce='record' needs items in record order, but the loader "
                f"{'(shuffle=True)' if getattr(loader, 'shuffle', False) else 'sampler (shuffle=True)'} "
                "shuffles them; build the prediction loader with shuffle=False (and a sampler with "
                "shuffle=False)"
            )
        if sampler is not None and getattr(loader, "drop_last", False):
            raise ValueError("ModelTrainer.predict: reduce='record' needs drop_last=False (no item dropped)")

    @staticmethod
    def _per_record(loader, pred):
        from nitrain.samplers._extract import image_array

        sampler = loader.sampler
        records = list(range(len(loader.dataset)))[loader.rank :: loader.world_size]
        if sampler is None:
            counts = [1] * len(records)
        else:
            counts = []
            for i in records:
                x0 = loader.dataset[i][0]
                x0 = x0[0] if isinstance(x0, list) else x0
                counts.append(sampler.count(1, tuple(image_array(x0).shape)))
        if sum(counts) != len(pred):
            raise ValueError(
                f"ModelTrainer.predict: {len(pred)} predictions but the sampler should give {sum(counts)} "
                "items for these records; cannot reduce per record"
            )
        bounds = np.cumsum([0, *counts])
        return np.stack([pred[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])

    # -- checkpoints ---------------------------------------------------------------------------------
    def save_checkpoint(self, path) -> str | None:
        """Model, optimizer (and AMP scaler) state, epochs completed, history and the loaders' epoch
        counters. Only rank 0 writes (returns None on the other ranks)."""
        if not self.is_main:
            return None
        loader_epochs = {
            k: int(ldr.epoch) for k, ldr in self._loaders.items() if ldr is not None and hasattr(ldr, "epoch")
        }
        return save_checkpoint(
            path,
            self.model,
            self.optimizer,
            epoch=self.epoch,
            history={k: list(v) for k, v in self.history.items()},
            loader_epochs=loader_epochs,
            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
            seed=self.seed,
        )

    def load_checkpoint(self, path) -> dict:
        """Load model and optimizer state; the next ``fit`` continues from the checkpoint's epoch (with
        its history and the loaders' epoch counters)."""
        state = load_checkpoint(path, self.model, self.optimizer, map_location=self.device)
        if state.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.history = {k: list(v) for k, v in (state.get("history") or {}).items()}
        self._resume = state
        return state

    def __repr__(self) -> str:
        return (
            f"ModelTrainer({type(self.model).__name__}, loss={self.loss_name!r}, "
            f"optimizer={type(self.optimizer).__name__}, metrics={[m.name for m in self.metrics]}, "
            f"device={self.device}, epochs_done={self.epoch})"
        )
