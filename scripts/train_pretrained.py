"""Reproduce the built-in pretrained model `nitrain/phantom-brain-age` and write it into the package.

Runs the full `nitrain demo` pipeline (64 phantom subjects at 64^3, seed 0) and copies the registered
weights and model card to python/nitrain/models/builtin/nitrain/phantom-brain-age/1/.

Run: python scripts/train_pretrained.py
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

from nitrain.demo import run_demo

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "python" / "nitrain" / "models" / "builtin" / "nitrain" / "phantom-brain-age" / "1"

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        metrics = run_demo(Path(tmp) / "run", n_subjects=64, size=64, epochs=40, seed=0, verbose=0)
        src = Path(tmp) / "run" / "registry" / "models" / "local" / "phantom-brain-age" / "1"
        card = json.loads((src / "card.json").read_text())
        card.update(id="nitrain/phantom-brain-age@1", owner="nitrain")
        card["training_script"] = "scripts/train_pretrained.py (nitrain demo, 64 subjects at 64^3, seed 0)"
        DEST.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / card["weights"]["file"], DEST / card["weights"]["file"])
        (DEST / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(metrics, indent=2), file=sys.stderr)
    print(f"wrote {DEST}")
