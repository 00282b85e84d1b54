"""Caches for the results of a dataset's fixed (deterministic) transforms.

``MemoryCache`` keeps transformed images in an LRU bounded by bytes. ``DiskCache`` writes them uncompressed
(NIfTI, with a CRC32 checked on every read; read back by nitrain's Rust NIfTI reader, ``nitrain._nifti``)
under a folder, also an LRU bounded by bytes. Keys
(``source_key``) have two parts, ``<record>-<variant>``: the record is the source file's absolute path and
the stream it feeds (``x``, ``y``, ``x[1]``, ...); the variant is the file's size and modification time,
the transforms' keys (``nitrain.transforms._keys``: the same in every process) and the nitrain version.
Change any of them and the entry is recomputed; ``DiskCache`` then deletes the record's entry under the old
variant.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from nitrain._paths import cache_dir
from nitrain._typing import Image, Transform
from nitrain.datasets._verify import DamagedFileError, NiftiLayout, nifti_layout, voxel_bytes

#: the environment variable that sets ``DiskCache``'s default limit (e.g. ``20GB``, ``500MiB``)
LIMIT_ENV = "NITRAIN_DISK_CACHE_LIMIT"
#: ``DiskCache``'s limit when neither an argument nor ``NITRAIN_DISK_CACHE_LIMIT`` sets one: 10 GiB
DEFAULT_DISK_LIMIT = 10 * 2**30
_LOW_WATER = 0.9  # an eviction frees space down to this fraction of the limit
_RESCAN_S = 30.0  # how old a folder scan may get before a write scans again (other processes write too)
_NIFTI_HEADER = 352  # bytes before the pixel data of a .nii file
_ORPHAN_S = 3600.0  # temporary files older than this were left by a process that died mid-write
_MARK = b"nitrain-crc32:"  # then 8 hex digits, in the NIfTI header's aux_file field
_CRC_CHUNK = 8 << 20
_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e([0-9]+))?\s*([a-z]*)\s*$", re.IGNORECASE)
_KEY = re.compile(r"^[0-9A-Za-z_]{2,}(-[0-9A-Za-z_]+)?$")


def parse_size(value: object, what: str) -> int:
    """Bytes from a positive integer or a string with a unit: ``'20GB'`` (10**9 bytes per GB), ``'500MiB'``
    (2**20 per MiB), ``'1.5 TB'``; a bare number is bytes. ``what`` names the parameter in the error."""
    n = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str):
        m = _SIZE.match(value)
        if m and m.group(3).lower() in _UNITS:
            n = float(m.group(1)) * 10 ** int(m.group(2) or 0) * _UNITS[m.group(3).lower()]
    if n is None or not n >= 1 or n == float("inf"):
        raise ValueError(
            f"{what} must be a positive number of bytes or a size such as '20GB' or '500MiB', got {value!r}"
        )
    return int(n)


def _record_key(path: str | os.PathLike[str], stream: str) -> str:
    return hashlib.sha256(json.dumps([os.path.abspath(path), stream]).encode()).hexdigest()[:24]


def transform_keys(transforms: Iterable[Transform]) -> list[str]:
    """Each transform's key: the same in every process, or private to the transform and process when it has
    no stable key (see ``nitrain.transforms._keys``)."""
    from nitrain.transforms._keys import Unkeyable, callable_key, process_local_key

    keys = []
    for t in transforms:
        try:
            keys.append(callable_key(t))
        except Unkeyable:
            keys.append(process_local_key(t))
    return keys


def source_key(path: str | os.PathLike[str], transforms: Iterable[Transform], stream: str = "") -> str:
    """The key of ``path`` read as ``stream`` and transformed by ``transforms``: ``<record>-<variant>``,
    where the record names (path, stream) and the variant changes with the file and the transforms."""
    import nitrain

    st = os.stat(path)
    payload = json.dumps([st.st_size, st.st_mtime_ns, transform_keys(transforms), nitrain.__version__])
    return f"{_record_key(path, stream)}-{hashlib.sha256(payload.encode()).hexdigest()[:40]}"


class MemoryCache:
    """Least-recently-used images, at most ``max_bytes`` (bytes or a size string such as ``'2GB'``) of
    pixel data."""

    def __init__(self, max_bytes: int | str = 2 * 2**30) -> None:
        self.max_bytes = parse_size(max_bytes, "MemoryCache: max_bytes")
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str) -> Image | None:
        with self._lock:
            img = self._items.get(key)
            if img is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
        return img.clone()  # callers may modify what they get

    def put(self, key: str, img: Image) -> None:
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

    def __getstate__(
        self,
    ) -> dict[str, Any]:  # a copy for another process (DataLoader workers that spawn): not the lock
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class DiskCache:
    """Transformed images as uncompressed NIfTI files under ``directory`` (default ``$NITRAIN_HOME/cache``,
    ``~/.nitrain/cache`` when ``NITRAIN_HOME`` is unset: ``nitrain._paths.cache_dir``), at most ``max_bytes``
    of files.

    ``max_bytes``: bytes or a size string (``'20GB'``); default ``$NITRAIN_DISK_CACHE_LIMIT``, else 10 GiB.
    When a write takes the folder over the limit, the least recently used entries are deleted until it
    holds at most 90% of it. A hit sets the entry's modification time to now, which is what "recently used"
    means here (access times are unreliable: many disks are mounted ``noatime``). An entry larger than the
    limit is not written.

    One entry is kept per record (source file and stream): writing a record under a new variant (the file
    or the transforms changed) deletes its other entries. Two datasets that read the same files with
    different transforms into one folder therefore replace each other's entries; give them separate
    folders to keep both.

    Every entry carries a CRC32 of the whole file (taken with the header's 24-byte ``aux_file`` field
    zeroed, and then stored in that field), written before the entry is renamed into place. A read checks
    the entry's size against its header and the CRC32 against the image read (or, when the image's voxels
    are not laid out as in the file, against the file); a damaged entry (cut short, overwritten, or without
    a checksum) is counted in ``damaged`` and as a miss, deleted with a warning naming it, and so recomputed
    from its source and written again.

    Several processes may share the folder: entries are written to a temporary file and renamed into
    place, a vanished entry is a miss, and eviction skips entries another process used since the folder
    was scanned. Each process counts its own writes and rescans the folder when its count passes
    the limit or its last scan is 30 s old, so the folder can exceed the limit for that long by what other
    processes wrote meanwhile.

    ``hits``, ``misses`` and ``evictions`` count this object's lookups and deletions by the limit;
    ``damaged`` counts the damaged entries it found (each is also a miss).
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, max_bytes: int | str | None = None
    ) -> None:
        self.directory = Path(directory) if directory is not None else cache_dir()
        if max_bytes is not None:
            self.max_bytes = parse_size(max_bytes, "DiskCache: max_bytes")
        elif os.environ.get(LIMIT_ENV, "").strip():
            self.max_bytes = parse_size(os.environ[LIMIT_ENV], f"the environment variable {LIMIT_ENV}")
        else:
            self.max_bytes = DEFAULT_DISK_LIMIT
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = self.evictions = self.damaged = 0
        self._lock = threading.Lock()
        self._known: int | None = None  # bytes in the folder at the last scan, plus this object's writes
        self._scanned_at = 0.0

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(
                f"DiskCache: a key must be 2 or more letters, digits or '_' (one '-' allowed), got {key!r}"
            )
        return self.directory / key[:2] / f"{key}.nii"

    def get(self, key: str) -> Image | None:
        from nitrain._nifti import image_read  # the Rust reader; ANTs for the files it leaves to ITK

        path = self._path(key)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            self.misses += 1
            return None
        with f:
            size = os.fstat(f.fileno()).st_size
            try:
                head = f.read(540)
                layout = nifti_layout(head)
                if len(head) < layout.vox_offset:
                    head += f.read(layout.vox_offset - len(head))
                stored = _stored_crc(head, layout)
                if size != layout.size:
                    raise DamagedFileError(f"it has {size} bytes, its header says {layout.size}")
            except DamagedFileError as e:
                return self._damaged(path, str(e), size)
            try:
                img = image_read(path)
            except Exception as e:
                if not path.exists():  # removed by another process meanwhile
                    self.misses += 1
                    return None
                return self._damaged(path, f"it cannot be read: {getattr(e, 'reason', None) or e}", size)
            voxels = voxel_bytes(img, layout)
            if voxels is None or zlib.crc32(voxels, _header_crc(head, layout)) != stored:
                f.seek(0)  # not proved by the image read: decide on the file's bytes
                if _file_crc(f, layout) != stored:
                    return self._damaged(path, "its CRC32 does not match", size)
        self.hits += 1
        _touch(path)
        return img

    def _damaged(self, path: Path, reason: str, size: int) -> Image | None:  # None: a miss
        self.damaged += 1
        self.misses += 1
        try:
            os.unlink(path)
            self._account(-size)
        except FileNotFoundError:
            pass
        warnings.warn(
            f"DiskCache: damaged entry {path} ({reason}); deleted it, the image is recomputed from its "
            "source",
            stacklevel=3,
        )
        return None

    def put(self, key: str, img: Image) -> None:
        import ants

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        freed = self._remove_other_variants(key)
        if img.view().nbytes + _NIFTI_HEADER > self.max_bytes:
            self._account(-freed)
            return
        fd, tmp = tempfile.mkstemp(suffix=".nii", dir=path.parent)
        os.close(fd)
        try:
            ants.image_write(img, tmp)
            _seal(tmp)
            _touch(Path(tmp))
            size = os.path.getsize(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._account(size - freed)
        self._enforce()

    def _remove_other_variants(self, key: str) -> int:
        """Delete the record's entries under other variants; the bytes freed."""
        if "-" not in key:
            return 0
        prefix, own = key.split("-", 1)[0] + "-", f"{key}.nii"
        freed = 0
        try:
            names = [e for e in os.scandir(self.directory / key[:2]) if e.name.startswith(prefix)]
        except FileNotFoundError:
            return 0
        for e in names:
            if e.name != own and e.name.endswith(".nii"):
                try:
                    size = e.stat().st_size
                    os.unlink(e.path)
                    freed += size
                except FileNotFoundError:
                    pass
        return freed

    def _account(self, delta: int) -> None:
        with self._lock:
            if self._known is not None:
                self._known += delta

    def _scan(self) -> list[tuple[int, str, int, str]]:
        """(modification time, name, size, path) of every entry; removes temporaries left by dead writers."""
        entries: list[tuple[int, str, int, str]] = []
        now = time.time()
        try:
            subdirs = [d for d in os.scandir(self.directory) if len(d.name) == 2 and d.is_dir()]
        except FileNotFoundError:
            return entries
        for d in subdirs:
            try:
                files = list(os.scandir(d.path))
            except FileNotFoundError:
                continue
            for e in files:
                try:
                    st = e.stat()
                    if e.name.startswith("tmp"):
                        if now - st.st_mtime > _ORPHAN_S:
                            os.unlink(e.path)
                    elif e.name.endswith(".nii"):
                        entries.append((st.st_mtime_ns, e.name, st.st_size, e.path))
                except FileNotFoundError:  # another process removed or renamed it meanwhile
                    continue
        return entries

    def _enforce(self) -> None:
        with self._lock:
            fresh = time.monotonic() - self._scanned_at < _RESCAN_S
            if self._known is not None and self._known <= self.max_bytes and fresh:
                return
            entries = self._scan()
            total = sum(e[2] for e in entries)
            if total > self.max_bytes:
                target = int(self.max_bytes * _LOW_WATER)
                for mtime, _, size, path in sorted(entries):
                    if total <= target:
                        break
                    try:
                        if os.stat(path).st_mtime_ns != mtime:
                            continue  # used (or rewritten) by another process since the scan
                        os.unlink(path)
                        self.evictions += 1
                    except FileNotFoundError:
                        pass
                    total -= size
            self._known, self._scanned_at = total, time.monotonic()

    def size(self) -> int:
        """Bytes of entries in the folder now."""
        return sum(e[2] for e in self._scan())


def _header_crc(head: bytes, layout: NiftiLayout) -> int:
    """CRC32 of the header and extensions (``vox_offset`` bytes) with the ``aux_file`` field zeroed."""
    a = layout.aux_offset
    return zlib.crc32(head[a + 24 : layout.vox_offset], zlib.crc32(bytes(24), zlib.crc32(head[:a])))


def _file_crc(f: IO[bytes], layout: NiftiLayout) -> int:
    """CRC32 of the whole file ``f`` (from its start) with the ``aux_file`` field zeroed."""
    head = f.read(layout.vox_offset)
    crc = _header_crc(head, layout)
    while chunk := f.read(_CRC_CHUNK):
        crc = zlib.crc32(chunk, crc)
    return crc


def _stored_crc(head: bytes, layout: NiftiLayout) -> int:
    field = head[layout.aux_offset : layout.aux_offset + 24]
    digits = field[len(_MARK) : len(_MARK) + 8]
    if not field.startswith(_MARK) or not re.fullmatch(rb"[0-9a-f]{8}", digits):
        raise DamagedFileError("it has no nitrain checksum in its header")
    return int(digits, 16)


def _seal(tmp: str) -> None:
    """Store the CRC32 of the newly written entry ``tmp`` in its header's ``aux_file`` field."""
    with open(tmp, "r+b") as f:
        layout = nifti_layout(f.read(540))
        f.seek(0)
        crc = _file_crc(f, layout)
        f.seek(layout.aux_offset)
        f.write((_MARK + b"%08x" % crc).ljust(24, b"\0"))


def _touch(path: Path) -> None:
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except OSError:  # vanished, or a read-only cache: recency is then only approximate
        pass


def make_cache(cache: object, owner: str, limit: int | str | None = None) -> MemoryCache | DiskCache | None:
    """The cache a dataset's ``cache`` argument asks for; ``limit`` is its ``cache_limit`` (bytes or a size
    string), for ``'memory'`` or ``'disk'``."""
    if isinstance(cache, MemoryCache | DiskCache) or cache is None or cache is False:
        if limit is not None:
            raise ValueError(
                f"{owner}: cache_limit applies to cache='memory' or cache='disk' only, not cache={cache!r}"
                + (
                    "; give the limit to the cache object instead"
                    if cache is not None and cache is not False
                    else ""
                )
            )
        return None if cache is None or cache is False else cache
    if cache == "memory":
        return MemoryCache() if limit is None else MemoryCache(parse_size(limit, f"{owner}: cache_limit"))
    if cache == "disk":
        return DiskCache(max_bytes=None if limit is None else parse_size(limit, f"{owner}: cache_limit"))
    raise ValueError(
        f"{owner}: cache must be None, 'memory', 'disk' or a MemoryCache/DiskCache, got {cache!r}"
    )
