"""Caches for the results of a dataset's fixed (deterministic) transforms.

``MemoryCache`` keeps transformed images in an LRU bounded by bytes. ``DiskCache`` writes them uncompressed
(NIfTI) under a folder, keyed on the source file's path, size and modification time and on the transforms'
``repr``: change any of them and the entry is recomputed. Entries are written to a temporary file and
renamed into place, so two processes can share a folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path


def source_key(path, transforms) -> str:
    """A key for ``path`` as transformed by ``transforms`` (changes when either changes)."""
    st = os.stat(path)
    payload = json.dumps([os.path.abspath(path), st.st_size, st.st_mtime_ns, [repr(t) for t in transforms]])
    return hashlib.sha256(payload.encode()).hexdigest()


class MemoryCache:
    """Least-recently-used images, at most ``max_bytes`` of pixel data."""

    def __init__(self, max_bytes: int = 2 * 2**30):
        if max_bytes <= 0:
            raise ValueError(f"MemoryCache: max_bytes must be positive, got {max_bytes!r}")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, object] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str):
        with self._lock:
            img = self._items.get(key)
            if img is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
        return img.clone()  # callers may modify what they get

    def put(self, key: str, img) -> None:
        size = img.view().nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = img.clone()
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.view().nbytes

    def __len__(self) -> int:
        return len(self._items)


class DiskCache:
    """Transformed images as uncompressed NIfTI files under ``directory``."""

    def __init__(self, directory=None):
        default = Path(os.environ.get("NITRAIN_HOME", Path.home() / ".nitrain")) / "cache"
        self.directory = Path(directory) if directory is not None else default
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.nii"

    def get(self, key: str):
        import ants

        path = self._path(key)
        if not path.exists():
            self.misses += 1
            return None
        try:
            img = ants.image_read(os.fspath(path))
        except Exception:  # a damaged entry is recomputed, never trusted
            self.misses += 1
            return None
        self.hits += 1
        return img

    def put(self, key: str, img) -> None:
        import ants

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".nii", dir=path.parent)
        os.close(fd)
        try:
            ants.image_write(img, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def make_cache(cache, owner: str):
    if cache is None or cache is False:
        return None
    if cache == "memory":
        return MemoryCache()
    if cache == "disk":
        return DiskCache()
    if isinstance(cache, MemoryCache | DiskCache):
        return cache
    raise ValueError(
        f"{owner}: cache must be None, 'memory', 'disk' or a MemoryCache/DiskCache, got {cache!r}"
    )
