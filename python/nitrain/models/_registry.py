"""The model registry's storage, names and model cards, behind ``nitrain.models.pretrained`` (the public
API; its docstring describes the layout and how versions are claimed).

Here: the stores a registry lives in (a local folder, claimed with ``os.mkdir``, or an fsspec URL, claimed
by exclusive creation), the user's registry and the built-in models, resolving ``owner/name@version`` to a
complete version, and reading and checking model cards.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from nitrain._paths import expand, models_dir
from nitrain._store import FsspecStore, LocalStore, Store, is_url

CARD = "card.json"
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class PretrainedNotFoundError(LookupError):
    """No registered model of that name (the message lists the ones there are)."""


class ChecksumError(RuntimeError):
    """The weights file does not match the sha256 recorded in its model card."""


class ModelCardError(ValueError):
    """A model card that cannot be used: not valid JSON, not a JSON object, or without a required key.
    The message names the model, its version and the card's path."""


class RegistryWarning(UserWarning):
    """Something in the registry was skipped: an incomplete registration or an unreadable model card."""


# ---------------------------------------------------------------- storage


class _RegistryStore:
    """The registry's view of a store (``nitrain._store``): a path is given as its parts (owner, name,
    version, file)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def url(self, *parts: str) -> str:
        return self.store.url("/".join(parts))

    def read(self, *parts: str) -> bytes:
        return self.store.read_bytes("/".join(parts))

    def write(self, data: bytes, *parts: str) -> None:
        """Write ``data`` whole (locally: a temporary file, flushed to disk and renamed onto ``parts``)."""
        self.store.write_bytes("/".join(parts), data)

    def remove(self, *parts: str) -> None:
        self.store.remove("/".join(parts))

    def exists(self, *parts: str) -> bool:
        return self.store.exists("/".join(parts))

    def children(self, *parts: str) -> list[str]:
        return self.store.dirs("/".join(parts))


class _LocalStore(_RegistryStore):
    """A registry in a local folder: versions are claimed with ``os.mkdir``, files renamed into place."""

    def __init__(self, root: Path) -> None:
        super().__init__(LocalStore(root))
        self.root = root

    def claim(self, data: bytes, *parts: str) -> bool:
        """Create the version folder ``parts[:-1]`` and write ``data`` to its file ``parts[-1]``; False
        (and nothing written) if that folder exists already."""
        try:
            self.store.make_dir("/".join(parts[:-1]), exclusive=True)
        except FileExistsError:
            return False
        self.write(data, *parts)
        return True

    def publish(self, data: bytes, *parts: str) -> None:
        """Write the card that completes a claimed version (the folder is this registration's own)."""
        self.write(data, *parts)


class _FsspecStore(_RegistryStore):
    """A registry at an fsspec URL: versions are claimed by creating their weights object exclusively."""

    def __init__(self, url: str) -> None:
        super().__init__(FsspecStore(url))  # with the remote timeouts and retries datasets use

    def claim(self, data: bytes, *parts: str) -> bool:
        """Create the object ``parts`` (a version's weights) only if it does not exist; False if it does."""
        try:
            self.store.write_bytes("/".join(parts), data, exclusive=True)
        except FileExistsError:
            return False
        return True

    def publish(self, data: bytes, *parts: str) -> None:
        """Create the card only if there is none; FileExistsError if another registration's card is."""
        self.store.write_bytes("/".join(parts), data, exclusive=True)


#: A registry's store: a local folder or an fsspec URL.
_Store = _LocalStore | _FsspecStore


def _store() -> _Store:
    url = os.environ.get("NITRAIN_REGISTRY", "").strip()
    if url:
        if not is_url(url):  # a folder or file:// URL: claimed with os.mkdir
            return _LocalStore(expand(url.removeprefix("file://")))
        try:
            import fsspec  # noqa: F401
        except ImportError:
            raise ImportError(
                f"NITRAIN_REGISTRY={url!r} is a URL; reading it needs fsspec: pip install nitrain[cloud]"
            ) from None
        return _FsspecStore(url)
    return _LocalStore(models_dir())


#: Models shipped inside the package (read-only), found after the user's registry: ``nitrain/<name>``.
BUILTIN = _LocalStore(Path(__file__).parent / "builtin")


#: Other names the built-in models answer to (the original nitrain README fetches ``basic-t1``).
ALIASES = {"basic-t1": "nitrain/phantom-brain-age"}


def _find(name: str) -> tuple[_Store, str, str, int]:
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


def _scan(store: _Store, owner: str, name: str) -> tuple[list[int], list[int]]:
    """(complete, incomplete) version numbers of ``owner/name``: version folders with and without a card."""
    complete: list[int] = []
    incomplete: list[int] = []
    for v in store.children(owner, name):
        if v.isdigit() and int(v) >= 1:
            (complete if store.exists(owner, name, v, CARD) else incomplete).append(int(v))
    return sorted(complete), sorted(incomplete)


def _versions(store: _Store, owner: str, name: str) -> list[int]:
    return _scan(store, owner, name)[0]


def _ids(store: _Store) -> list[str]:
    out = []
    for owner in store.children():
        for name in store.children(owner):
            out += [f"{owner}/{name}@{v}" for v in _versions(store, owner, name)]
    return out


def _incomplete(store: _Store, owner: str, name: str, versions: list[int]) -> str:
    where = ", ".join(store.url(owner, name, str(v)) for v in versions)
    return (
        f"version{'s' if len(versions) > 1 else ''} {', '.join(map(str, versions))} of {owner}/{name} "
        f"({where}) {'have' if len(versions) > 1 else 'has'} no {CARD}: an interrupted registration, or "
        "one still being written"
    )


def _resolve(store: _Store, name: str) -> tuple[str, str, int]:
    owner, short, version = _parse(name)
    versions, incomplete = _scan(store, owner, short)
    if version is not None and version in incomplete:
        reason = _incomplete(store, owner, short, [version])
        raise PretrainedNotFoundError(f"{owner}/{short}@{version} is not a complete registration: {reason}")
    if not versions or (version is not None and version not in versions):
        what = f"version {version} of {owner}/{short}" if versions else f"model {owner}/{short}"
        available = _ids(store)
        raise PretrainedNotFoundError(
            f"no registered {what} in {store.url()}; available: {available or 'none'}"
            + (f" (versions of {owner}/{short}: {versions})" if versions else "")
            + (f"; {_incomplete(store, owner, short, incomplete)}" if incomplete else "")
        )
    if version is None:
        version = versions[-1]
        newer = [v for v in incomplete if v > version]
        if newer:
            warnings.warn(
                f"{owner}/{short}: using version {version}, the latest complete one; "
                + _incomplete(store, owner, short, newer),
                RegistryWarning,
                stacklevel=4,
            )
    return owner, short, version


# ---------------------------------------------------------------- cards

_ARCHITECTURE_KEYS = ("name", "dim", "input_image_size", "number_of_outcomes", "mode")


def _card_problem(card: object) -> str | None:
    """Why ``card`` cannot be used, or None."""
    if not isinstance(card, dict):
        return f"it is a JSON {type(card).__name__}, not an object"
    for key in ("architecture", "weights"):
        if key not in card:
            return f"it lacks the required key {key!r}"
    weights = card["weights"]
    if not isinstance(weights, dict):
        return f"'weights' is {weights!r}, not an object"
    for key in ("file", "sha256"):
        if key not in weights:
            return f"it lacks the required key 'weights.{key}'"
    if not isinstance(weights["file"], str) or not _PART.match(weights["file"]):
        return f"'weights.file' is {weights['file']!r}, not a file name"
    arch = card["architecture"]
    if arch is None:
        if card.get("framework", "torch") != "keras":
            return "'architecture' is null, which only a keras model stored whole may have"
        return None
    if not isinstance(arch, dict):
        return f"'architecture' is {arch!r}, not an object"
    for key in _ARCHITECTURE_KEYS:
        if key not in arch:
            return f"it lacks the required key 'architecture.{key}'"
    return None


def _read_card(store: _Store, owner: str, short: str, version: int) -> dict[str, Any]:
    """The card of ``owner/short@version``, parsed and checked; ``ModelCardError`` naming the model and
    path if it is not valid JSON or lacks a required key."""
    where = (owner, short, str(version))
    ident, url = f"{owner}/{short}@{version}", store.url(*where, CARD)
    try:
        raw = store.read(*where, CARD)
    except FileNotFoundError:
        raise PretrainedNotFoundError(
            f"the model card of {ident} ({url}) is gone: the version was removed, or is being overwritten"
        ) from None
    try:
        card = json.loads(raw)
    except ValueError as e:  # json.JSONDecodeError, UnicodeDecodeError
        raise ModelCardError(
            f"the model card of {ident} ({url}) is not valid JSON: {e}. It is truncated or corrupted; "
            f"register the model again as {ident} with overwrite=True, or delete {store.url(*where)}"
        ) from None
    problem = _card_problem(card)
    if problem:
        raise ModelCardError(f"the model card of {ident} ({url}) cannot be used: {problem}")
    return card
