"""Where nitrain's files live: a local folder (``LocalStore``) or an fsspec URL (``FsspecStore``:
``s3://``, ``gs://``, ``memory://`` ...), behind one set of operations (``Store``). Datasets
(``nitrain.datasets.storage``) and the model registry (``nitrain.models.pretrained``) both use them.

Paths inside a store are relative and ``/``-separated (``'owner/net/1/card.json'``); ``''`` is its root.

Writes never leave a partial file under the final name: locally a file is written to a temporary name in
the same folder, flushed to disk and renamed into place; an fsspec store writes each object whole
(``pipe_file``). An exclusive write (``exclusive=True``) raises ``FileExistsError`` naming the file when
it exists: locally the finished temporary file is hard-linked to its name (which fails if the name is
taken); on an fsspec store the object is created with ``pipe_file(mode='create')``, which s3fs sends as a
conditional PUT (``If-None-Match: *``, atomic on AWS S3 and moto); other fsspec filesystems check for the
file and then write it, which leaves a short window for a rival write.

Requests to ``s3://`` have bounded waits (``S3_DEFAULTS``, merged under the caller's ``storage_options`` by
``remote_options``): a store that stops answering gives an error within about 20 s per request instead of
s3fs's and botocore's nested retries of 15 s reads (7 minutes).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

#: Timeouts and retries for ``s3://`` URLs (s3fs), used where ``storage_options`` does not set them.
#: ``config_kwargs`` go to botocore: 5 s to connect, 10 s at most without data while reading, and one retry
#: (``max_attempts`` counts retries, so two attempts in all) with botocore's standard backoff (under 1 s
#: for the first retry), which also covers throttling and 5xx answers. ``retries`` is s3fs's own loop
#: around each botocore call (and around resuming a broken download), 5 passes in s3fs; nested around
#: botocore's retries it multiplied every wait, so nitrain makes it one pass. A store that accepts the
#: connection and then says nothing thus fails a request after about 2 x 10 s.
S3_DEFAULTS: dict[str, Any] = {
    "retries": 1,
    "config_kwargs": {
        "connect_timeout": 5,
        "read_timeout": 10,
        "retries": {"max_attempts": 1, "mode": "standard"},
    },
}


def _merged(defaults: dict, given: dict) -> dict:
    """``given`` over ``defaults``: nested dicts merged key by key, ``given`` winning; neither is changed."""
    out = copy.deepcopy(defaults)
    for k, v in given.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _is_s3(url: str) -> bool:
    return "://" in url and url.split("://", 1)[0].lower() in ("s3", "s3a")


def remote_options(url: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``storage_options`` for ``url`` with nitrain's timeouts and retries filled in (``S3_DEFAULTS`` for
    ``s3://`` and ``s3a://``; other protocols are left as given). The caller's options win, key by key:
    ``{"config_kwargs": {"read_timeout": 60}}`` keeps the other defaults. ``"retries"`` is s3fs's retry
    count, which ``S3FileSystem`` takes as an attribute, not a constructor argument: ``open_fs`` pops it
    and sets ``fs.retries``. With ``AWS_MAX_ATTEMPTS`` or ``AWS_RETRY_MODE`` in the environment, botocore's
    retries are left to them."""
    given = dict(storage_options or {})
    if not _is_s3(url):
        return given
    defaults = copy.deepcopy(S3_DEFAULTS)
    if "AWS_MAX_ATTEMPTS" in os.environ or "AWS_RETRY_MODE" in os.environ:
        del defaults["config_kwargs"]["retries"]
    return _merged(defaults, given)


def open_fs(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """``(filesystem, path)`` for ``url``, as ``fsspec.core.url_to_fs`` with ``remote_options`` applied."""
    import fsspec

    options = remote_options(url, storage_options)
    retries = options.pop("retries", None) if _is_s3(url) else None
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 1):
        raise ValueError(
            f"storage_options for {url}: 'retries' (s3fs's attempts per call) must be an integer >= 1, "
            f"got {retries!r}"
        )
    fs, path = fsspec.core.url_to_fs(url, **options)
    if retries is not None:
        fs.retries = retries
    return fs, path


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL for fsspec: a string with ``://`` that is not a ``file://`` URL."""
    return isinstance(path, str) and "://" in path and not path.startswith("file://")


class Store(Protocol):
    """What ``LocalStore`` and ``FsspecStore`` can do, on paths relative to their root."""

    def url(self, rel: str = "") -> str:
        """Where ``rel`` is, for messages and records: a local path, or ``protocol://path``."""
        ...

    def exists(self, rel: str) -> bool: ...

    def is_dir(self, rel: str = "") -> bool: ...

    def dirs(self, rel: str = "") -> list[str]:
        """The names of the folders in ``rel``, sorted; ``[]`` when ``rel`` is not a folder."""
        ...

    def glob(self, pattern: str) -> list[str]:
        """The relative paths of the files (not folders) matching ``pattern``, sorted."""
        ...

    def read_bytes(self, rel: str) -> bytes: ...

    def write_bytes(self, rel: str, data: bytes, exclusive: bool = False) -> None:
        """Write ``data`` to ``rel`` whole (see the module docstring), making its folders;
        ``exclusive=True``: ``FileExistsError`` if ``rel`` exists."""
        ...

    def make_dir(self, rel: str, exclusive: bool = False) -> None:
        """Make the folder ``rel`` and those above it; ``exclusive=True``: ``FileExistsError`` if ``rel``
        exists."""
        ...

    def open(self, rel: str) -> tuple[IO[bytes], int]:
        """``(binary file, size)`` of ``rel``."""
        ...

    def fetch(self, rel: str, dest: Path, size: int | None = None) -> Path:
        """Copy ``rel`` to the local file ``dest`` (through a temporary ``.part`` file renamed into place);
        a copy of another length than ``size`` (default: the size the store reports) raises ``OSError``
        naming the URL and is not kept."""
        ...

    def remove(self, rel: str) -> None:
        """Delete the file ``rel``; nothing if there is none."""
        ...


def _copy_verified(url: str, dest: Path, size: int | None, copy_to: Callable[[str], object]) -> Path:
    """``copy_to(tmp)`` into a temporary file next to ``dest``, checked against ``size``, renamed onto
    ``dest``; the temporary file never outlives the call."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    os.close(fd)
    try:
        copy_to(tmp)
        got = os.path.getsize(tmp)
        if size is not None and got != size:
            raise OSError(f"the download of {url} has {got} bytes, the store reports {size}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


class LocalStore:
    """Files in the local folder ``root``. ``make_dir(..., exclusive=True)`` is one ``os.mkdir``: atomic."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, rel: str = "") -> Path:
        """The local path of ``rel``."""
        return self.root / rel

    def url(self, rel: str = "") -> str:
        return str(self.path(rel))

    def exists(self, rel: str) -> bool:
        return self.path(rel).exists()

    def is_dir(self, rel: str = "") -> bool:
        return self.path(rel).is_dir()

    def dirs(self, rel: str = "") -> list[str]:
        path = self.path(rel)
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []

    def glob(self, pattern: str) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob(pattern) if p.is_file())

    def read_bytes(self, rel: str) -> bytes:
        return self.path(rel).read_bytes()

    def write_bytes(self, rel: str, data: bytes, exclusive: bool = False) -> None:
        """Write ``data`` to a uniquely named temporary file (``.<name>.<random>.tmp``), flush it to disk,
        then rename it onto ``rel`` (``exclusive=True``: hard-link it there, ``FileExistsError`` if the name
        is taken; where hard links are not supported, create the file with ``O_EXCL`` and copy into it)."""
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if not exclusive:
                os.replace(tmp, path)
                return
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"{path} exists already") from None
            except OSError:  # no hard links here (some network and FAT file systems)
                with open(path, "xb") as f, open(tmp, "rb") as src:
                    shutil.copyfileobj(src, f)
            os.unlink(tmp)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def make_dir(self, rel: str, exclusive: bool = False) -> None:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(exist_ok=not exclusive)

    def open(self, rel: str) -> tuple[IO[bytes], int]:
        f = open(self.path(rel), "rb")
        return f, os.fstat(f.fileno()).st_size

    def fetch(self, rel: str, dest: Path, size: int | None = None) -> Path:
        src = self.path(rel)
        want = src.stat().st_size if size is None else size
        return _copy_verified(str(src), Path(dest), want, lambda tmp: shutil.copyfile(src, tmp))

    def remove(self, rel: str) -> None:
        self.path(rel).unlink(missing_ok=True)

    def __str__(self) -> str:
        return self.url()


class FsspecStore:
    """Files at the fsspec URL ``url`` (opened by ``open_fs`` with ``storage_options``). Object stores have
    no folders: ``make_dir`` there does nothing (``exclusive=True`` only checks that nothing is under
    ``rel``), and a folder exists while files are under it. ``info`` and ``fetch`` raise ``TimeoutError``
    naming the URL and the waits (``waits``) when the store does not answer in time."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        try:
            import fsspec  # noqa: F401
        except ImportError as e:
            raise ImportError(f"reading {url} needs fsspec: pip install 'nitrain[cloud]'") from e
        self.fs, path = open_fs(url, storage_options)
        self.fs.invalidate_cache()  # fsspec reuses filesystem instances: list what is there now
        self.root = path.rstrip("/")
        self.protocol = url.split("://", 1)[0] if "://" in url else "file"

    def _path(self, rel: str = "") -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def url(self, rel: str = "") -> str:
        return f"{self.protocol}://{self._path(rel).lstrip('/')}"

    def relative(self, url: str) -> str:
        """The path inside this store of ``url`` (a URL under ``self.url()``); ``ValueError`` otherwise."""
        path, root = url.split("://", 1)[-1].strip("/"), self.root.strip("/")
        if path == root:
            return ""
        if not path.startswith(root + "/"):
            raise ValueError(f"{url} is not in the store {self.url()}")
        return path[len(root) + 1 :]

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self._path(rel))

    def is_dir(self, rel: str = "") -> bool:
        return self.fs.isdir(self._path(rel))

    def dirs(self, rel: str = "") -> list[str]:
        try:
            entries = self.fs.ls(self._path(rel), detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = {e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"}
        return sorted(names)

    def glob(self, pattern: str) -> list[str]:
        prefix = self.root + "/"
        found = self.fs.glob(prefix + pattern, detail=True)
        return sorted(p[len(prefix) :] for p, info in found.items() if info.get("type") == "file")

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open(self._path(rel), "rb") as f:
            return f.read()

    def write_bytes(self, rel: str, data: bytes, exclusive: bool = False) -> None:
        """Write ``data`` as one object (``pipe_file``); ``exclusive=True`` creates it only if there is none
        (checked first, then ``mode='create'``: see the module docstring), else ``FileExistsError``."""
        path = self._path(rel)
        if exclusive and self.fs.exists(path):
            raise FileExistsError(f"{self.url(rel)} exists already")
        with contextlib.suppress(Exception):  # object stores have no folders
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(path, data, mode="create" if exclusive else "overwrite")

    def make_dir(self, rel: str, exclusive: bool = False) -> None:
        path = self._path(rel)
        if exclusive and self.fs.exists(path):
            raise FileExistsError(f"{self.url(rel)} exists already")
        with contextlib.suppress(Exception):  # object stores have no folders
            self.fs.makedirs(path, exist_ok=True)

    def open(self, rel: str) -> tuple[IO[bytes], int]:
        """``(binary file, size)`` of ``rel``, read in ranges of 64 KiB (for checks that need a few bytes)."""
        path = self._path(rel)
        return self.fs.open(path, "rb", block_size=1 << 16), self.fs.size(path)

    def info(self, rel: str) -> dict:
        """fsspec's ``info`` of ``rel`` (``size``, and ``ETag``, ``mtime`` or ``LastModified``)."""
        with self._in_time(rel):
            return self.fs.info(self._path(rel))

    def fetch(self, rel: str, dest: Path, size: int | None = None) -> Path:
        with self._in_time(rel):
            want = self.fs.info(self._path(rel)).get("size") if size is None else size
            return _copy_verified(
                self.url(rel), Path(dest), want, lambda tmp: self.fs.get_file(self._path(rel), tmp)
            )

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(rel))

    def waits(self) -> str:
        """How long a request to this store may wait, as the filesystem is configured."""
        conf = getattr(self.fs, "config_kwargs", None)
        if not isinstance(conf, dict):
            return "storage_options set how long the store is waited for"
        connect, read, retries = conf.get("connect_timeout"), conf.get("read_timeout"), conf.get("retries")
        return (
            f"waits per request: connect_timeout {connect} s, read_timeout {read} s, botocore retries "
            f"{retries or {}}, s3fs retries {getattr(self.fs, 'retries', None)}; set them with "
            "storage_options={'config_kwargs': {...}, 'retries': n}"
        )

    @contextlib.contextmanager
    def _in_time(self, rel: str) -> Iterator[None]:
        """Turn a timeout (``TimeoutError`` or an exception whose type name says timeout) into a
        ``TimeoutError`` naming ``rel``'s URL and ``waits()``."""
        try:
            yield
        except Exception as e:
            if isinstance(e, TimeoutError) or "timeout" in type(e).__name__.lower():
                raise TimeoutError(
                    f"{self.url(rel)}: the store did not answer in time ({type(e).__name__}: {e}); "
                    f"{self.waits()}"
                ) from e
            raise

    def __str__(self) -> str:
        return self.url()
