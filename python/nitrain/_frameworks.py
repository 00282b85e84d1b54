"""Which deep learning framework a model belongs to, and lazy imports that say which extra to install.

Nothing here imports torch, keras or tensorflow unless asked to: ``import nitrain`` stays light.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, Literal

TORCH_EXTRA = "pip install 'nitrain[torch]'"
KERAS_EXTRA = "pip install 'nitrain[tensorflow]'"


def is_keras_model(model: object) -> bool:
    """A keras 3 (any backend) or tf.keras layer/model. Checked before torch: under the torch backend a
    keras model is also an ``nn.Module``, but it is trained and called the keras way."""
    for name in ("keras", "tf_keras"):
        mod = sys.modules.get(name)
        layer = getattr(getattr(mod, "layers", None), "Layer", None)
        if layer is not None and isinstance(model, layer):
            return True
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            return isinstance(model, tf.keras.layers.Layer)
        except Exception:  # tf.keras missing or lazily failing: not a tf.keras model
            return False
    return False


def is_torch_module(model: object) -> bool:
    torch = sys.modules.get("torch")  # a torch model means torch is already imported
    return torch is not None and isinstance(model, torch.nn.Module) and not is_keras_model(model)


def framework_of(model: object) -> str | None:
    """``'keras'``, ``'torch'`` or ``None`` (a plain callable or something unknown)."""
    if is_keras_model(model):
        return "keras"
    if is_torch_module(model):
        return "torch"
    return None


def load_triton_first() -> None:
    """Import torch's triton before tensorflow when both are installed.

    Both bundle LLVM. With tensorflow loaded first, loading triton afterwards (torch's optimisers and
    compiler do) aborts the whole process with "LLVM ERROR: inconsistency in registered CommandLine
    options"; in the other order both work. nitrain calls this before it imports keras or tensorflow.
    """
    if "triton" in sys.modules or "tensorflow" in sys.modules:
        return
    try:
        if importlib.util.find_spec("triton") is None:
            return
        import triton  # noqa: F401
    except Exception:  # a broken triton must not stop keras users
        pass


def declared_channels(model: object, channels: str, owner: str) -> str | None:
    """Where ``model`` takes the channel axis when that is settled without looking inside it: ``channels``
    itself when 'first' or 'last', else (``'auto'``) what the model's ``nitrain_spec`` declares, else None
    (the caller decides from the framework)."""
    if channels in ("first", "last"):
        return channels
    if channels != "auto":
        raise ValueError(f"{owner}: channels must be 'auto', 'first' or 'last', got {channels!r}")
    spec = getattr(model, "nitrain_spec", None)
    if isinstance(spec, dict) and spec.get("channels") in ("first", "last"):
        return spec["channels"]
    return None


def model_channels(model: object, channels: str, owner: str) -> Literal["first", "last"]:
    """Where ``model`` takes the channel axis: ``declared_channels``, else torch modules 'first' and keras
    models and other callables 'last'."""
    declared = declared_channels(model, channels, owner)
    if declared == "first" or (declared is None and framework_of(model) == "torch"):
        return "first"
    return "last"


def _require(module: str, label: str, extra: str, owner: str) -> Any:
    """Import ``module`` for ``owner``, or raise an ImportError naming ``label`` and the extra to install.
    keras and tensorflow are imported quietly and after torch's triton (see ``load_triton_first``)."""
    if module != "torch":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        load_triton_first()
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{owner} needs {label}, which is not installed: {extra}") from e


def require_torch(owner: str) -> Any:
    return _require("torch", "torch", TORCH_EXTRA, owner)


def require_keras(owner: str) -> Any:
    """keras 3, quiet. ``KERAS_BACKEND`` chooses its backend (tensorflow by default)."""
    keras = _require("keras", "keras 3", KERAS_EXTRA, owner)
    if int(keras.__version__.split(".")[0]) < 3:
        raise ImportError(f"{owner} needs keras >= 3, found {keras.__version__}: {KERAS_EXTRA}")
    return keras


def require_tensorflow(owner: str) -> Any:
    return _require("tensorflow", "tensorflow", KERAS_EXTRA, owner)
