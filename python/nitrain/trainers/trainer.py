"""ModelTrainer: fit, evaluate and predict a torch model (single process or torchrun) or a keras 3 model
on nitrain loaders. One epoch loop (history, callbacks, resuming, per-record predictions, logging and
progress) runs over a backend (``_common.Backend``): ``nitrain.trainers.torch.TorchBackend`` or
``nitrain.trainers.keras.KerasBackend``, chosen from the model's type and imported on first use, so
``import nitrain.trainers`` imports neither torch nor keras.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from nitrain._frameworks import TORCH_EXTRA, framework_of
from nitrain._images import is_image
from nitrain._progress import interactive
from nitrain._typing import Model, PathLike
from nitrain.trainers._common import (
    Backend,
    check_callbacks,
    describe,
    epoch_line,
    epoch_seed,
    log_progress,
    positive,
)
from nitrain.trainers._objectives import Metric

_BACKENDS = {
    "torch": ("nitrain.trainers.torch", "TorchBackend"),
    "keras": ("nitrain.trainers.keras", "KerasBackend"),
}


def _framework(model: Model, required: str | None, owner: str) -> str:
    """The framework whose backend trains ``model``: ``required`` (a TorchTrainer / KerasTrainer, whose
    backend refuses other models), else the model's; anything else is refused, naming what it is."""
    if required is not None:
        return required
    found = framework_of(model)
    if found is not None:
        return found
    if sys.modules.get("torch") is None and sys.modules.get("keras") is None:
        try:
            import torch  # noqa: F401
        except ImportError as e:
            raise ImportError(f"{owner}: training needs torch or keras; {TORCH_EXTRA}") from e
    raise TypeError(
        f"{owner}: the model must be a torch.nn.Module or a keras 3 model (keras.Model / keras.layers.Layer);"
        f" got {describe(model)}, which is neither"
    )


class ModelTrainer:
    """Train a torch ``nn.Module`` or a keras 3 model on nitrain loaders.

    The framework is detected from the model; both get the same arguments, history, callbacks,
    checkpoints and predictions (the keras differences are listed at the end).

    Parameters
    ----------
    model : torch.nn.Module or keras 3 model (anything else is refused with a TypeError)
    loss : 'mse', 'mae' / 'l1', 'bce' (binary cross-entropy on logits), 'cross_entropy' /
        'categorical_crossentropy' (logits; targets are class indices, index maps, or one-hot), 'dice'
        (soft Dice on logits for segmentation), or a callable ``f(output, target)`` such as a torch loss.
    optimizer : 'adam', 'adamw', 'sgd' (momentum 0.9), 'rmsprop', a torch optimizer class (built with
        ``lr``), a factory ``f(params, lr=...)``, or an optimizer instance (used as is; ``lr`` ignored).
    metrics : names from 'mae', 'mse', 'r2', 'accuracy', 'dice', 'hd95', callables ``f(output, target)``,
        or metric objects (``nitrain.trainers.HD95(spacing=...)``). Built-in metrics are computed over the
        whole epoch (from summed statistics), not averaged per batch. The segmentation metrics report the
        mean over the foreground classes under their name and each class ``k`` (1..C-1; the one class of a
        one-channel output is 1) as ``dice_k`` / ``hd95_k`` ('val_dice_2' ...): Dice from the intersections
        and sizes summed over every item of the pass (blocks tiling whole volumes give the volumes' Dice);
        hd95, the 95% Hausdorff distance in voxels, per item (per volume when the loader serves whole
        volumes), averaged over the items where prediction and target both contain the class (NaN when
        none does; a missed or spurious class shows in Dice). hd95 runs on the host after each batch
        (ANTs' exact distance transform); a keras model then runs its steps eagerly.
    callbacks : ``nitrain.utils`` callbacks (EarlyStopping, ModelCheckpoints, LRScheduler, CSVLogger, ...).
        keras callbacks are for keras models (see below); with a torch model they are refused.
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

    For a keras model:

    - losses are the same names on logits, with classes on the *last* axis (keras is channels-last); a
      callable loss or metric follows keras' convention ``f(y_true, y_pred)``; metrics are computed over
      the whole epoch like torch's.
    - ``optimizer``: a name, a ``keras.optimizers.Optimizer`` class (built with ``lr``), a factory
      ``f(learning_rate=...)`` or an instance. ``grad_clip`` becomes the optimizer's ``global_clipnorm``.
    - ``device``: 'auto' (keras' placement) or a device for ``keras.device`` ('cpu', 'gpu', 'cuda:0' ...).
    - ``amp``: set ``keras.mixed_precision.set_global_policy('mixed_float16')`` before building the model
      instead; ``amp=True`` is refused.
    - ``seed``: ``keras.utils.set_random_seed`` of (seed, epoch) before every epoch.
    - ``channels='auto'``: the model's ``nitrain_spec['channels']``, else its first layer with a
      ``data_format`` (convolutions, pooling), else batches as served.
    - checkpoints are ``.weights.h5`` files (``model.save_weights``) with the optimizer's variables, the
      epoch and the history in a ``nitrain`` group; no torchrun.
    - ``callbacks`` may mix nitrain callbacks with keras' own (``keras.callbacks.ReduceLROnPlateau``,
      ``EarlyStopping``, ``TensorBoard``, ``CSVLogger``, ``ModelCheckpoint``, ``LearningRateScheduler``,
      ...), called in the order given. keras callbacks get ``set_model(model)`` and ``set_params``
      (``epochs``, ``steps``, ``verbose``) before training, the train and epoch hooks from the epoch loop
      (``logs`` = the epoch's history values, 'val_' ones included), the batch hooks from each epoch's
      ``model.fit`` and ``on_test_begin`` / ``on_test_end`` / test batch hooks from each validation pass.
      What they do acts: a learning rate they set on ``model.optimizer`` is the one the next steps use,
      and ``model.stop_training = True`` stops training after the epoch (``trainer.stop_training`` is
      ``model.stop_training``). ``keras.callbacks.BackupAndRestore`` is refused: use
      ``nitrain.utils.ModelCheckpoints`` and ``fit(resume_from=...)``.

    The keras model is compiled on the first ``fit`` / ``evaluate``, once the first batch shows the
    output's shape (checked against the targets before any step). nitrain's losses and metrics in the
    compiled model are registered with keras, so ``model.save('m.keras')`` reloads with
    ``keras.models.load_model`` in any process that imported ``nitrain.trainers`` (before or after keras).
    """

    #: the framework a subclass trains only ('torch': TorchTrainer, 'keras': KerasTrainer); None: either
    framework_required: str | None = None

    def __init__(
        self,
        model: Model,
        loss: str | Callable[..., Any] = "mse",
        optimizer: Any = "adam",
        lr: float = 1e-3,
        metrics: Sequence[str | Callable[..., Any] | Metric] | None = None,
        callbacks: Sequence[Any] | None = None,
        device: Any = "auto",
        amp: bool = False,
        grad_clip: float | None = None,
        seed: int | None = None,
        verbose: int = 1,
        channels: str = "auto",
    ) -> None:
        owner = type(self).__name__
        kind = _framework(model, self.framework_required, owner)
        module, name = _BACKENDS[kind]
        backend_class = getattr(importlib.import_module(module), name)
        self.lr = positive("lr", lr)
        self.grad_clip = positive("grad_clip", grad_clip, none_ok=True)
        self.amp = bool(amp)
        self.seed = seed
        self.verbose = int(verbose)
        self.callbacks = check_callbacks(callbacks, owner, keras_ok=kind == "keras")
        self.backend: Backend = backend_class(
            model,
            loss=loss,
            optimizer=optimizer,
            lr=self.lr,
            metrics=metrics,
            callbacks=self.callbacks,
            device=device,
            amp=self.amp,
            grad_clip=self.grad_clip,
            channels=channels,
            verbose=self.verbose,
            owner=owner,
        )
        self.history: dict[str, list] = {}
        self.epoch = 0  # epochs completed
        self.initial_epoch = 0
        #: the block size of the sampler the model was trained on (``predict`` then slides it over whole
        #: images), or None
        self.block_size: Any = None
        self._stop = False
        self._loaders: dict = {}
        self._resume: dict | None = None

    # -- the backend's state, as the callbacks and users read it ---------------------------------------
    framework = property(lambda self: self.backend.framework, doc="'torch' or 'keras'")
    checkpoint_suffix = property(
        lambda self: self.backend.checkpoint_suffix, doc="file ending of the checkpoints (.pt, .weights.h5)"
    )
    model = property(lambda self: self.backend.model)
    optimizer = property(lambda self: self.backend.optimizer)
    loss_name = property(lambda self: self.backend.loss_name)
    metric_names = property(lambda self: list(self.backend.metric_names))
    device = property(lambda self: self.backend.device)
    channels = property(lambda self: self.backend.channels, doc="the model's layout: 'first', 'last' or None")
    rank = property(lambda self: self.backend.rank)
    world_size = property(lambda self: self.backend.world_size)

    @property
    def is_main(self) -> bool:
        """True on rank 0 (and always in a single process): the rank that writes files."""
        return self.backend.rank == 0

    @property
    def stop_training(self) -> bool:
        """Set by a callback to stop after the current epoch (keras callbacks set ``model.stop_training``)."""
        return self._stop or self.backend.stop_requested

    @stop_training.setter
    def stop_training(self, value: bool) -> None:
        self._stop = bool(value)
        self.backend.stop_requested = bool(value)

    def get_lr(self) -> float:
        """The optimizer's current learning rate (of its first parameter group)."""
        return self.backend.learning_rate

    def set_lr(self, lr: float) -> None:
        """Set the learning rate (of every parameter group; what ``LRScheduler`` calls)."""
        self.backend.learning_rate = float(lr)

    def snapshot_weights(self) -> Any:
        """A copy of the model's weights (``EarlyStopping(restore_best=True)`` keeps the best one)."""
        return self.backend.get_weights()

    def restore_weights(self, weights: Any) -> None:
        self.backend.set_weights(weights)

    # -- fit -----------------------------------------------------------------------------------------
    def _progress(self, total: int | None, desc: str) -> Any:
        """A tqdm bar for one pass, when ``verbose`` and a terminal or notebook allow one; else None."""
        if self.verbose < 1 or not self.is_main or not interactive():
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def _run(self, loader: Iterable[Any], train: bool, desc: str) -> dict:
        return self.backend.run_epoch(loader, train, desc, self._progress)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    def fit(
        self,
        loader: Iterable[Any],
        epochs: int,
        validation: Iterable[Any] | None = None,
        resume_from: PathLike | None = None,
    ) -> dict:
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
        self.initial_epoch = self.epoch = start
        self.stop_training = False
        self._loaders = {"train": loader, "validation": validation}
        block = _block_size(loader)
        if block is not None:
            self.block_size = block

        logs: dict = {}
        with self.backend.session(loader, validation, epochs, self.seed):
            for cb in self.callbacks:
                if hasattr(cb, "set_trainer"):
                    cb.set_trainer(self)
            self._call("on_train_begin", {})
            for epoch in range(start, epochs):
                if self.seed is not None:
                    self.backend.seed_epoch(epoch_seed(self.seed, epoch))
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

    # -- evaluate / predict --------------------------------------------------------------------------
    def evaluate(self, loader: Iterable[Any]) -> dict:
        """Loss and metrics over one pass of ``loader`` (no training)."""
        return self._run(loader, train=False, desc="evaluate")

    def predict(
        self,
        data: Any,
        reduce: str | None = None,
        batch_size: int = 8,
        block_size: int | Sequence[int] | None = None,
        overlap: float = 0.5,
        blend: str = "gaussian",
        output: str = "labels",
    ) -> Any:
        """The model's raw outputs (logits for classification/segmentation losses) as one numpy array, in
        the order the loader serves its items, channels as the model returns them.

        ``data``: a DatasetLoader (or any iterable of (x, y) batches) or a dataset (served in order,
        ``batch_size`` records at a time). ``reduce='record'`` averages the items of each record (a loader
        with a sampler such as SliceSampler: one mean prediction per record), in the order of the records'
        indices, whatever order the loader serves items in (each ``Batch`` says which record each item
        came from); every record the loader serves must get at least one item.

        **Whole volumes from a block model.** When the model was trained on blocks (``fit`` on a loader
        with a ``BlockSampler``, ``PatchSampler`` or ``LabelSampler`` sets ``trainer.block_size``) or
        ``block_size`` is given, and ``data`` is an ANTs image, a list of them or a dataset, every whole
        image is predicted by sliding windows (``nitrain.inference.sliding_window``: ``overlap``,
        ``blend``, ``output`` as there, ``batch_size`` blocks at a time): an ANTs image in the input's
        space for an image, a list of them (one per record) for a dataset.
        """
        block = block_size if block_size is not None else self.block_size
        if block is not None and _whole_images(data):
            return self._predict_volumes(data, block, overlap, blend, output, batch_size)
        loader = _as_loader(data, batch_size)
        if reduce not in (None, "record"):
            raise ValueError(f"ModelTrainer.predict: reduce must be None or 'record', got {reduce!r}")
        if reduce == "record":
            if not hasattr(loader, "dataset"):
                raise TypeError("ModelTrainer.predict: reduce='record' needs a nitrain DatasetLoader")
            loader = _Recording(loader)
        outs = list(self.backend.predict_batches(loader))
        pred = np.concatenate(outs) if outs else np.empty((0,), np.float32)
        if reduce == "record":
            pred = _per_record(loader, pred)
        return pred

    def _predict_volumes(
        self, data: Any, block: Any, overlap: float, blend: str, output: str, batch_size: int
    ) -> Any:
        from nitrain.inference import sliding_window

        def one(x: Any) -> Any:
            return sliding_window(
                self.model, x, block, overlap=overlap, blend=blend, batch_size=batch_size, output=output
            )

        if _images(data):
            return one(data)
        return [one(data[i][0]) for i in range(len(data))]

    # -- checkpoints ---------------------------------------------------------------------------------
    def save_checkpoint(self, path: PathLike) -> str | None:
        """Model and optimizer state (and the AMP scaler's), epochs completed, history and the loaders'
        epoch counters. Only rank 0 writes (returns None on the other ranks)."""
        if not self.is_main:
            return None
        loader_epochs = {
            k: int(ldr.epoch) for k, ldr in self._loaders.items() if ldr is not None and hasattr(ldr, "epoch")
        }
        return self.backend.save(
            path,
            epoch=self.epoch,
            history={k: list(v) for k, v in self.history.items()},
            loader_epochs=loader_epochs,
            seed=self.seed,
        )

    def load_checkpoint(self, path: PathLike) -> dict:
        """Load model and optimizer state; the next ``fit`` continues from the checkpoint's epoch (with
        its history and the loaders' epoch counters)."""
        state = self.backend.load(path)
        self.epoch = int(state["epoch"])
        self.history = {k: list(v) for k, v in (state.get("history") or {}).items()}
        self._resume = state
        return state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({type(self.model).__name__}, framework={self.framework!r}, "
            f"loss={self.loss_name!r}, optimizer={type(self.optimizer).__name__}, "
            f"metrics={self.metric_names}, device={self.device}, epochs_done={self.epoch})"
        )


# -- predict's helpers -------------------------------------------------------------------------------
def _block_size(loader: Any) -> Any:
    """The block a loader's sampler serves (blocks or patches of whole images), else None."""
    sampler = getattr(loader, "sampler", None)
    if sampler is None or type(sampler).__name__ not in ("BlockSampler", "PatchSampler", "LabelSampler"):
        return None
    return getattr(sampler, "block_size", None) or getattr(sampler, "patch_size", None)


def _images(data: Any) -> bool:
    """An ANTs image, or a list of them (the inputs of one record)."""
    return is_image(data) or (
        isinstance(data, list | tuple) and bool(data) and all(is_image(v) for v in data)
    )


def _whole_images(data: Any) -> bool:
    """An ANTs image, a list of them (several inputs), or a dataset (records of whole images)."""
    if _images(data):
        return True
    from nitrain.datasets.base import BaseDataset

    return isinstance(data, BaseDataset)


def _as_loader(data: Any, batch_size: int) -> Any:
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not hasattr(data, "batch_size"):
        from nitrain.datasets.base import BaseDataset

        if isinstance(data, BaseDataset):
            from nitrain.loaders import DatasetLoader

            return DatasetLoader(data, batch_size=batch_size, shuffle=False, prefetch=0)
    return data


class _Recording:
    """A loader that notes the ``records`` of every batch it serves (``Batch.records``)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.records: list[np.ndarray] = []

    def __iter__(self) -> Any:
        for batch in self.loader:
            records = getattr(batch, "records", None)
            if records is None:
                raise TypeError("ModelTrainer.predict: reduce='record' needs batches that name their records")
            self.records.append(np.asarray(records))
            yield batch

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


def _per_record(loader: _Recording, pred: np.ndarray) -> np.ndarray:
    """The mean prediction of each record, records in index order."""
    records = np.concatenate(loader.records) if loader.records else np.empty(0, np.int64)
    if len(records) != len(pred):
        raise ValueError(
            f"ModelTrainer.predict: {len(pred)} predictions for {len(records)} items; cannot reduce per "
            "record"
        )
    expected = np.arange(len(loader.dataset))[loader.rank :: loader.world_size]
    served, inverse = np.unique(records, return_inverse=True)
    missing = np.setdiff1d(expected, served)
    if missing.size:
        raise ValueError(
            f"ModelTrainer.predict: records {missing[:5].tolist()} got no item (drop_last=True?); cannot "
            "reduce per record"
        )
    sums = np.zeros((len(served), *pred.shape[1:]), np.float64)
    np.add.at(sums, inverse, pred)
    counts = np.bincount(inverse, minlength=len(served)).reshape(-1, *([1] * (pred.ndim - 1)))
    return (sums / counts).astype(pred.dtype)
