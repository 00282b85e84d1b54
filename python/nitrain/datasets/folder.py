"""Datasets over files: a folder (glob patterns + a participants table), a CSV of paths, or memory."""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nitrain._paths import is_image_path
from nitrain._typing import PathLike, Transforms
from nitrain.datasets._tables import (
    TABLE_KEYS,
    check_keys,
    class_names,
    column,
    column_targets,
    read_table,
    table_values,
    text_targets,
)
from nitrain.datasets.base import BaseDataset


class _Join:
    """Matches records from several sources by id and reports what does not match."""

    def __init__(self, owner: str, on_missing: str):
        if on_missing not in ("error", "drop"):
            raise ValueError(f"{owner}: on_missing must be 'error' or 'drop', got {on_missing!r}")
        self.owner, self.on_missing = owner, on_missing

    def __call__(self, sources: Mapping[str, Mapping[str, object]]) -> list[str]:
        names = list(sources)
        all_ids = sorted(set().union(*(set(s) for s in sources.values())))
        common = [i for i in all_ids if all(i in sources[n] for n in names)]
        lonely = {n: sorted(set(all_ids) - set(sources[n])) for n in names}
        problems = [
            f"missing from {n}: {ids[:10]}{' ...' if len(ids) > 10 else ''}"
            for n, ids in lonely.items()
            if ids
        ]
        if problems:
            dropped = len(all_ids) - len(common)
            msg = f"{self.owner}: {dropped} ids are not present in every source ({'; '.join(problems)})"
            if self.on_missing == "error":
                raise ValueError(msg + "; pass on_missing='drop' to leave them out")
            warnings.warn(msg + f"; dropped them, {len(common)} records remain", stacklevel=3)
        if not common:
            raise ValueError(f"{self.owner}: no ids are common to {names}")
        return common


def _placeholder_id(pattern: str) -> Callable[[str], str | None]:
    """For a pattern with ``{id}`` (e.g. ``sub-{id}/anat/sub-{id}_T1w.nii.gz``): a function giving a path's
    id, or ``None`` when the path does not fit (every ``{id}`` must be the same text). After ``sub-`` the id
    keeps that prefix, so it matches the ``participant_id`` column of a BIDS participants table."""
    parts = pattern.split("{id}")
    regex = ""
    for k, part in enumerate(parts):
        piece = re.escape(part).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex += piece.replace(r"\?", "[^/]")
        if k < len(parts) - 1:
            regex += "(?P<id>[^/]+?)" if k == 0 else "(?P=id)"
    compiled = re.compile(regex + "$")
    prefix = "sub-" if parts[0].endswith("sub-") else ""

    def id_of(rel: str) -> str | None:
        m = compiled.match(rel)
        return None if m is None else prefix + m.group("id")

    return id_of


class FolderDataset(BaseDataset):
    """Images found by glob patterns under ``base_dir``, joined by participant id with a table or with
    other images.

    ``x``: ``{'pattern': ..., 'exclude': ...}`` (a list of those for several inputs); a pattern may hold an
    ``{id}`` placeholder (``'sub-{id}/anat/sub-{id}_T1w.nii.gz'``) that says where the id is. ``y``: a
    table column ``{'file': 'participants.tsv', 'column': 'age', 'id': 'participant_id'}`` or an image
    config like x. A column of text is class names: each record's y is its class index, the classes (sorted,
    or in the order of ``'classes': [...]`` in the spec) are in ``classes`` and ``decode`` turns indices or
    scores back into names; ``'columns': ['age', 'score']`` gives a vector of floats per record. A key a
    spec does not take is an error. Without ``{id}``, ids come from each path's ``sub-XXX`` part
    (``id_pattern``). Records are joined by id, never by position; ids present on one side only are an
    error (``on_missing='drop'``: a warning, and left out). ``cache``/``cache_limit`` and ``on_error``
    (``'raise'`` or ``'skip'`` records with unreadable images): see ``BaseDataset``.
    """

    def __init__(
        self,
        base_dir: PathLike,
        x: Any,
        y: Any,
        x_transforms: Transforms = None,
        y_transforms: Transforms = None,
        co_transforms: Transforms = None,
        on_missing: str = "error",
        id_pattern: str = r"sub-[A-Za-z0-9]+",
        cache: Any = None,
        storage_options: dict[str, Any] | None = None,
        download_dir: PathLike | None = None,
        cache_limit: int | str | None = None,
        on_error: str = "raise",
    ) -> None:
        super().__init__(x_transforms, y_transforms, co_transforms, cache, cache_limit, on_error)
        from nitrain.datasets.storage import RemoteStore, open_store

        owner = "FolderDataset"
        self._store = open_store(base_dir, storage_options, download_dir)
        self._store.check(owner)
        self.base_dir = str(self._store)
        if isinstance(self._store, RemoteStore):
            self._fetch = self._store.fetch
            self._open = self._store.open
        self._id_re = re.compile(id_pattern)
        self._multi_x = isinstance(x, list | tuple)
        x_configs = list(x) if self._multi_x else [x]
        sources: dict[str, Mapping[str, object]] = {}
        for k, cfg in enumerate(x_configs):
            sources[f"x[{k}]" if self._multi_x else "x"] = self._images(
                cfg, f"x[{k}]" if self._multi_x else "x"
            )
        if isinstance(y, dict) and "pattern" in y:
            sources["y"] = self._images(y, "y")
        elif isinstance(y, dict) and {"file", "column", "columns"} & set(y):
            check_keys(y, TABLE_KEYS, owner, "y")
            if "file" not in y:
                raise ValueError(f"{owner}: y {y!r} names no 'file' (the table to read: 'participants.tsv')")
            sources["y"] = self._table(y)
        else:
            raise ValueError(
                f"{owner}: y must be {{'file': ..., 'column': ...}} (or 'columns': [...]) or "
                f"{{'pattern': ...}}, got {y!r}"
            )
        self.x_config, self.y_config = x, y
        ids = _Join(owner, on_missing)(sources)
        self._ids = ids
        xs = [k for k in sources if k != "y"]
        self._x = [[sources[k][i] for k in xs] if self._multi_x else sources["x"][i] for i in ids]
        self._y = [sources["y"][i] for i in ids]
        self._drop_unreadable()

    def _images(self, cfg: dict[str, Any], name: str) -> dict[str, str]:
        owner = "FolderDataset"
        if isinstance(cfg, dict):
            check_keys(cfg, ("pattern", "exclude"), owner, name)
        if not isinstance(cfg, dict) or "pattern" not in cfg:
            raise ValueError(f"{owner}: {name} must be a dict with a 'pattern' key, got {cfg!r}")
        pattern, exclude = cfg["pattern"], cfg.get("exclude")
        excludes = [exclude] if isinstance(exclude, str) else list(exclude or [])
        id_of = _placeholder_id(pattern) if "{id}" in pattern else None
        glob = pattern.replace("{id}", "*")
        paths = [rel for rel in self._store.glob(glob) if not any(fnmatch.fnmatch(rel, e) for e in excludes)]
        if id_of is not None:  # every {id} in the pattern must capture the same text
            paths = [rel for rel in paths if id_of(rel) is not None]
        if not paths:
            raise FileNotFoundError(
                f"{owner}: {name} pattern {pattern!r} matched no files under {self.base_dir!r}"
                + (f" (after excluding {excludes})" if excludes else "")
            )
        found: dict[str, list[str]] = {}
        for rel in paths:
            rid: str | None
            if id_of is not None:
                rid = id_of(rel)
                if rid is None:  # filtered out above
                    continue
            else:
                m = self._id_re.search(rel)
                if m is None:
                    raise ValueError(f"{owner}: no participant id ({self._id_re.pattern}) in the path {rel}")
                rid = m.group(0)
            found.setdefault(rid, []).append(self._store.full(rel))
        dups = {k: v for k, v in found.items() if len(v) > 1}
        if dups:
            first = next(iter(dups.items()))
            raise ValueError(
                f"{owner}: {name} pattern {pattern!r} matched several files for {len(dups)} ids, e.g. "
                f"{first[0]}: {first[1]}; narrow the pattern or add an 'exclude'"
            )
        return {k: v[0] for k, v in found.items()}

    def _table(self, cfg: dict[str, Any]) -> dict[str, object]:
        try:
            path = self._store.local(cfg["file"])
        except FileNotFoundError:
            path = Path(self._store.full(cfg["file"]))
        values, self.classes = table_values(path, cfg, "FolderDataset")
        return values


class CSVDataset(BaseDataset):
    """Records from a CSV/TSV file: ``x={'column': 'path'}`` (a list for several inputs), ``y={'column':
    'age'}`` (a value or a path column; text that is not paths is class names, ``'classes': [...]`` fixes
    their order, see ``FolderDataset``), or ``y={'columns': ['age', 'score']}`` (a vector of floats). Paths
    are relative to the table's folder. Record ids are the table's row numbers (0 for the first row after
    the header). ``cache``/``cache_limit`` and ``on_error`` (``'raise'`` or ``'skip'`` records with
    unreadable images): see ``BaseDataset``."""

    def __init__(
        self,
        path: PathLike,
        x: Any,
        y: Any,
        x_transforms: Transforms = None,
        y_transforms: Transforms = None,
        co_transforms: Transforms = None,
        cache: Any = None,
        cache_limit: int | str | None = None,
        on_error: str = "raise",
    ) -> None:
        super().__init__(x_transforms, y_transforms, co_transforms, cache, cache_limit, on_error)
        owner = "CSVDataset"
        self.path = Path(path)
        table = read_table(self.path, owner)
        folder = self.path.parent
        multi = isinstance(x, list | tuple)

        def paths(cfg: Any, name: str) -> list[str]:
            if isinstance(cfg, dict):
                check_keys(cfg, ("column",), owner, name)
            if not isinstance(cfg, dict) or "column" not in cfg:
                raise ValueError(f"{owner}: {name} must be a dict with a 'column' key, got {cfg!r}")
            col = column(table, cfg["column"], self.path, owner)
            if col.isna().any():
                rows = [int(k) for k in np.flatnonzero(col.isna().to_numpy())]
                raise ValueError(f"{owner}: empty {cfg['column']!r} in rows {rows[:10]} of {self.path}")
            return [os.fspath(folder / v) for v in col]

        xs = [paths(c, f"x[{k}]") for k, c in enumerate(x)] if multi else [paths(x, "x")]
        self._x = [list(r) for r in zip(*xs, strict=True)] if multi else xs[0]
        if isinstance(y, dict):
            check_keys(y, ("column", "columns", "classes"), owner, "y")
        if not isinstance(y, dict) or not {"column", "columns"} & set(y):
            raise ValueError(f"{owner}: y must be a dict with a 'column' (or 'columns') key, got {y!r}")

        def bad(kind: str, name: str, rows: np.ndarray) -> Exception:
            word = "empty" if kind == "missing" else "infinite"
            shown = [int(k) for k in rows[:10]]
            return ValueError(f"{owner}: {word} {name!r} in rows {shown} of {self.path}")

        rows = [f"row {k}" for k in range(len(table))]
        values, self.classes = column_targets(table, y, rows, self.path, owner, bad)
        self._y = [os.fspath(folder / v) if isinstance(v, str) and is_image_path(v) else v for v in values]
        self._ids = [str(i) for i in range(len(self._x))]
        self._drop_unreadable()


class MemoryDataset(BaseDataset):
    """Records from lists in memory: ANTs images or numpy arrays (arrays become images) and labels.

    Text labels are class names: each record's y is its class index, with the classes sorted or in the
    order of ``classes`` (see ``FolderDataset``)."""

    def __init__(
        self,
        x: Sequence[Any],
        y: Sequence[Any],
        x_transforms: Transforms = None,
        y_transforms: Transforms = None,
        co_transforms: Transforms = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        super().__init__(x_transforms, y_transforms, co_transforms)
        import ants

        if len(x) != len(y):
            raise ValueError(f"MemoryDataset: x has {len(x)} items but y has {len(y)}; they must pair up")
        text = [isinstance(v, str) for v in y]
        if classes is not None or any(text):
            if not all(text):
                j = text.index(False)
                raise ValueError(
                    f"MemoryDataset: text labels (class names) must all be text, but y[{j}] is {y[j]!r}"
                )
            given = class_names(classes, "MemoryDataset") if classes is not None else None
            names = [f"record {k}" for k in range(len(y))]
            y, self.classes = text_targets(list(y), names, given, "y", "MemoryDataset")

        def image(v: Any) -> Any:
            if isinstance(v, np.ndarray):
                return ants.from_numpy(np.asfortranarray(v).astype(np.float32, copy=False))
            if isinstance(v, list):
                return [image(u) for u in v]
            return v

        self._x = [image(v) for v in x]
        self._y = [image(v) if isinstance(v, np.ndarray) and v.ndim >= 2 else v for v in y]
        self._ids = [str(i) for i in range(len(self._x))]
