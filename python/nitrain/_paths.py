"""Where nitrain keeps its files, and which files it reads as images.

``NITRAIN_HOME`` (default ``~/.nitrain``) holds the disk cache (``cache/``), the local copies of remote
dataset files (``remote/``) and the local model registry (``models/``). Its value, like any folder nitrain
takes from the environment, has ``~`` and ``$VARIABLES`` expanded (``expand``); an empty or blank value
counts as unset.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "NITRAIN_HOME"

#: The image files nitrain reads (through ANTs/ITK, and ``.npy`` through numpy), matched case-insensitively
#: at the end of a path by ``is_image_path``. A bare ``.gz`` is not one: ``a.tar.gz`` is not an image.
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".npy")
#: The NIfTI endings, the ones ``BIDSDataset`` asks pybids for when a query names no ``extension``.
NIFTI_SUFFIXES = (".nii.gz", ".nii")


def expand(path: str | os.PathLike[str]) -> Path:
    """``path`` (a string or path) with ``~`` and ``$VARIABLES`` expanded."""
    return Path(os.path.expandvars(os.path.expanduser(os.fspath(path))))


def home() -> Path:
    """``$NITRAIN_HOME`` expanded (see ``expand``), or ``~/.nitrain`` when it is unset or blank."""
    value = os.environ.get(HOME_ENV, "").strip()
    return expand(value) if value else Path.home() / ".nitrain"


def cache_dir() -> Path:
    """``DiskCache``'s default folder: ``home()/cache``."""
    return home() / "cache"


def downloads_dir() -> Path:
    """Where remote dataset files are copied by default: ``home()/remote``."""
    return home() / "remote"


def models_dir() -> Path:
    """The local model registry when ``NITRAIN_REGISTRY`` is unset: ``home()/models``."""
    return home() / "models"


def is_image_path(value: object) -> bool:
    """Whether ``value`` is a path or URL (``str`` or ``os.PathLike``) ending in one of ``IMAGE_SUFFIXES``,
    ignoring case: ``a.nii.gz`` and ``A.NII`` are, ``a.tar.gz`` and ``a.csv`` are not."""
    return isinstance(value, str | os.PathLike) and str(value).lower().endswith(IMAGE_SUFFIXES)
