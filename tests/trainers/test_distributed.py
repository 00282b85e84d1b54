import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import torch
    import torch.distributed as dist
    from nitrain import datasets, loaders, trainers, utils

    out = sys.argv[1]
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(8, 8)).astype(np.float32) for _ in range(40)]
    ys = [float(3.0 * x.mean() + 1.0) for x in xs]
    ds = datasets.MemoryDataset(xs, ys)
    # no seed on the loader: the trainer hands rank 0's loader seed to every rank
    loader = loaders.DatasetLoader(ds, batch_size=4, shuffle=True)
    val = loaders.DatasetLoader(datasets.MemoryDataset(xs[:12], ys[:12]), batch_size=4, seed=1)

    torch.manual_seed(int(os.environ["RANK"]) + 100)  # different inits: DDP must broadcast rank 0's
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 1),
    )
    seen = []

    class Count(utils.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.trainer.world_size)

    trainer = trainers.ModelTrainer(
        model, loss="mse", lr=2e-2, metrics=["mae"], seed=0, verbose=0,
        callbacks=[Count(), utils.ModelCheckpoints(freq=3, directory=os.path.join(out, "ck")),
                   utils.CSVLogger(os.path.join(out, "log.csv"))],
    )
    history = trainer.fit(loader, epochs=3, validation=val)
    rank = int(os.environ["RANK"])
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, os.path.join(out, f"w{rank}.pt"))
    with open(os.path.join(out, f"h{rank}.json"), "w") as f:
        json.dump({"history": history, "world": seen, "pg_alive": dist.is_initialized(),
                   "seed": str(loader.seed)}, f)
    """
)


def _torchrun():
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.slow
def test_torchrun_two_ranks(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [*_torchrun(), "--standalone", "--nproc_per_node=2", str(script), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    w0, w1 = (torch.load(tmp_path / f"w{r}.pt") for r in (0, 1))
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    h0, h1 = (json.loads((tmp_path / f"h{r}.json").read_text()) for r in (0, 1))
    assert h0["world"] == [2, 2, 2]
    assert h0["seed"] == h1["seed"]  # the same batch order on every rank
    assert h0["history"] == h1["history"]  # losses are averaged over the ranks: the same everywhere
    loss = h0["history"]["loss"]
    assert len(loss) == 3 and loss[-1] < loss[0]
    assert not h0["pg_alive"] and not h1["pg_alive"]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["epoch_003.pt"]
    assert len((tmp_path / "log.csv").read_text().strip().splitlines()) == 4  # rank 0 only: header + 3
