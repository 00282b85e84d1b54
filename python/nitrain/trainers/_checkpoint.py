"""Checkpoints: one ``torch.save`` file with the model and optimizer states, the epoch and the history."""

from __future__ import annotations

import os
import re
import time
import zipfile
from typing import Any

from nitrain._typing import PathLike

FORMAT = "nitrain-checkpoint"

#: A temporary file left by a save (``<checkpoint>.tmp<pid>``) is removed by a later save in its folder
#: once its process no longer runs and it is this many seconds old (the wait spares a save in progress on
#: another machine sharing the folder, whose pid means nothing here; a file being written stays fresh) ...
STALE_DEAD_S = 60.0
#: ... or, whatever its pid, once it is this old.
STALE_ANY_S = 3600.0
_TMP = re.compile(r"\.tmp(\d+)$")


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model) if type(model).__name__ == "DistributedDataParallel" else model


def _running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one we may not signal counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temps(folder: str) -> list[str]:
    """Remove the temporary files that saves killed midway (a SIGKILL, a crash) left in ``folder``: files
    named ``*.tmp<pid>`` that are empty or start like a ``torch.save`` zip, whose process no longer runs
    and that are ``STALE_DEAD_S`` seconds old, or any such file ``STALE_ANY_S`` seconds old. Returns the
    paths removed; a file that cannot be removed is left as it is."""
    removed: list[str] = []
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return removed
    now = time.time()
    for name in names:
        m = _TMP.search(name)
        if m is None:
            continue
        path = os.path.join(folder, name)
        try:
            st = os.stat(path)
            if not os.path.isfile(path):
                continue
            if st.st_size:
                with open(path, "rb") as f:
                    if f.read(2) != b"PK":  # not a torch.save file: not ours
                        continue
            age = now - st.st_mtime
            pid = int(m.group(1))
            mine = pid == os.getpid()
            if age > STALE_ANY_S or (not mine and age > STALE_DEAD_S and not _running(pid)):
                os.unlink(path)
                removed.append(path)
        except (OSError, ValueError):
            continue
    return removed


def save_checkpoint(path: PathLike, model: Any, optimizer: Any = None, epoch: int = 0, **extra: Any) -> str:
    """Write ``model`` (its ``state_dict``), ``optimizer`` state and ``epoch`` (epochs completed) to
    ``path``, with any ``extra`` entries (plain python values or tensors). The folder is created; the file
    is written to a temporary name (``<path>.tmp<pid>``) first and then renamed, so a crash never leaves
    half a checkpoint at ``path``. A failed write removes its temporary file; temporary files that killed
    saves left in the folder are removed (``remove_stale_temps``)."""
    import torch

    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    remove_stale_temps(folder)
    state = {
        "format": FORMAT,
        "version": 1,
        "epoch": int(epoch),
        "model": _unwrap(model).state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        **extra,
    }
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def load_checkpoint(
    path: PathLike, model: Any = None, optimizer: Any = None, map_location: Any = "cpu"
) -> dict:
    """Read a checkpoint; load its states into ``model`` and ``optimizer`` when given. Returns the dict
    (keys ``epoch``, ``model``, ``optimizer`` and whatever else was saved). A file torch cannot read (cut
    short, damaged, or not a torch file) raises ``ValueError`` naming it."""
    import torch

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        if isinstance(e, OSError) and not os.path.isfile(path):
            raise
        size = os.path.getsize(path)
        why = (
            "it is not a complete torch file: it looks truncated or corrupt"
            if not zipfile.is_zipfile(path)
            else "torch could not read it (corrupt, or not a checkpoint)"
        )
        raise ValueError(
            f"load_checkpoint: cannot read the checkpoint {path} ({size} bytes): {why} "
            f"({type(e).__name__}: {str(e)[:300]})"
        ) from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"load_checkpoint: {path} is not a nitrain checkpoint (use save_checkpoint)")
    if model is not None:
        _unwrap(model).load_state_dict(state["model"])
    if optimizer is not None:
        if state.get("optimizer") is None:
            raise ValueError(f"load_checkpoint: {path} holds no optimizer state")
        optimizer.load_state_dict(state["optimizer"])
    return state
