"""Keep keras models trained by ``ModelTrainer`` loadable with ``keras.models.load_model``.

``ModelTrainer`` compiles nitrain's own losses and metrics into a keras model (``_keras_objects``), so a
saved ``.keras`` file names them (``nitrain>EpochError`` ...). keras 3 finds such objects only in its
registry of custom objects (it imports no module named in the file but its own), so they must be registered
before ``load_model`` runs, without importing keras when nitrain is imported.

``watch_keras()`` does that: when keras is already imported it registers them at once; otherwise it puts a
finder on ``sys.meta_path`` that waits for ``import keras`` and registers them right after keras has loaded
(then removes itself). It costs nothing until keras is imported, and imports nothing itself.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
import warnings

_lock = threading.Lock()


def register_keras_objects() -> None:
    """Register nitrain's keras losses and metrics (imports keras)."""
    import nitrain.trainers._keras_objects  # noqa: F401  (registration is its import)


def _register_after_import() -> None:
    version = getattr(sys.modules.get("keras"), "__version__", "3")
    if not str(version).split(".")[0].isdigit() or int(str(version).split(".")[0]) < 3:
        return  # nitrain's keras support needs keras 3: nothing of it can be in a keras 2 model
    try:
        register_keras_objects()
    except Exception as e:  # never break `import keras`; say what will not work
        warnings.warn(
            f"nitrain could not register its keras losses and metrics ({type(e).__name__}: {e}); "
            "keras.models.load_model of models trained with nitrain's ModelTrainer will fail until "
            "nitrain.trainers._keras_saving.register_keras_objects() succeeds",
            RuntimeWarning,
            stacklevel=2,
        )


class _RegisteringLoader:
    """keras' own loader; registers nitrain's objects once keras has been executed."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        try:
            self._loader.exec_module(module)
        finally:  # keras keeps its own loader, as if nitrain had never been there
            module.__loader__ = self._loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._loader
        _unwatch()
        _register_after_import()

    def __getattr__(self, name):  # get_resource_reader, get_source, ... as keras' loader has them
        return getattr(self._loader, name)


class _KerasWatcher(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for ``keras`` it asks the other finders and wraps the loader they give."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        for finder in list(sys.meta_path):
            if isinstance(finder, _KerasWatcher):
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _RegisteringLoader(spec.loader)
            return spec
        return None


def _unwatch() -> None:
    with _lock:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _KerasWatcher)]


def watch_keras() -> None:
    """Register nitrain's keras objects now if keras is loaded, else as soon as it is imported."""
    keras = sys.modules.get("keras")
    if keras is not None:
        if not getattr(getattr(keras, "__spec__", None), "_initializing", False):
            _register_after_import()
        return  # (keras half-imported: nitrain registers its objects itself when it compiles a model)
    with _lock:
        if not any(isinstance(f, _KerasWatcher) for f in sys.meta_path):
            sys.meta_path.insert(0, _KerasWatcher())
