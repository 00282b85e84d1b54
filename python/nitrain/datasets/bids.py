"""BIDSDataset: images found by BIDS entities (through pybids), targets from participants.tsv."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nitrain._paths import NIFTI_SUFFIXES
from nitrain._typing import PathLike, Transforms
from nitrain.datasets._tables import TABLE_KEYS, check_keys, table_values
from nitrain.datasets.base import BaseDataset
from nitrain.datasets.folder import _Join

#: What a BIDS query may hold besides entities: options of ``BIDSLayout.get``.
PYBIDS_OPTIONS = ("scope", "regex_search", "absolute_paths", "invalid_filters")


class BIDSDataset(BaseDataset):
    """Records from a BIDS folder.

    ``x``: pybids entities, e.g. ``{'suffix': 'T1w', 'datatype': 'anat'}`` (extension defaults to NIfTI; a
    list of queries for several inputs). ``y``: a ``participants.tsv`` column ``{'column': 'age'}`` or an
    image query like x (e.g. ``{'suffix': 'dseg'}``); a column of text is class names and ``'columns':
    [...]`` gives a vector per record, as for ``FolderDataset`` (``'file'`` and ``'id'`` name another
    table and id column). A key that is neither a BIDS entity of the layout nor an option of
    ``BIDSLayout.get`` is an error. Records are joined by subject; a query that finds several files for one
    subject is an error (add entities such as ``session`` or ``run``).
    ``on_error``: ``'raise'`` or ``'skip'`` records with unreadable images (see ``BaseDataset``).
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
        cache: Any = None,
        validate: bool = False,
        on_error: str = "raise",
    ) -> None:
        super().__init__(x_transforms, y_transforms, co_transforms, cache, on_error=on_error)
        owner = "BIDSDataset"
        try:
            from bids import BIDSLayout
        except ImportError as e:
            raise ImportError("BIDSDataset needs pybids: pip install 'nitrain[bids]'") from e
        self.base_dir = Path(base_dir)
        if not self.base_dir.is_dir():
            raise FileNotFoundError(f"{owner}: base_dir {str(self.base_dir)!r} is not a folder")
        try:
            self.layout = BIDSLayout(str(self.base_dir), validate=validate)
        except Exception as e:
            raise ValueError(f"{owner}: {self.base_dir} is not a readable BIDS dataset: {e}") from e
        multi = isinstance(x, list | tuple)
        queries = list(x) if multi else [x]
        sources: dict[str, Mapping[str, object]] = {}
        for k, q in enumerate(queries):
            sources[f"x[{k}]" if multi else "x"] = self._query(q, f"x[{k}]" if multi else "x")
        if isinstance(y, dict) and {"column", "columns"} & set(y):
            check_keys(y, TABLE_KEYS, owner, "y")
            path = self.base_dir / y.get("file", "participants.tsv")
            sources["y"], self.classes = table_values(path, y, owner)
        elif isinstance(y, dict):
            sources["y"] = self._query(y, "y")
        else:
            raise ValueError(f"{owner}: y must be {{'column': ...}} or a dict of BIDS entities, got {y!r}")
        ids = _Join(owner, on_missing)(sources)
        self._ids = ids
        xs = [k for k in sources if k != "y"]
        self._x = [[sources[k][i] for k in xs] if multi else sources["x"][i] for i in ids]
        self._y = [sources["y"][i] for i in ids]
        self._drop_unreadable()

    def _query(self, query: dict[str, Any], name: str) -> dict[str, str]:
        owner = "BIDSDataset"
        if not isinstance(query, dict) or not query:
            raise ValueError(f"{owner}: {name} must be a dict of BIDS entities, got {query!r}")
        if query.get("invalid_filters", "error") == "error":  # pybids may be told to take any key
            check_keys(query, [*sorted(self.layout.get_entities()), *PYBIDS_OPTIONS], owner, name)
        q = dict(query)
        q.setdefault("extension", list(NIFTI_SUFFIXES))
        try:
            files = self.layout.get(return_type="object", **q)
        except Exception as e:
            raise ValueError(f"{owner}: {name} query {query!r} is not valid for pybids: {e}") from e
        if not files:
            raise FileNotFoundError(f"{owner}: {name} query {query!r} matched no files in {self.base_dir}")
        found: dict[str, list[str]] = {}
        for f in files:
            sub = f.entities.get("subject")
            if sub is None:
                raise ValueError(f"{owner}: {f.path} has no subject entity")
            found.setdefault(f"sub-{sub}", []).append(f.path)
        dups = {k: v for k, v in found.items() if len(v) > 1}
        if dups:
            k, v = next(iter(dups.items()))
            raise ValueError(
                f"{owner}: {name} query {query!r} found several files for {len(dups)} subjects, e.g. {k}: "
                f"{sorted(v)}; add entities such as 'session' or 'run'"
            )
        return {k: v[0] for k, v in found.items()}
