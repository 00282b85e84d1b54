"""Sampling benchmark: nitrain vs numpy, TorchIO and MONAI (the ratio table in the README).

Run: scripts/dev.sh demo   (or: python benches/bench_sampling.py [--quick] [--no-peers])
"""

import argparse

from nitrain.benchmarks import run_sampling

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer items and repeats")
    parser.add_argument("--no-peers", action="store_true", help="skip TorchIO and MONAI")
    args = parser.parse_args()
    print(run_sampling(quick=args.quick, peers=not args.no_peers))
