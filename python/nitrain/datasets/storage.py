"""Where a dataset's files live: a local folder, or any fsspec URL (``s3://``, ``gs://``, ``memory://``).

Remote files are listed through fsspec and copied on first use into a local cache folder (keyed on the URL
and the remote size and modification stamp), so images are read by ANTs from local disk.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def is_url(path) -> bool:
    return isinstance(path, str) and "://" in path and not path.startswith("file://")


class LocalStore:
    def __init__(self, base_dir):
        self.root = Path(base_dir)

    def check(self, owner: str) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"{owner}: base_dir {str(self.root)!r} is not a folder")

    def glob(self, pattern: str) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob(pattern) if p.is_file())

    def full(self, rel: str) -> str:
        return os.fspath(self.root / rel)

    def local(self, rel: str) -> Path:
        return self.root / rel

    def __str__(self) -> str:
        return str(self.root)


class RemoteStore:
    def __init__(self, url: str, storage_options=None, cache_dir=None):
        try:
            import fsspec
        except ImportError as e:
            raise ImportError(f"reading {url} needs fsspec: pip install 'nitrain[cloud]'") from e
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        home = Path(os.environ.get("NITRAIN_HOME", Path.home() / ".nitrain"))
        self.cache_dir = Path(cache_dir) if cache_dir is not None else home / "remote"

    def check(self, owner: str) -> None:
        try:
            ok = self.fs.isdir(self.root)
        except Exception as e:
            raise OSError(f"{owner}: cannot reach {self.url}: {type(e).__name__}: {e}") from e
        if not ok:
            raise FileNotFoundError(f"{owner}: base_dir {self.url!r} is not a folder")

    def glob(self, pattern: str) -> list[str]:
        prefix = self.root + "/"
        found = self.fs.glob(prefix + pattern, detail=True)
        return sorted(p[len(prefix) :] for p, info in found.items() if info.get("type") == "file")

    def full(self, rel: str) -> str:
        protocol = self.url.split("://", 1)[0]
        return f"{protocol}://{self.root}/{rel}"

    def local(self, rel: str) -> Path:
        return self.fetch(self.full(rel))

    def open(self, url: str):
        """``(binary file, size)`` of ``url``, read in ranges (for checks that need a few bytes of it)."""
        path = url.split("://", 1)[1]
        return self.fs.open(path, "rb", block_size=1 << 16), self.fs.size(path)

    def fetch(self, url: str) -> Path:
        """A local copy of ``url``, downloaded once per remote version. A download shorter or longer than
        the size the store reports is an error and is not kept."""
        path = url.split("://", 1)[1]
        info = self.fs.info(path)
        stamp = (
            f"{url}|{info.get('size')}|{info.get('ETag') or info.get('mtime') or info.get('LastModified')}"
        )
        key = hashlib.sha256(stamp.encode()).hexdigest()[:24]
        dest = self.cache_dir / key / os.path.basename(path)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
            os.close(fd)
            try:
                self.fs.get_file(path, tmp)
                got, want = os.path.getsize(tmp), info.get("size")
                if want is not None and got != want:
                    raise OSError(f"the download of {url} has {got} bytes, the store reports {want}")
                os.replace(tmp, dest)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return dest

    def __str__(self) -> str:
        return self.url


def open_store(base_dir, storage_options=None, cache_dir=None):
    if is_url(os.fspath(base_dir) if not isinstance(base_dir, str) else base_dir):
        return RemoteStore(base_dir, storage_options, cache_dir)
    return LocalStore(base_dir)
