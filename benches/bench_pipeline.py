"""Training-pipeline benchmark: one epoch from .nii.gz (normalise, random affine, noise, random blocks or
slices), nitrain vs TorchIO and MONAI, and nitrain's peak memory for 16 and 64 records.

Run: python benches/bench_pipeline.py [--quick] [--no-peers]   (or: nitrain bench --only pipeline)
"""

import argparse

from nitrain.benchmarks import run_pipeline

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 subjects at 2 mm, 32^3 blocks")
    parser.add_argument("--no-peers", action="store_true", help="skip TorchIO and MONAI")
    args = parser.parse_args()
    print(run_pipeline(quick=args.quick, peers=not args.no_peers))
