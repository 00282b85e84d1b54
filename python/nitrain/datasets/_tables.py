"""Targets from tables and the keys of dataset specs: a column of numbers, of class names (encoded as
class indices), or several numeric columns (a vector per record); class names back from predictions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nitrain._paths import is_image_path

#: The keys of a table target spec (FolderDataset and BIDSDataset; CSVDataset takes no 'file' or 'id').
TABLE_KEYS = ("file", "column", "columns", "id", "classes")

#: ``bad(kind, column, positions)``: the error for rows with a missing (``kind='missing'``) or infinite
#: (``'infinite'``) value, in the words of the dataset that reads the table.
Bad = Callable[[str, str, np.ndarray], Exception]


def check_keys(spec: Mapping[str, Any], accepted: Iterable[str], owner: str, name: str) -> None:
    """A ``ValueError`` naming the keys of ``spec`` that are not ``accepted``, and listing those that are."""
    accepted = list(accepted)
    unknown = [k for k in spec if k not in accepted]
    if unknown:
        keys = ", ".join(repr(k) for k in unknown)
        raise ValueError(
            f"{owner}: {name} {dict(spec)!r} has unknown key{'s' if len(unknown) > 1 else ''} {keys}; "
            f"accepted keys: {accepted}"
        )


def read_table(path: Path, owner: str) -> Any:
    """A CSV (or, for ``.tsv``, tab-separated) table as text; empty cells are missing values."""
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"{owner}: table file not found: {path}")
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=True)


def column(table: Any, name: str, path: Path, owner: str) -> Any:
    if name not in table.columns:
        raise KeyError(f"{owner}: column {name!r} not in {path}; available: {list(table.columns)}")
    return table[name]


def _values(series: Any, names: Sequence[str], name: str, path: Path, owner: str) -> Any:
    """Floats when every present value is a number, the strings when none is (class names or paths); a
    column with both is an error naming the records (``names``, e.g. participant ids) and their text."""
    import pandas as pd

    numeric = pd.to_numeric(series, errors="coerce")
    present, is_number = series.notna().to_numpy(), numeric.notna().to_numpy()
    if not is_number.any():
        return series
    stray = np.flatnonzero(present & ~is_number)
    if len(stray):
        shown = ", ".join(f"{names[k]}: {series.iloc[k]!r}" for k in stray[:10])
        raise ValueError(
            f"{owner}: column {name!r} of {path} holds numbers and also text that is not a number "
            f"({shown}{' ...' if len(stray) > 10 else ''}); a column must be all numbers, or all text for "
            "class names"
        )
    return numeric.astype(float)


def _check_present(values: Any, name: str, bad: Bad) -> None:
    """Missing values, then infinite numbers, are errors (``bad`` words them)."""
    missing = np.flatnonzero(values.isna().to_numpy())
    if len(missing):
        raise bad("missing", name, missing)
    if values.dtype.kind == "f":
        infinite = np.flatnonzero(np.isinf(values.to_numpy()))
        if len(infinite):
            raise bad("infinite", name, infinite)


def class_names(classes: Any, owner: str) -> tuple[str, ...]:
    """``classes`` checked: a non-empty list of distinct, non-empty strings, as a tuple."""
    if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
        raise ValueError(f"{owner}: classes must be a non-empty list of class names, got {classes!r}")
    names = tuple(classes)
    wrong = [c for c in names if not isinstance(c, str) or not c]
    if wrong:
        raise ValueError(f"{owner}: classes must be non-empty strings, got {wrong[0]!r} in {list(names)}")
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise ValueError(f"{owner}: classes must be distinct; {dup} appear more than once in {list(names)}")
    return names


def encode_classes(
    values: Sequence[Any], names: Sequence[str], classes: tuple[str, ...] | None, what: str, owner: str
) -> tuple[list[int], tuple[str, ...]]:
    """Class indices of the text ``values`` (one per record, ``names`` naming them) and the classes: the
    given ``classes`` in their order, or else every distinct value sorted. A value outside the given
    classes is an error naming its records."""
    if classes is None:
        classes = tuple(sorted({str(v) for v in values}))
    index = {c: k for k, c in enumerate(classes)}
    outside = [k for k, v in enumerate(values) if v not in index]
    if outside:
        shown = ", ".join(f"{names[k]}: {values[k]!r}" for k in outside[:10])
        raise ValueError(
            f"{owner}: {what} holds values that are not among the classes {list(classes)} "
            f"({shown}{' ...' if len(outside) > 10 else ''}); add them to 'classes' or fix the table"
        )
    return [index[v] for v in values], classes


def text_targets(
    values: Sequence[str], names: Sequence[str], classes: tuple[str, ...] | None, what: str, owner: str
) -> tuple[list[Any], tuple[str, ...] | None]:
    """Text targets: image paths stay paths (image targets); anything else is class names, encoded as class
    indices (``encode_classes``). Paths mixed with other text are an error naming the records."""
    if classes is None:
        paths = [is_image_path(v) for v in values]
        if all(paths):
            return list(values), None
        if any(paths):
            k, j = paths.index(True), paths.index(False)
            raise ValueError(
                f"{owner}: {what} holds image paths ({names[k]}: {values[k]!r}) and also text that is not "
                f"one ({names[j]}: {values[j]!r}); targets must be all image paths, or all class names"
            )
    return encode_classes(values, names, classes, what, owner)


def target_columns(spec: Mapping[str, Any], owner: str) -> tuple[list[str], tuple[str, ...] | None]:
    """The columns a table target spec reads (``'column'`` or ``'columns'``) and its ``'classes'``."""
    if "column" in spec and "columns" in spec:
        raise ValueError(f"{owner}: y {dict(spec)!r} gives both 'column' and 'columns'; give one")
    if "columns" in spec:
        cols = spec["columns"]
        if (
            isinstance(cols, str)
            or not isinstance(cols, Sequence)
            or not cols
            or not all(isinstance(c, str) for c in cols)
        ):
            raise ValueError(f"{owner}: y 'columns' must be a non-empty list of column names, got {cols!r}")
        if len(set(cols)) != len(cols):
            raise ValueError(f"{owner}: y 'columns' names a column more than once: {list(cols)}")
        if "classes" in spec:
            raise ValueError(
                f"{owner}: y 'classes' goes with one 'column' of class names, not with 'columns' {list(cols)}"
            )
        return list(cols), None
    if "column" not in spec:
        raise ValueError(f"{owner}: y {dict(spec)!r} names no 'column' (or 'columns')")
    if not isinstance(spec["column"], str):
        raise ValueError(f"{owner}: y 'column' must be a column name, got {spec['column']!r}")
    classes = class_names(spec["classes"], owner) if "classes" in spec else None
    return [spec["column"]], classes


def column_targets(
    table: Any, spec: Mapping[str, Any], names: Sequence[str], path: Path, owner: str, bad: Bad
) -> tuple[list[Any], tuple[str, ...] | None]:
    """One target per row of ``table`` (``names`` names the rows) from a target spec, and the class names
    when the column holds them:

    - ``{'column': c}``: numbers as floats; text as class indices, classes sorted (or the image paths, when
      every value is one); numbers mixed with text are an error;
    - ``{'column': c, 'classes': [...]}``: the column's text as indices into ``classes``;
    - ``{'columns': [c1, c2, ...]}``: a tuple of floats per row (every column must hold numbers).

    Missing and infinite values are errors (``bad`` words them)."""
    cols, classes = target_columns(spec, owner)
    if "columns" in spec:
        arrays = []
        for c in cols:
            vals = _values(column(table, c, path, owner), names, c, path, owner)
            _check_present(vals, c, bad)
            if vals.dtype.kind != "f":
                raise ValueError(
                    f"{owner}: column {c!r} of {path} holds text ({names[0]}: {vals.iloc[0]!r}); the "
                    "columns of a vector target must hold numbers (class names go in one 'column')"
                )
            arrays.append(vals.to_numpy(dtype=float))
        return [tuple(float(v) for v in row) for row in zip(*arrays, strict=True)], None
    (c,) = cols
    what = f"column {c!r} of {path}"
    series = column(table, c, path, owner)
    if classes is not None:  # the text of every value, compared with the names given
        _check_present(series, c, bad)
        return encode_classes(series.tolist(), names, classes, what, owner)
    vals = _values(series, names, c, path, owner)
    _check_present(vals, c, bad)
    if vals.dtype.kind == "f":
        return vals.tolist(), None
    return text_targets(vals.tolist(), names, None, what, owner)


def table_values(
    path: Path, spec: Mapping[str, Any], owner: str
) -> tuple[dict[str, object], tuple[str, ...] | None]:
    """``{id: target}`` from a participants-style table (ids in ``spec['id']``, default
    ``'participant_id'``) and the class names, as ``column_targets`` reads them; duplicate ids are an
    error too."""
    table = read_table(path, owner)
    id_col = spec.get("id", "participant_id")
    ids = column(table, id_col, path, owner)
    dup = sorted(set(ids[ids.duplicated()]))
    if dup:
        raise ValueError(f"{owner}: duplicate ids in {path} column {id_col!r}: {dup[:10]}")

    def bad(kind: str, name: str, rows: np.ndarray) -> Exception:
        which = sorted(str(ids.iloc[k]) for k in rows)[:10]
        if kind == "missing":
            return ValueError(f"{owner}: {path} has no {name!r} value for ids {which}")
        return ValueError(f"{owner}: {path} has an infinite {name!r} value for ids {which}")

    values, classes = column_targets(table, spec, [str(i) for i in ids], path, owner, bad)
    return dict(zip(ids, values, strict=True)), classes


def decode_classes(classes: Sequence[str], values: Any, axis: int = -1) -> Any:
    """Class names of predictions: ``values`` are class indices (integers, whole floats or booleans, any
    shape) or scores (logits or probabilities: a batch of at least 2-D floats whose ``axis``, by default
    the last, has one entry per class; the argmax is taken). Returns a ``str`` for one index, else a numpy
    array of names shaped like the indices. A single logit per record is not an index: pass ``logits > 0``
    for two classes.

    ``classes``: the class names in index order (``dataset.classes``, or a model card's ``'classes'``)."""
    names = class_names(classes, "decode_classes")
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    a = np.asarray(values)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"decode_classes: expected class indices or scores, got {a.dtype} values")
    if a.dtype.kind == "f" and a.ndim >= 2 and a.shape[axis] == len(names):
        index = a.argmax(axis=axis)
    else:
        if a.dtype.kind == "f" and not np.array_equal(a, np.round(a)):
            raise ValueError(
                f"decode_classes: values of shape {a.shape} are neither class indices (whole numbers) nor "
                f"scores with {len(names)} entries (one per class) on axis {axis}; for one logit per "
                "record, pass logits > 0"
            )
        index = a.astype(np.int64)
    outside = (index < 0) | (index >= len(names))
    if np.any(outside):
        raise ValueError(
            f"decode_classes: class index {int(index[outside].flat[0])} is out of range for "
            f"{len(names)} classes {list(names)}"
        )
    out = np.asarray(names)[index]
    return str(out) if out.ndim == 0 else out
