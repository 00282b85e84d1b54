"""nitrain: medical-imaging-native deep learning on ANTs images, with a Rust core."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from nitrain._memory import buffer_pool_state, set_buffer_pool_limit
from nitrain._threads import get_num_threads, set_num_threads
from nitrain.trainers._keras_saving import watch_keras as _watch_keras

_watch_keras()  # keras.models.load_model finds the losses and metrics ModelTrainer compiled into a model

try:
    __version__ = _version("nitrain")
except PackageNotFoundError:  # running from a source tree that was never installed
    from nitrain._core import __version__

__all__ = [
    "__version__",
    "buffer_pool_state",
    "get_num_threads",
    "set_buffer_pool_limit",
    "set_num_threads",
]
