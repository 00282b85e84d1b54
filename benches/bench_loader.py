"""Loader benchmark: one epoch of slice sampling with noise, nitrain vs TorchIO, MONAI, original nitrain.

Run: python benches/bench_loader.py [--quick]   (or: nitrain bench --only loader)
"""

import sys

from nitrain.benchmarks import run_loader

if __name__ == "__main__":
    print(run_loader(quick="--quick" in sys.argv, peers="--no-peers" not in sys.argv))
