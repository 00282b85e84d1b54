"""What every dataset shares: records joined by id, lazy loading, transforms, indexing and splits."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nitrain._images import is_image
from nitrain._paths import is_image_path
from nitrain._typing import Image, PathLike, Transform, Transforms

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is Python 3.11+


def read_image(path: PathLike, where: str) -> Image:
    """Read an image file as an ANTs image (``.npy`` arrays become images with unit spacing), verified
    complete: a ``.nii``/``.npy`` shorter than its header says, or a ``.nii.gz`` whose gzip stream is cut
    short or fails its CRC32/ISIZE check, raises ``OSError`` instead of giving zeros for the lost voxels.

    ``.nii``/``.nii.gz`` files go to the Rust reader (``nitrain._nifti``: the image ``ants.image_read``
    gives, verified as it is read, without the GIL); files it leaves to ITK, and other formats, are read by
    ANTs and checked by ``nitrain.datasets._verify``.

    ``where`` names the record, so a corrupt or missing file says which record it belongs to.
    """
    import ants

    from nitrain._nifti import read_nifti
    from nitrain.datasets._verify import DamagedFileError, check_before_read, check_read, explain

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{where}: image file not found: {path}")
    try:
        img = read_nifti(path)  # verified as it is read; None: left to ANTs
        if img is None:
            check_before_read(path)
            if path.lower().endswith(".npy"):
                img = ants.from_numpy(np.asfortranarray(np.load(path)).astype(np.float32))
            else:
                img = ants.image_read(path)
                check_read(path, img)
    except DamagedFileError as e:
        reason = getattr(e, "reason", None)
        if reason is not None:  # from the Rust reader: the streaming check says more precisely why
            reason = explain(path) or reason
        raise DamagedFileError(f"{where}: could not read image {path}: {reason or e}") from e
    except Exception as e:
        reason = explain(path)
        if reason is not None:
            raise DamagedFileError(f"{where}: could not read image {path}: {reason}") from e
        raise OSError(f"{where}: could not read image {path}: {e}") from e
    return img


def _apply(transforms: Sequence[Transform], image: Any) -> Any:
    for t in transforms:
        image = t(image)
    return image


class BaseDataset:
    """Records of (x, y) where x is one image (or a list, for several inputs) and y a value or image.

    Subclasses fill ``self._x`` (per record: a path, an image, or a list of those), ``self._y`` (per record:
    a value, a path or an image) and ``self._ids``.

    ``cache``: ``None``, ``'memory'``, ``'disk'`` or a ``MemoryCache``/``DiskCache`` (see
    ``nitrain.datasets.cache``) for the x and y images read from files, after ``x_transforms`` and
    ``y_transforms``. ``cache_limit``: what a ``'memory'`` or ``'disk'`` cache may hold, in bytes or as a
    size string (``'20GB'``, ``'500MiB'``); default 2 GiB in memory, and ``$NITRAIN_DISK_CACHE_LIMIT`` or
    else 10 GiB on disk.

    Every image file is verified complete when read (``read_image``). ``on_error``: ``'raise'`` (default):
    a missing, truncated or unreadable file raises ``OSError`` naming the file and the record when that
    record is read. ``'skip'``: every record's files are checked when the dataset is built (header and size;
    for ``.nii.gz`` also the gzip trailer), records that fail are left out with one warning listing them,
    and ``skipped`` holds ``(id, path, reason)`` for each; ``len(dataset)`` counts the records kept. A file
    that passes this check but fails when read (a ``.nii.gz`` whose CRC32 does not match, or a file damaged
    since) still raises, with a message saying it was found bad late: skipping it then would change the
    number of records in the middle of an epoch.
    """

    def __init__(
        self,
        x_transforms: Transforms = None,
        y_transforms: Transforms = None,
        co_transforms: Transforms = None,
        cache: Any = None,
        cache_limit: int | str | None = None,
        on_error: str = "raise",
    ) -> None:
        from nitrain.datasets.cache import make_cache

        if on_error not in ("raise", "skip"):
            raise ValueError(f"{type(self).__name__}: on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.skipped: list[tuple[str, str, str]] = []
        self.x_transforms = list(x_transforms or [])
        self.y_transforms = list(y_transforms or [])
        self.co_transforms = list(co_transforms or [])
        for name, ts in (
            ("x_transforms", self.x_transforms),
            ("y_transforms", self.y_transforms),
            ("co_transforms", self.co_transforms),
        ):
            for i, t in enumerate(ts):
                if not callable(t):
                    raise TypeError(f"{type(self).__name__}: {name}[{i}] is not callable: {t!r}")
        self._ids: list[str] = []
        self._x: list = []
        self._y: list = []
        #: the class names in index order when the targets are class names (encoded as class indices)
        self.classes: tuple[str, ...] | None = None
        # remote datasets set these: URL -> local copy; URL -> (binary file, size), for on_error='skip'
        self._fetch: Callable[[str], Any] | None = None
        self._open: Callable[[str], Any] | None = None
        self.cache = make_cache(cache, type(self).__name__, cache_limit)
        if self.cache is not None:
            random = [t for t in self.x_transforms + self.y_transforms if getattr(t, "random", False)]
            if random:
                raise ValueError(
                    f"{type(self).__name__}: cached datasets take fixed transforms only; {random[0]!r} is "
                    "random (give random transforms to the loader instead)"
                )

    # -- records -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._x)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def _where(self, i: int) -> str:
        rid = self._ids[i] if i < len(self._ids) else str(i)
        return f"{type(self).__name__} record {i} ({rid})"

    def decode(self, values: Any, axis: int = -1) -> Any:
        """Class names of class indices or scores (logits or probabilities, one per class on ``axis``), for
        a dataset whose targets are class names: see ``nitrain.datasets.decode_classes``."""
        from nitrain.datasets._tables import decode_classes

        if self.classes is None:
            raise ValueError(
                f"{type(self).__name__}.decode: the targets are not class names (the dataset has no classes)"
            )
        return decode_classes(self.classes, values, axis)

    def record_shape(self, i: int) -> tuple[int, ...] | None:
        """The voxel shape of record ``i``'s x image (the first one, for several inputs) as stored, before
        ``x_transforms``, without reading its voxels: from the image or array in memory, or from the file's
        header (``.npy``: numpy's header; other formats: ``ants.image_header_info``). ``None`` when that
        cannot tell (a remote file, a multi-component image, a header that does not read: reading the
        record says why)."""
        value = self._x[int(i)]
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, np.ndarray):
            return tuple(int(d) for d in value.shape)
        if is_image(value):
            return None if getattr(value, "components", 1) != 1 else tuple(int(d) for d in value.shape)
        if not is_image_path(value) or "://" in str(value):
            return None
        path = os.fspath(value)
        try:
            if path.lower().endswith(".npy"):
                return tuple(int(d) for d in np.load(path, mmap_mode="r").shape)
            import ants

            info = ants.image_header_info(path)
            if int(info.get("nComponents", 1)) != 1:
                return None
            return tuple(int(d) for d in info["dimensions"])
        except Exception:
            return None

    def _drop_unreadable(self) -> None:
        """For ``on_error='skip'``: check every record's image files and leave out the records with a file
        that is missing, short or damaged, with one warning naming them (see the class docstring)."""
        from nitrain.datasets._verify import check_file

        if self.on_error != "skip":
            return
        owner = type(self).__name__

        def problem(value: Any) -> tuple[str, str] | None:
            for v in value if isinstance(value, list) else [value]:
                if not is_image_path(v):
                    continue
                v = os.fspath(v)
                try:
                    if self._open is not None and "://" in v:
                        f, size = self._open(v)
                    else:
                        f = open(v, "rb")
                        size = os.fstat(f.fileno()).st_size
                    with f:
                        check_file(f, size, v)
                    if "://" not in v and not v.lower().endswith((".nii", ".nii.gz", ".npy")):
                        import ants

                        ants.image_header_info(v)  # ITK reads the header of other formats
                except FileNotFoundError:
                    return v, "file not found"
                except Exception as e:
                    return v, str(e) or type(e).__name__
            return None

        keep, skipped = [], []
        for i in range(len(self._x)):
            rid = self._ids[i] if i < len(self._ids) else str(i)
            bad = problem(self._x[i]) or problem(self._y[i])
            if bad is None:
                keep.append(i)
            else:
                skipped.append((rid, *bad))
        if not skipped:
            return
        if not keep:
            raise ValueError(
                f"{owner}: on_error='skip' left no records: all {len(skipped)} have unreadable images, e.g. "
                f"{skipped[0][0]}: {skipped[0][1]}: {skipped[0][2]}"
            )
        shown = "; ".join(f"{rid}: {path}: {reason}" for rid, path, reason in skipped[:20])
        more = f"; and {len(skipped) - 20} more" if len(skipped) > 20 else ""
        warnings.warn(
            f"{owner}: on_error='skip': left out {len(skipped)} of {len(self._x)} records whose image files "
            f"cannot be read ({shown}{more}); {len(keep)} records remain (the list is in .skipped)",
            stacklevel=3,
        )
        self._x = [self._x[i] for i in keep]
        self._y = [self._y[i] for i in keep]
        if self._ids:
            self._ids = [self._ids[i] for i in keep]
        self.skipped = skipped

    def _record(self, i: int) -> tuple[Any, Any]:
        where = self._where(i)
        x = self._prepared(self._x[i], self.x_transforms, where, "x")
        y = self._prepared(self._y[i], self.y_transforms, where, "y")
        from nitrain.transforms._co import co_transform, warn_unpaired_spatial

        if not getattr(self, "_checked_pairing", False):
            self._checked_pairing = True
            warn_unpaired_spatial(type(self).__name__, self.x_transforms, y, self.y_transforms)
        for t in self.co_transforms:
            x, y = co_transform(t, x, y, owner=f"{type(self).__name__}: co_transforms ({where})")
        return x, y

    def _prepared(self, value: Any, transforms: Sequence[Transform], where: str, stream: str) -> Any:
        """Load ``value`` (a path, image, list of those, or a plain value) and apply ``transforms``,
        through the cache when the value is a file (``stream``, e.g. ``'x[1]'``, is part of its key)."""
        if isinstance(value, list):
            return [
                self._prepared(v, transforms, f"{where}[{j}]", f"{stream}[{j}]") for j, v in enumerate(value)
            ]
        if not is_image_path(value):
            return _apply(transforms, value) if transforms else value
        source = value
        if self._fetch is not None and "://" in str(value):
            try:
                value = os.fspath(self._fetch(value))
            except Exception as e:
                raise OSError(f"{where}: could not fetch {value}: {type(e).__name__}: {e}") from e
        key = None
        if self.cache is not None and os.path.exists(value):
            from nitrain.datasets.cache import source_key

            key = source_key(value, transforms, stream)
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        try:
            img = read_image(value, where if source is value else f"{where} (local copy of {source})")
        except OSError as e:
            if self.on_error != "skip":
                raise
            raise type(e)(
                f"{e}. With on_error='skip' this file passed the check when the dataset was built and was "
                "found bad only now; it is not skipped, since leaving a record out in the middle of an epoch "
                "would change the number of records: fix or remove the file and build the dataset again"
            ) from e
        img = _apply(transforms, img)
        if key is not None and self.cache is not None:  # a key is made only with a cache
            self.cache.put(key, img)
        return img

    def fill_cache(self, progress: bool | None = None) -> None:
        """Read every record's x and y images through the cache, so later passes only hit it.

        ``progress``: ``True`` shows a progress bar, ``False`` hides it, ``None`` shows it when stderr is a
        terminal or in a Jupyter notebook."""
        from nitrain._progress import progress_bar

        if self.cache is None:
            raise ValueError(f"{type(self).__name__}.fill_cache: the dataset has no cache (pass cache=...)")
        with progress_bar(len(self), f"{type(self).__name__}: filling the cache", progress, "record") as bar:
            for i in range(len(self)):
                where = self._where(i)
                self._prepared(self._x[i], self.x_transforms, where, "x")
                self._prepared(self._y[i], self.y_transforms, where, "y")
                bar.update()

    def __getitem__(self, index: int | slice) -> tuple[Any, Any]:
        if isinstance(index, slice):
            records = [self._record(i) for i in range(*index.indices(len(self)))]
            return [r[0] for r in records], [r[1] for r in records]
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"{type(self).__name__}: index must be an integer or a slice, got {index!r}")
        i = int(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"{type(self).__name__}: index {i} is out of range for {len(self)} records")
        return self._record(i % len(self))

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        for i in range(len(self)):
            yield self._record(i)

    # -- subsets -------------------------------------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray) -> Self:
        """A dataset over the given records (same transforms), in the given order."""
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < len(self)]
        if bad:
            raise IndexError(f"{type(self).__name__}.subset: indices {bad[:5]} out of range for {len(self)}")
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._x = [self._x[i] for i in idx]
        new._y = [self._y[i] for i in idx]
        new._ids = [self._ids[i] for i in idx] if self._ids else []
        return new

    select = subset

    def split(
        self, p: float | Sequence[float], random: bool = False, seed: int | None = None
    ) -> tuple[Self, ...]:
        """Split into 2 or more datasets with exact sizes: ``split(0.8)`` -> 80% / 20%;
        ``split((0.6, 0.2, 0.2))`` -> three. ``random=True`` shuffles first (seeded)."""
        arr = np.asarray(p, dtype=float)
        fractions = [float(arr), 1 - float(arr)] if arr.ndim == 0 else [float(v) for v in arr]
        if any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
            raise ValueError(f"{type(self).__name__}.split: fractions must be >= 0 and sum to 1, got {p!r}")
        n = len(self)
        order = np.random.default_rng(seed).permutation(n) if random else np.arange(n)
        # Largest-remainder rounding: sizes add up to n exactly.
        raw = np.array(fractions) * n
        sizes = np.floor(raw).astype(int)
        for k in np.argsort(-(raw - sizes), kind="stable")[: n - sizes.sum()]:
            sizes[k] += 1
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return tuple(self.subset(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True))

    def __repr__(self) -> str:
        first = self._x[0] if self._x else None
        shown = first if isinstance(first, str | list) else type(first).__name__
        lines = [f"{type(self).__name__} ({len(self)} records)", f"  first x: {shown!r:.120}"]
        if self._y:
            lines.append(f"  first y: {self._y[0]!r:.120}")
        if self.classes is not None:
            lines.append(f"  classes: {list(self.classes)!r:.200}")
        for name in ("x_transforms", "y_transforms", "co_transforms"):
            ts = getattr(self, name)
            if ts:
                lines.append(f"  {name}: {ts!r:.200}")
        return "\n".join(lines)
