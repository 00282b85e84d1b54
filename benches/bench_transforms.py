"""Transform benchmark: nitrain vs numpy/scipy, ANTs, TorchIO and MONAI on one 197x233x189 image.

Run: python benches/bench_transforms.py [--quick] [--no-peers]   (or: nitrain bench --only transforms)
"""

import argparse

from nitrain.benchmarks import run_transforms

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--no-peers", action="store_true", help="skip TorchIO and MONAI")
    args = parser.parse_args()
    print(run_transforms(quick=args.quick, peers=not args.no_peers))
