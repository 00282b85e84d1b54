"""A registry of trained models: weights plus a JSON model card, in a local folder or an fsspec URL.

Layout: ``<root>/<owner>/<name>/<version>/{weights.safetensors,card.json}``; the root is
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
from pathlib import Path

CARD = "card.json"
WEIGHTS = "weights.safetensors"
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

    The model must come from a ``fetch_architecture`` creator (its ``nitrain_spec`` says how to rebuild
    it). Without ``@version`` the next version number is used; an existing version is only replaced with
    ``overwrite=True``. ``spacing`` and ``normalization`` record what inputs the model expects (e.g.
    ``(1, 1, 1)`` and ``{'method': 'zscore'}``), ``training_data`` and ``metrics`` describe how it was
    trained; all must be JSON-serialisable.
    """
    spec = getattr(model, "nitrain_spec", None)
    if not hasattr(model, "state_dict"):
        raise TypeError(f"register_pretrained needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(spec, dict) or not {"name", "dim", "input_image_size"} <= set(spec):
        raise ValueError(
            f"register_pretrained: this {type(model).__name__} has no nitrain_spec, so its model card "
            "could not say how to rebuild it. Build the model with "
            "nitrain.models.fetch_architecture(name, dim)(...) (which sets model.nitrain_spec), then "
            "register it."
        )
    if spec.get("framework", "torch") != "torch":
        raise ValueError(
            f"register_pretrained: only torch models can be registered, got {spec.get('framework')!r}"
        )
    import torch

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
    from safetensors.torch import save as save_safetensors

    # safetensors: a flat, pickle-free tensor file (loading it cannot run code).
    weights = save_safetensors(
        {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    )
    architecture = _jsonable(
        {
            k: spec.get(k)
            for k in ("name", "dim", "input_image_size", "number_of_outcomes", "mode", "options")
        },
        "the model's nitrain_spec",
    )
    size = architecture["input_image_size"]
    input_shape = [size[-1], *size[:-1]] if spec.get("dim") is not None else list(size[:1])
    card = {
        "nitrain_card": CARD_FORMAT,
        "id": f"{owner}/{short}@{version}",
        "owner": owner,
        "name": short,
        "version": version,
        "description": str(description),
        "architecture": architecture,
        "framework": "torch",
        "channels": spec.get("channels", "first"),
        "input_shape": input_shape,
        "spacing": _jsonable(spacing, "spacing"),
        "normalization": _jsonable(normalization, "normalization"),
        "training_data": _jsonable(training_data, "training_data"),
        "metrics": _jsonable(metrics or {}, "metrics"),
        "weights": {
            "file": WEIGHTS,
            "format": "safetensors(state_dict)",
            "sha256": hashlib.sha256(weights).hexdigest(),
            "bytes": len(weights),
        },
        "nitrain_version": nitrain.__version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    where = (owner, short, str(version))
    store.write(weights, *where, WEIGHTS)
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
    weights after checking their sha256, and return it in eval mode (card attached as ``nitrain_card``)."""
    from nitrain.models._architectures import fetch_architecture

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
    arch = card["architecture"]
    size = arch["input_image_size"]
    creator = fetch_architecture(arch["name"], dim=arch["dim"], framework=card.get("framework", "torch"))
    model = creator(tuple(size), arch["number_of_outcomes"], arch["mode"], **arch.get("options", {}))
    from safetensors.torch import load as load_safetensors

    state = {k: v.to(map_location) for k, v in load_safetensors(data).items()}
    model.load_state_dict(state)
    model.nitrain_card = card
    return model.eval()


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
                "architecture": card["architecture"]["name"],
                "dim": card["architecture"]["dim"],
                "created": card.get("created"),
                "description": card.get("description", ""),
            }
        )
    return out
