"""Where a dataset's files live: a local folder, or any fsspec URL (``s3://``, ``gs://``, ``memory://``),
through the stores of ``nitrain._store``.

Remote files are listed through fsspec and copied on first use into a local folder (``download_dir``,
default ``$NITRAIN_HOME/remote``), keyed on the URL and the remote size and modification stamp, so images
are read by ANTs from local disk.

Reads from ``s3://`` have bounded waits by default (``S3_DEFAULTS``, merged under the caller's
``storage_options`` by ``remote_options``; both live in ``nitrain._store`` and are re-exported here).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import IO, Any

from nitrain._paths import downloads_dir
from nitrain._store import S3_DEFAULTS, FsspecStore, is_url, open_fs, remote_options
from nitrain._store import LocalStore as _LocalFiles
from nitrain._typing import PathLike

__all__ = ["S3_DEFAULTS", "LocalStore", "RemoteStore", "is_url", "open_fs", "open_store", "remote_options"]


class LocalStore:
    """A dataset's files in the local folder ``base_dir``, read where they are."""

    def __init__(self, base_dir: PathLike) -> None:
        self.store = _LocalFiles(base_dir)
        self.root = self.store.root

    def check(self, owner: str) -> None:
        if not self.store.is_dir():
            raise FileNotFoundError(f"{owner}: base_dir {str(self.root)!r} is not a folder")

    def glob(self, pattern: str) -> list[str]:
        return self.store.glob(pattern)

    def full(self, rel: str) -> str:
        return self.store.url(rel)

    def local(self, rel: str) -> Path:
        return self.store.path(rel)

    def __str__(self) -> str:
        return self.store.url()


class RemoteStore:
    """A dataset's files at the fsspec URL ``url``; ``fetch`` copies one into ``cache_dir`` (default
    ``$NITRAIN_HOME/remote``) once per remote version."""

    def __init__(
        self, url: str, storage_options: dict[str, Any] | None = None, cache_dir: PathLike | None = None
    ) -> None:
        self.store = FsspecStore(url, storage_options)
        self.url = self.store.url()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else downloads_dir()

    def check(self, owner: str) -> None:
        try:
            ok = self.store.is_dir()
        except Exception as e:
            raise OSError(f"{owner}: cannot reach {self.url}: {type(e).__name__}: {e}") from e
        if not ok:
            raise FileNotFoundError(f"{owner}: base_dir {self.url!r} is not a folder")

    def glob(self, pattern: str) -> list[str]:
        return self.store.glob(pattern)

    def full(self, rel: str) -> str:
        return self.store.url(rel)

    def local(self, rel: str) -> Path:
        return self.fetch(self.full(rel))

    def open(self, url: str) -> tuple[IO[bytes], int]:
        """``(binary file, size)`` of ``url``, read in ranges (for checks that need a few bytes of it)."""
        return self.store.open(self.store.relative(url))

    def waits(self) -> str:
        """How long a request to this store may wait, as the filesystem is configured."""
        return self.store.waits()

    def fetch(self, url: str) -> Path:
        """A local copy of ``url``, downloaded once per remote version. A download shorter or longer than
        the size the store reports is an error and is not kept. A store that does not answer within the
        filesystem's timeouts and retries (``remote_options``) raises ``TimeoutError`` naming ``url``."""
        rel = self.store.relative(url)
        info = self.store.info(rel)
        stamp = (
            f"{url}|{info.get('size')}|{info.get('ETag') or info.get('mtime') or info.get('LastModified')}"
        )
        key = hashlib.sha256(stamp.encode()).hexdigest()[:24]
        dest = self.cache_dir / key / os.path.basename(rel)
        if not dest.exists():
            self.store.fetch(rel, dest, info.get("size"))
        return dest

    def __str__(self) -> str:
        return self.url


def open_store(
    base_dir: PathLike, storage_options: dict[str, Any] | None = None, cache_dir: PathLike | None = None
) -> LocalStore | RemoteStore:
    """``RemoteStore`` for an fsspec URL (``is_url``), else ``LocalStore``."""
    url = os.fspath(base_dir)
    if is_url(url):
        return RemoteStore(url, storage_options, cache_dir)
    return LocalStore(base_dir)
