"""A registry of trained models: weights plus a JSON model card, in a local folder or an fsspec URL.

Layout: ``<root>/<owner>/<name>/<version>/{<weights file>,card.json}``. The weights file is
``weights.safetensors`` for a torch model, ``weights.weights.h5`` (``model.save_weights``) for a keras
model built by ``fetch_architecture``, and ``model.keras`` (``model.save``, loaded back with
``safe_mode=True``) for any other keras model; none of them is a pickle. The root is
``$NITRAIN_REGISTRY`` (an fsspec URL, or a folder) if set, else ``$NITRAIN_HOME/models``
(``~/.nitrain/models`` by default).

Concurrent registrations of one name get distinct versions; an existing version is never replaced
unless ``overwrite=True`` names it. A registration first claims its version, atomically, then writes the
weights, then the card:

* in a folder (``$NITRAIN_HOME``, or a folder or ``file://`` URL in ``$NITRAIN_REGISTRY``) the claim is
  the creation of the version folder (``os.mkdir`` fails if it exists: the next version is tried), and
  each file is written to a temporary name, flushed to disk and renamed into place;
* on an fsspec store the claim is the exclusive creation of the weights object
  (``pipe_file(mode='create')``), and the card is created exclusively too: if another registration
  (with a weights file of another name) took the version first, this one deletes its weights and tries
  the next version. On S3 (s3fs) exclusive creation is a conditional PUT (``If-None-Match: *``), which
  AWS S3 and moto honour: the claim is atomic there. A store that ignores the condition, and fsspec
  filesystems without an exclusive create of their own (fsspec then checks for the file and writes it),
  leave a short window in which two registrations can take one version; then one model is lost.

A version folder without a card is an incomplete registration (interrupted, or still being written): it
is never listed nor resolved as the latest version, ``list_pretrained`` reports it, and new
registrations take the numbers after it. A card that is not valid JSON, or lacks a key the registry needs,
raises ``ModelCardError`` naming the model, version and file; ``list_pretrained`` skips and reports it.

Here: registering, fetching and listing models; the stores, names and model cards are in
``nitrain.models._registry``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# the registry's storage, names and cards; ALIASES, BUILTIN, the stores and _store are re-exported
from nitrain.models._registry import ALIASES as ALIASES
from nitrain.models._registry import (
    BUILTIN,
    CARD,
    ChecksumError,
    ModelCardError,
    PretrainedNotFoundError,
    RegistryWarning,
    _find,
    _incomplete,
    _parse,
    _read_card,
    _scan,
    _Store,
    _store,
)
from nitrain.models._registry import _FsspecStore as _FsspecStore
from nitrain.models._registry import _LocalStore as _LocalStore

WEIGHTS = "weights.safetensors"
KERAS_WEIGHTS = "weights.weights.h5"  # keras insists on the `.weights.h5` ending
KERAS_MODEL = "model.keras"
TORCH_FORMAT = "safetensors(state_dict)"
KERAS_WEIGHTS_FORMAT = "keras.weights.h5"
KERAS_MODEL_FORMAT = "keras(model, safe_mode)"
CARD_FORMAT = 1
_CLAIM_TRIES = 1000  # versions tried by one registration before giving up


# ---------------------------------------------------------------- json


def _jsonable(value: object, what: str) -> Any:
    def default(o: object) -> object:
        for attr in ("tolist", "item"):  # numpy / torch arrays and scalars
            if hasattr(o, attr):
                return getattr(o, attr)()
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, set | frozenset):
            return sorted(o)
        raise TypeError(type(o).__name__)

    try:
        return json.loads(json.dumps(value, default=default))
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"register_pretrained: {what} must be JSON-serialisable, got {value!r} ({e})"
        ) from None


# ---------------------------------------------------------------- API


def _architecture_spec(model: Any, framework: str) -> dict[str, Any] | None:
    """``model.nitrain_spec`` checked, or ``None`` for a keras model built some other way."""
    spec = getattr(model, "nitrain_spec", None)
    if not isinstance(spec, dict) or not {"name", "dim", "input_image_size"} <= set(spec):
        if framework == "keras":
            return None
        raise ValueError(
            f"register_pretrained: this {type(model).__name__} has no nitrain_spec, so its model card "
            "could not say how to rebuild it. Build the model with "
            "nitrain.models.fetch_architecture(name, dim)(...) (which sets model.nitrain_spec), then "
            "register it."
        )
    if spec.get("framework", "torch") != framework:
        raise ValueError(
            f"register_pretrained: this is a {framework} model but its nitrain_spec says framework "
            f"{spec.get('framework')!r}; rebuild it with fetch_architecture(..., framework={framework!r})"
        )
    return spec


def _torch_weights(model: Any) -> tuple[bytes, dict[str, str], dict[str, str]]:
    import torch
    from safetensors.torch import save as save_safetensors

    # safetensors: a flat, pickle-free tensor file (loading it cannot run code).
    data = save_safetensors({k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()})
    return data, {"file": WEIGHTS, "format": TORCH_FORMAT}, {"torch_version": torch.__version__}


def _keras_weights(model: Any, whole_model: bool) -> tuple[bytes, dict[str, str], dict[str, str]]:
    import keras

    file, fmt = (KERAS_MODEL, KERAS_MODEL_FORMAT) if whole_model else (KERAS_WEIGHTS, KERAS_WEIGHTS_FORMAT)
    with tempfile.TemporaryDirectory(prefix="nitrain-") as tmp:
        path = os.path.join(tmp, file)
        if whole_model:
            model.save(path)
        else:
            model.save_weights(path)
        data = Path(path).read_bytes()
    versions = {"keras_version": keras.__version__, "keras_backend": keras.backend.backend()}
    return data, {"file": file, "format": fmt}, versions


def register_pretrained(
    model: Any,
    name: str,
    description: str = "",
    metrics: dict[str, Any] | None = None,
    training_data: Any = None,
    spacing: Any = None,
    normalization: Any = None,
    overwrite: bool = False,
    classes: Any = None,
) -> dict[str, Any]:
    """Save ``model``'s weights and a model card under ``name`` (``name``, ``owner/name``, optionally
    ``@version``); returns the card.

    A torch model must come from a ``fetch_architecture`` creator (its ``nitrain_spec`` says how to
    rebuild it); its weights are stored as safetensors. A keras model from
    ``fetch_architecture(..., framework='keras')`` is stored the same way, its weights as a keras
    ``.weights.h5`` file; any other keras model is stored whole as a ``.keras`` file (its custom layers, if
    any, must be registered keras-serializable to load again).

    Without ``@version`` the version is the first free number after every version folder there is
    (complete or not), claimed atomically (see the module docstring): registrations running at once get
    distinct versions. With ``@version`` an existing version, or a version folder without a card, raises
    ``FileExistsError`` unless ``overwrite=True``; an overwrite deletes the old card first, then writes
    the weights and the new card, so meanwhile the version reads as incomplete (two overwrites of one
    version at once are not guarded: the last card written wins, and weights that do not match it fail
    their checksum on loading). ``spacing`` and
    ``normalization`` record what inputs the model expects (e.g. ``(1, 1, 1)`` and
    ``{'method': 'zscore'}``), ``training_data`` and ``metrics`` describe how it was trained; all must be
    JSON-serialisable. ``classes``: for a classifier, the class names in the order of its outputs (a
    dataset's ``classes``); the card keeps them under ``'classes'`` (``None`` otherwise), so a fetched
    model's predictions decode back to names with
    ``nitrain.datasets.decode_classes(model.nitrain_card['classes'], logits)``.
    """
    from nitrain._frameworks import is_keras_model

    if is_keras_model(model):  # first: under the torch backend a keras model is also an nn.Module
        framework = "keras"
    elif hasattr(model, "state_dict"):
        framework = "torch"
    else:
        raise TypeError(
            f"register_pretrained needs a torch.nn.Module or a keras Model, got {type(model).__name__}"
        )
    spec = _architecture_spec(model, framework)
    if classes is not None:
        from nitrain.datasets._tables import class_names

        classes = list(class_names(classes, "register_pretrained"))
    meta = {
        "classes": classes,
        "spacing": _jsonable(spacing, "spacing"),
        "normalization": _jsonable(normalization, "normalization"),
        "training_data": _jsonable(training_data, "training_data"),
        "metrics": _jsonable(metrics or {}, "metrics"),
    }
    import nitrain

    store = _store()
    owner, short, version = _parse(name)
    complete, incomplete = _scan(store, owner, short)
    if version is not None and version in complete and not overwrite:
        raise _taken(store, owner, short, version)
    if framework == "torch":
        weights, weights_card, framework_versions = _torch_weights(model)
    else:
        weights, weights_card, framework_versions = _keras_weights(model, whole_model=spec is None)
    if spec is None:  # a keras model stored whole: no architecture to rebuild
        architecture = None
        shape = getattr(model, "input_shape", None)
        input_shape = list(shape[1:]) if isinstance(shape, tuple) else None
        channels = None
    else:
        architecture = _jsonable(
            {
                k: spec.get(k)
                for k in ("name", "dim", "input_image_size", "number_of_outcomes", "mode", "options")
            },
            "the model's nitrain_spec",
        )
        size = architecture["input_image_size"]
        channels = spec.get("channels", "first" if framework == "torch" else "last")
        if spec.get("dim") is None:
            input_shape = list(size[:1])
        elif channels == "first":
            input_shape = [size[-1], *size[:-1]]
        else:
            input_shape = list(size)
    card = {
        "nitrain_card": CARD_FORMAT,
        "id": f"{owner}/{short}@{version}",
        "owner": owner,
        "name": short,
        "version": version,
        "description": str(description),
        "architecture": architecture,
        "framework": framework,
        "channels": channels,
        "input_shape": input_shape,
        **meta,
        "weights": {
            **weights_card,
            "sha256": hashlib.sha256(weights).hexdigest(),
            "bytes": len(weights),
        },
        "nitrain_version": nitrain.__version__,
        **framework_versions,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    file = weights_card["file"]

    def encoded(v: int) -> bytes:
        card["id"], card["version"] = f"{owner}/{short}@{v}", v
        return (json.dumps(card, indent=2) + "\n").encode()

    if version is not None:
        where = (owner, short, str(version))
        if overwrite:  # last writer wins; without a card meanwhile, the version reads as incomplete
            store.remove(*where, CARD)
            store.write(weights, *where, file)
            store.write(encoded(version), *where, CARD)
            return card
        if not store.claim(weights, *where, file):
            if store.exists(*where, CARD):
                raise _taken(store, owner, short, version)
            reason = _incomplete(store, owner, short, [version])
            raise FileExistsError(
                f"{owner}/{short}@{version} cannot be registered: {reason}. Pass overwrite=True to "
                "replace it, or register without '@version'"
            )
        try:
            store.publish(encoded(version), *where, CARD)
        except FileExistsError:  # another registration, with another weights file, took the version
            store.remove(*where, file)
            raise _taken(store, owner, short, version) from None
        return card
    version = max(complete + incomplete, default=0) + 1
    for _ in range(_CLAIM_TRIES):
        where = (owner, short, str(version))
        if store.claim(weights, *where, file):
            try:
                store.publish(encoded(version), *where, CARD)
                return card
            except FileExistsError:  # another registration, with another weights file, took the version
                store.remove(*where, file)
        version += 1
    raise RuntimeError(
        f"register_pretrained: could not claim a version of {owner}/{short} in {store.url()} after "
        f"{_CLAIM_TRIES} tries (every one was taken)"
    )


def _taken(store: _Store, owner: str, short: str, version: int) -> FileExistsError:
    complete, incomplete = _scan(store, owner, short)
    return FileExistsError(
        f"{owner}/{short}@{version} is already registered in {store.url()}; pass overwrite=True to "
        f"replace it, or register without '@version' to get version "
        f"{max(complete + incomplete, default=0) + 1}"
    )


register_model = register_pretrained


def model_card(name: str) -> dict[str, Any]:
    """The model card of ``name`` (latest version unless ``@version``), read without loading
    weights or torch. A card that is not valid JSON or lacks a required key raises ``ModelCardError``;
    the latest version is the newest one with a card (newer folders without one are skipped with a
    ``RegistryWarning``)."""
    store, owner, short, version = _find(name)
    return _read_card(store, owner, short, version)


def fetch_pretrained(name: str, map_location: Any = "cpu") -> Any:
    """Rebuild the registered model ``name`` (latest version unless ``@version``) from its card, load its
    weights after checking their sha256, and return it (card attached as ``nitrain_card``).

    A torch model comes back in eval mode on ``map_location``; a keras model is rebuilt with
    ``fetch_architecture(..., framework='keras')`` (or, stored whole, loaded with
    ``keras.saving.load_model(safe_mode=True)``) on the current keras backend; ``map_location`` does not
    apply to it. A weights file that does not hash to the card's sha256 raises ``ChecksumError``, an
    unusable card ``ModelCardError`` (as for ``model_card``).
    """
    store, owner, short, version = _find(name)
    where = (owner, short, str(version))
    card = _read_card(store, owner, short, version)

    weights_name = card["weights"]["file"]
    data = store.read(*where, weights_name)
    digest = hashlib.sha256(data).hexdigest()
    if digest != card["weights"]["sha256"]:
        raise ChecksumError(
            f"sha256 mismatch for {store.url(*where, weights_name)}: the card says "
            f"{card['weights']['sha256']}, the file hashes to {digest}. The weights were altered or "
            "corrupted; re-register the model."
        )
    framework = card.get("framework", "torch")
    if framework == "keras":
        model = _load_keras(card, data)
        object.__setattr__(model, "nitrain_card", card)  # a plain dict, not one keras tracks
        return model
    model = _rebuild(card)
    from safetensors.torch import load as load_safetensors

    state = {k: v.to(map_location) for k, v in load_safetensors(data).items()}
    model.load_state_dict(state)
    model.nitrain_card = card
    return model.eval()


def _rebuild(card: dict[str, Any]) -> Any:
    from nitrain.models._architectures import fetch_architecture

    arch = card["architecture"]
    creator = fetch_architecture(arch["name"], dim=arch["dim"], framework=card.get("framework", "torch"))
    return creator(
        tuple(arch["input_image_size"]), arch["number_of_outcomes"], arch["mode"], **arch.get("options", {})
    )


def _load_keras(card: dict[str, Any], data: bytes) -> Any:
    from nitrain._frameworks import require_keras

    fmt = card["weights"].get("format")
    if fmt not in (KERAS_WEIGHTS_FORMAT, KERAS_MODEL_FORMAT):
        raise ValueError(f"fetch_pretrained: {card['id']} has keras weights in an unknown format {fmt!r}")
    keras = require_keras(f"fetch_pretrained({card['id']!r})")
    with tempfile.TemporaryDirectory(prefix="nitrain-") as tmp:
        path = os.path.join(tmp, card["weights"]["file"])
        Path(path).write_bytes(data)
        if fmt == KERAS_MODEL_FORMAT:
            import nitrain.models.keras._layers  # noqa: F401  (registers nitrain's custom keras layers)

            return keras.saving.load_model(path, safe_mode=True)
        model = _rebuild(card)
        model.load_weights(path)
        return model


class _PretrainedTable(list[dict[str, Any]]):
    """The rows of ``list_pretrained``; ``skipped`` holds what was left out (dicts of id, path, reason)."""

    def __init__(self, rows: Iterable[dict[str, Any]] = (), skipped: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(rows)
        self.skipped = list(skipped)

    def __repr__(self) -> str:
        if not self:
            lines = ["no registered models"]
        else:
            cols = ("id", "architecture", "dim", "created", "description")
            rows = [[str(r[c]) for c in cols] for r in self]
            widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
            lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
            lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
        if self.skipped:
            lines.append(
                f"({len(self.skipped)} skipped: {', '.join(s['id'] for s in self.skipped)}; see .skipped)"
            )
        return "\n".join(line.rstrip() for line in lines)

    __str__ = __repr__


def list_pretrained() -> list[dict[str, Any]]:
    """Every registered model version: dicts of id, owner, name, version, architecture, dim, created,
    description (prints as a table); the user's registry first, then the models built into nitrain.

    Versions that cannot be listed are skipped, not fatal: a version folder without a card (an
    interrupted or in-progress registration) and a card that is not valid JSON or lacks a required key.
    Each is a dict of ``id``, ``path`` and ``reason`` in the returned list's ``skipped`` attribute, and
    one ``RegistryWarning`` names every skipped path.
    """
    rows, skipped = [], []
    for store in (_store(), BUILTIN):
        for owner in store.children():
            for short in store.children(owner):
                complete, incomplete = _scan(store, owner, short)
                skipped += [
                    {
                        "id": f"{owner}/{short}@{v}",
                        "path": store.url(owner, short, str(v)),
                        "reason": f"no {CARD}: an interrupted registration, or one still being written",
                    }
                    for v in incomplete
                ]
                for version in complete:
                    ident = f"{owner}/{short}@{version}"
                    try:
                        card = _read_card(store, owner, short, version)
                    except (ModelCardError, PretrainedNotFoundError, OSError) as e:
                        path = store.url(owner, short, str(version), CARD)
                        skipped.append({"id": ident, "path": path, "reason": str(e)})
                        continue
                    rows.append(
                        {
                            "id": ident,
                            "owner": owner,
                            "name": short,
                            "version": version,
                            "architecture": (card["architecture"] or {}).get(
                                "name", f"({card.get('framework')} model)"
                            ),
                            "dim": (card["architecture"] or {}).get("dim"),
                            "created": card.get("created"),
                            "description": card.get("description", ""),
                        }
                    )
    if skipped:
        warnings.warn(
            f"list_pretrained skipped {len(skipped)} model version(s): "
            + "; ".join(f"{s['path']}: {s['reason']}" for s in skipped),
            RegistryWarning,
            stacklevel=2,
        )
    return _PretrainedTable(rows, skipped)
