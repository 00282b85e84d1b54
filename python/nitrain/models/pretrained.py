"""A registry of trained models: weights plus a JSON model card, in a local folder or an fsspec URL.

Layout: ``<root>/<owner>/<name>/<version>/{<weights file>,card.json}``. The weights file is
``weights.safetensors`` for a torch model, ``weights.weights.h5`` (``model.save_weights``) for a keras
model built by ``fetch_architecture``, and ``model.keras`` (``model.save``, loaded back with
``safe_mode=True``) for any other keras model; none of them is a pickle. The root is
``$NITRAIN_REGISTRY`` (an fsspec URL or a folder) if set, else ``$NITRAIN_HOME/models``
(``~/.nitrain/models`` by default). The card is written after the weights, so a version without a card
is an interrupted write and is ignored.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

CARD = "card.json"
WEIGHTS = "weights.safetensors"
KERAS_WEIGHTS = "weights.weights.h5"  # keras insists on the `.weights.h5` ending
KERAS_MODEL = "model.keras"
TORCH_FORMAT = "safetensors(state_dict)"
KERAS_WEIGHTS_FORMAT = "keras.weights.h5"
KERAS_MODEL_FORMAT = "keras(model, safe_mode)"
CARD_FORMAT = 1
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class PretrainedNotFoundError(LookupError):
    """No registered model of that name (the message lists the ones there are)."""


class ChecksumError(RuntimeError):
    """The weights file does not match the sha256 recorded in its model card."""


# ---------------------------------------------------------------- storage


class _LocalStore:
    def __init__(self, root: Path):
        self.root = root

    def url(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    def read(self, *parts: str) -> bytes:
        return self.root.joinpath(*parts).read_bytes()

    def write(self, data: bytes, *parts: str) -> None:
        path = self.root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def exists(self, *parts: str) -> bool:
        return self.root.joinpath(*parts).exists()

    def children(self, *parts: str) -> list[str]:
        path = self.root.joinpath(*parts)
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []


class _FsspecStore:
    def __init__(self, url: str):
        import fsspec

        self.fs, path = fsspec.core.url_to_fs(url)
        self.root = path.rstrip("/")
        self.protocol = url.split("://", 1)[0] if "://" in url else "file"

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def url(self, *parts: str) -> str:
        return f"{self.protocol}://{self._path(*parts).lstrip('/')}"

    def read(self, *parts: str) -> bytes:
        with self.fs.open(self._path(*parts), "rb") as f:
            return f.read()

    def write(self, data: bytes, *parts: str) -> None:
        path = self._path(*parts)
        parent = path.rsplit("/", 1)[0]
        try:
            self.fs.makedirs(parent, exist_ok=True)
        except Exception:  # object stores have no folders
            pass
        with self.fs.open(path, "wb") as f:
            f.write(data)

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self._path(*parts))

    def children(self, *parts: str) -> list[str]:
        path = self._path(*parts)
        try:
            entries = self.fs.ls(path, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = {e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"}
        return sorted(names)


def _store():
    url = os.environ.get("NITRAIN_REGISTRY", "").strip()
    if url:
        try:
            import fsspec  # noqa: F401
        except ImportError:
            if "://" in url and not url.startswith("file://"):
                raise ImportError(
                    f"NITRAIN_REGISTRY={url!r} is a URL; reading it needs fsspec: pip install nitrain[cloud]"
                ) from None
            return _LocalStore(Path(url.removeprefix("file://")).expanduser())
        return _FsspecStore(url)
    home = os.environ.get("NITRAIN_HOME", "").strip()
    base = Path(home).expanduser() if home else Path.home() / ".nitrain"
    return _LocalStore(base / "models")


#: Models shipped inside the package (read-only), found after the user's registry: ``nitrain/<name>``.
BUILTIN = _LocalStore(Path(__file__).parent / "builtin")


#: Other names the built-in models answer to (the original nitrain README fetches ``basic-t1``).
ALIASES = {"basic-t1": "nitrain/phantom-brain-age"}


def _find(name: str):
    """(store, owner, name, version) of ``name``: the user's registry first, then the built-in models
    (where a bare ``name`` means ``nitrain/name``, and ``ALIASES`` apply)."""
    user = _store()
    try:
        return (user, *_resolve(user, name))
    except PretrainedNotFoundError as e:
        missing = e
    base = name.partition("@")[0] if isinstance(name, str) else ""
    if base in ALIASES:
        name = ALIASES[base] + name[len(base) :]
        base = ALIASES[base]
    if "/" not in base or base.startswith("nitrain/"):
        candidate = name if "/" in base else f"nitrain/{name}"
        try:
            return (BUILTIN, *_resolve(BUILTIN, candidate))
        except PretrainedNotFoundError:
            pass
    raise PretrainedNotFoundError(f"{missing}; built into nitrain: {_ids(BUILTIN) or 'none'}")


# ---------------------------------------------------------------- names


def _parse(name: str) -> tuple[str, str, int | None]:
    """``name``, ``owner/name`` or either with ``@version`` -> (owner, name, version or None)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    base, _, ver = name.partition("@")
    version = None
    if _:
        if not ver.isdigit() or int(ver) < 1:
            raise ValueError(f"model version must be a positive integer ('name@2'), got {name!r}")
        version = int(ver)
    owner, _, short = base.rpartition("/")
    owner = owner or "local"
    for part in (owner, short):
        if not _PART.match(part):
            raise ValueError(
                f"invalid model name {name!r}: use 'name', 'owner/name' or 'owner/name@version' "
                "with letters, digits, '.', '_' and '-' only"
            )
    return owner, short, version


def _versions(store, owner: str, name: str) -> list[int]:
    return sorted(
        int(v) for v in store.children(owner, name) if v.isdigit() and store.exists(owner, name, v, CARD)
    )


def _ids(store) -> list[str]:
    out = []
    for owner in store.children():
        for name in store.children(owner):
            out += [f"{owner}/{name}@{v}" for v in _versions(store, owner, name)]
    return out


def _resolve(store, name: str) -> tuple[str, str, int]:
    owner, short, version = _parse(name)
    versions = _versions(store, owner, short)
    if not versions or (version is not None and version not in versions):
        what = f"version {version} of {owner}/{short}" if versions else f"model {owner}/{short}"
        available = _ids(store)
        raise PretrainedNotFoundError(
            f"no registered {what} in {store.url()}; available: {available or 'none'}"
            + (f" (versions of {owner}/{short}: {versions})" if versions else "")
        )
    return owner, short, version if version is not None else versions[-1]


# ---------------------------------------------------------------- json


def _jsonable(value, what: str):
    def default(o):
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


def _architecture_spec(model, framework: str):
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


def _torch_weights(model) -> tuple[bytes, dict, dict]:
    import torch
    from safetensors.torch import save as save_safetensors

    # safetensors: a flat, pickle-free tensor file (loading it cannot run code).
    data = save_safetensors({k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()})
    return data, {"file": WEIGHTS, "format": TORCH_FORMAT}, {"torch_version": torch.__version__}


def _keras_weights(model, whole_model: bool) -> tuple[bytes, dict, dict]:
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
    model,
    name: str,
    description: str = "",
    metrics: dict | None = None,
    training_data=None,
    spacing=None,
    normalization=None,
    overwrite: bool = False,
) -> dict:
    """Save ``model``'s weights and a model card under ``name`` (``name``, ``owner/name``, optionally
    ``@version``); returns the card.

    A torch model must come from a ``fetch_architecture`` creator (its ``nitrain_spec`` says how to
    rebuild it); its weights are stored as safetensors. A keras model from
    ``fetch_architecture(..., framework='keras')`` is stored the same way, its weights as a keras
    ``.weights.h5`` file; any other keras model is stored whole as a ``.keras`` file (its custom layers, if
    any, must be registered keras-serializable to load again). Without ``@version`` the next version
    number is used; an existing version is only replaced with ``overwrite=True``. ``spacing`` and
    ``normalization`` record what inputs the model expects (e.g. ``(1, 1, 1)`` and
    ``{'method': 'zscore'}``), ``training_data`` and ``metrics`` describe how it was trained; all must be
    JSON-serialisable.
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
    meta = {
        "spacing": _jsonable(spacing, "spacing"),
        "normalization": _jsonable(normalization, "normalization"),
        "training_data": _jsonable(training_data, "training_data"),
        "metrics": _jsonable(metrics or {}, "metrics"),
    }
    import nitrain

    store = _store()
    owner, short, version = _parse(name)
    versions = _versions(store, owner, short)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    elif version in versions and not overwrite:
        raise FileExistsError(
            f"{owner}/{short}@{version} is already registered in {store.url()}; pass overwrite=True to "
            f"replace it, or register without '@version' to get version {versions[-1] + 1}"
        )
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
    where = (owner, short, str(version))
    store.write(weights, *where, weights_card["file"])
    store.write((json.dumps(card, indent=2) + "\n").encode(), *where, CARD)
    return card


register_model = register_pretrained


def model_card(name: str) -> dict:
    """The model card of ``name`` (latest version unless ``@version``), read without loading
    weights or torch."""
    store, owner, short, version = _find(name)
    return json.loads(store.read(owner, short, str(version), CARD))


def fetch_pretrained(name: str, map_location="cpu"):
    """Rebuild the registered model ``name`` (latest version unless ``@version``) from its card, load its
    weights after checking their sha256, and return it (card attached as ``nitrain_card``).

    A torch model comes back in eval mode on ``map_location``; a keras model is rebuilt with
    ``fetch_architecture(..., framework='keras')`` (or, stored whole, loaded with
    ``keras.saving.load_model(safe_mode=True)``) on the current keras backend; ``map_location`` does not
    apply to it. A weights file that does not hash to the card's sha256 raises ``ChecksumError``.
    """
    store, owner, short, version = _find(name)
    where = (owner, short, str(version))
    card = json.loads(store.read(*where, CARD))

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


def _rebuild(card: dict):
    from nitrain.models._architectures import fetch_architecture

    arch = card["architecture"]
    creator = fetch_architecture(arch["name"], dim=arch["dim"], framework=card.get("framework", "torch"))
    return creator(
        tuple(arch["input_image_size"]), arch["number_of_outcomes"], arch["mode"], **arch.get("options", {})
    )


def _load_keras(card: dict, data: bytes):
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


class _PretrainedTable(list):
    def __repr__(self) -> str:
        if not self:
            return "no registered models"
        cols = ("id", "architecture", "dim", "created", "description")
        rows = [[str(r[c]) for c in cols] for r in self]
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
        return "\n".join(line.rstrip() for line in lines)

    __str__ = __repr__


def list_pretrained() -> list[dict]:
    """Every registered model version: dicts of id, owner, name, version, architecture, dim, created,
    description (prints as a table)."""
    out = _PretrainedTable()
    for store, ident in [(_store(), i) for i in _ids(_store())] + [(BUILTIN, i) for i in _ids(BUILTIN)]:
        owner, short, version = _parse(ident)
        card = json.loads(store.read(owner, short, str(version), CARD))
        out.append(
            {
                "id": ident,
                "owner": owner,
                "name": short,
                "version": version,
                "architecture": (card["architecture"] or {}).get("name", f"({card.get('framework')} model)"),
                "dim": (card["architecture"] or {}).get("dim"),
                "created": card.get("created"),
                "description": card.get("description", ""),
            }
        )
    return out
