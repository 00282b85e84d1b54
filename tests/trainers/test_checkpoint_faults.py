"""Checkpoint faults: a truncated checkpoint names its file; temporary files of killed saves are cleaned."""

import os
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from nitrain import trainers, utils  # noqa: E402
from nitrain.trainers import _checkpoint  # noqa: E402

from ._helpers import make_loader, regression_dataset, small_conv  # noqa: E402


def _trainer(callbacks=None):
    return trainers.ModelTrainer(small_conv(), "mse", lr=1e-2, seed=0, callbacks=callbacks, verbose=0)


def _saved(tmp_path):
    ck = utils.ModelCheckpoints(freq=1, directory=tmp_path)
    _trainer([ck]).fit(make_loader(regression_dataset(16), batch_size=8), epochs=1)
    assert ck.saved == [str(tmp_path / "epoch_001.pt")]
    return tmp_path / "epoch_001.pt"


@pytest.mark.parametrize("keep", [0.5, 0.0, 0.999])
def test_resume_from_a_truncated_checkpoint_names_the_file(tmp_path, keep):
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="truncated or corrupt") as info:
        _trainer().fit(make_loader(regression_dataset(16), batch_size=8), epochs=2, resume_from=path)
    assert str(path) in str(info.value)


def test_a_whole_checkpoint_still_resumes(tmp_path):
    path = _saved(tmp_path)
    trainer = _trainer()
    trainer.fit(make_loader(regression_dataset(16), batch_size=8), epochs=2, resume_from=path)
    assert trainer.epoch == 2


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_save_removes_leftover_temp_files_of_dead_processes(tmp_path):
    model = small_conv()
    dead = tmp_path / f"epoch_003.pt.tmp{_dead_pid()}"
    dead.write_bytes(b"PK\x03\x04" + b"\0" * 64)  # a torch.save cut short
    _age(dead, _checkpoint.STALE_DEAD_S + 5)
    empty = tmp_path / f"epoch_002.pt.tmp{_dead_pid()}"
    empty.write_bytes(b"")  # killed before writing anything
    _age(empty, _checkpoint.STALE_DEAD_S + 5)
    fresh = tmp_path / f"epoch_004.pt.tmp{_dead_pid()}"  # perhaps another machine's save in progress
    fresh.write_bytes(b"PK\x03\x04")
    alive = tmp_path / f"epoch_005.pt.tmp{os.getppid()}"  # a running process, not yet old
    alive.write_bytes(b"PK\x03\x04")
    _age(alive, _checkpoint.STALE_DEAD_S + 5)
    old = tmp_path / f"epoch_006.pt.tmp{os.getppid()}"  # whatever the pid: an hour old is stale
    old.write_bytes(b"PK\x03\x04")
    _age(old, _checkpoint.STALE_ANY_S + 5)
    foreign = tmp_path / f"notes.tmp{_dead_pid()}"  # not a torch file: not ours
    foreign.write_text("keep me")
    _age(foreign, _checkpoint.STALE_ANY_S + 5)

    _checkpoint.save_checkpoint(tmp_path / "epoch_007.pt", model, epoch=7)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not dead.exists() and not empty.exists() and not old.exists()
    assert fresh.exists() and alive.exists() and foreign.exists()
    assert "epoch_007.pt" in left and not any(n.startswith("epoch_007.pt.tmp") for n in left)


_KILLED_SAVE = """
import os, signal, sys
import torch
from nitrain.trainers._checkpoint import save_checkpoint

def killed(state, f):  # SIGKILL in the middle of writing
    with open(f, "wb") as out:
        out.write(b"PK\\x03\\x04" + b"\\0" * 1000)
        out.flush()
        os.kill(os.getpid(), signal.SIGKILL)

torch.save = killed
save_checkpoint(sys.argv[1], torch.nn.Linear(2, 1), epoch=1)
"""


def test_a_checkpoint_folder_recovers_after_a_sigkilled_save(tmp_path, monkeypatch):
    target = tmp_path / "ck" / "epoch_001.pt"
    proc = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(target)], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    leftovers = list(target.parent.glob("epoch_001.pt.tmp*"))
    assert len(leftovers) == 1 and not target.exists()  # the rename never happened: no half checkpoint
    _age(leftovers[0], _checkpoint.STALE_DEAD_S + 5)

    ck = utils.ModelCheckpoints(freq=1, directory=target.parent)
    _trainer([ck]).fit(make_loader(regression_dataset(16), batch_size=8), epochs=1)
    assert sorted(p.name for p in target.parent.iterdir()) == ["epoch_001.pt"]
    assert _checkpoint.load_checkpoint(target)["epoch"] == 1


def test_a_failed_save_removes_its_own_temp_file(tmp_path, monkeypatch):
    def broken(state, f):
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        _checkpoint.save_checkpoint(tmp_path / "a.pt", small_conv())
    assert list(tmp_path.iterdir()) == []
