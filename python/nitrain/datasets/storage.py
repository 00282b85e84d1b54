"""Where a dataset's files live: a local folder, or any fsspec URL (``s3://``, ``gs://``, ``memory://``).

Remote files are listed through fsspec and copied on first use into a local cache folder (keyed on the URL
and the remote size and modification stamp), so images are read by ANTs from local disk.

Reads from ``s3://`` have bounded waits by default (``S3_DEFAULTS``, merged under the caller's
``storage_options`` by ``remote_options``): a store that stops answering gives an error within about 20 s
per request instead of s3fs's and botocore's nested retries of 15 s reads (7 minutes).
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from pathlib import Path

#: Timeouts and retries for ``s3://`` URLs (s3fs), used where ``storage_options`` does not set them.
#: ``config_kwargs`` go to botocore: 5 s to connect, 10 s at most without data while reading, and one retry
#: (``max_attempts`` counts retries, so two attempts in all) with botocore's standard backoff (under 1 s
#: for the first retry), which also covers throttling and 5xx answers. ``retries`` is s3fs's own loop
#: around each botocore call (and around resuming a broken download), 5 passes in s3fs; nested around
#: botocore's retries it multiplied every wait, so nitrain makes it one pass. A store that accepts the
#: connection and then says nothing thus fails a request after about 2 x 10 s.
S3_DEFAULTS = {
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


def remote_options(url: str, storage_options=None) -> dict:
    """``storage_options`` for ``url`` with nitrain's timeouts and retries filled in (``S3_DEFAULTS`` for
    ``s3://`` and ``s3a://``; other protocols are left as given). The caller's options win, key by key:
    ``{"config_kwargs": {"read_timeout": 60}}`` keeps the other defaults. ``"retries"`` is s3fs's retry
    count, which ``S3FileSystem`` takes as an attribute, not a constructor argument: ``open_fs`` pops it
    and sets ``fs.retries``. With ``AWS_MAX_ATTEMPTS`` or ``AWS_RETRY_MODE`` in the environment, botocore's
    retries are left to them."""
    given = dict(storage_options or {})
    protocol = url.split("://", 1)[0].lower() if "://" in url else ""
    if protocol not in ("s3", "s3a"):
        return given
    defaults = copy.deepcopy(S3_DEFAULTS)
    if "AWS_MAX_ATTEMPTS" in os.environ or "AWS_RETRY_MODE" in os.environ:
        del defaults["config_kwargs"]["retries"]
    return _merged(defaults, given)


def open_fs(url: str, storage_options=None):
    """``(filesystem, path)`` for ``url``, as ``fsspec.core.url_to_fs`` with ``remote_options`` applied."""
    import fsspec

    options = remote_options(url, storage_options)
    retries = options.pop("retries", None) if url.split("://", 1)[0].lower() in ("s3", "s3a") else None
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 1):
        raise ValueError(
            f"storage_options for {url}: 'retries' (s3fs's attempts per call) must be an integer >= 1, "
            f"got {retries!r}"
        )
    fs, path = fsspec.core.url_to_fs(url, **options)
    if retries is not None:
        fs.retries = retries
    return fs, path


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
            import fsspec  # noqa: F401
        except ImportError as e:
            raise ImportError(f"reading {url} needs fsspec: pip install 'nitrain[cloud]'") from e
        self.url = url.rstrip("/")
        self.fs, self.root = open_fs(self.url, storage_options)
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

    def fetch(self, url: str) -> Path:
        """A local copy of ``url``, downloaded once per remote version. A download shorter or longer than
        the size the store reports is an error and is not kept. A store that does not answer within the
        filesystem's timeouts and retries (``remote_options``) raises ``TimeoutError`` naming ``url``."""
        try:
            return self._fetch(url)
        except Exception as e:
            if isinstance(e, TimeoutError) or "timeout" in type(e).__name__.lower():
                raise TimeoutError(
                    f"{url}: the store did not answer in time ({type(e).__name__}: {e}); {self.waits()}"
                ) from e
            raise

    def _fetch(self, url: str) -> Path:
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
