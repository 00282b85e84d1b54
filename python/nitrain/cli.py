"""The `nitrain` command."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib.util import find_spec


def _bench(args: argparse.Namespace) -> int:
    from nitrain.benchmarks import run_loader, run_sampling, run_transforms

    if args.threads is not None:
        from nitrain import set_num_threads

        set_num_threads(args.threads)
    parts = []
    if args.only in (None, "sampling"):
        parts.append(run_sampling(quick=args.quick, peers=not args.no_peers))
    if args.only in (None, "transforms"):
        parts.append(run_transforms(quick=args.quick, peers=not args.no_peers))
    if args.only in (None, "loader"):
        parts.append(run_loader(quick=args.quick, peers=not args.no_peers))
    report = "\n\n".join(parts)
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report + "\n")
        print(f"\nreport written to {args.out}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from nitrain.demo import run_demo

    metrics = run_demo(
        args.out,
        n_subjects=args.subjects,
        size=args.size,
        epochs=args.epochs,
        framework=args.framework,
        verbose=0 if args.quiet else 1,
    )
    return 0 if metrics["r2"] == metrics["r2"] else 1


def _train(args: argparse.Namespace) -> int:
    from nitrain.config import ConfigError, run

    try:
        run(args.config)
    except ConfigError as e:
        print(f"nitrain train: {e}", file=sys.stderr)
        return 2
    return 0


def _info(args: argparse.Namespace) -> int:
    import nitrain

    print(f"nitrain {nitrain.__version__} (python {platform.python_version()}, {platform.machine()})")
    env = os.environ.get("NITRAIN_NUM_THREADS", "unset")
    print(f"kernel threads: {nitrain.get_num_threads()} (NITRAIN_NUM_THREADS={env})")
    for name in ("ants", "torch", "tensorflow", "keras", "torchio", "monai"):
        found = find_spec(name) is not None
        print(f"{name:>10}: {'found' if found else 'not installed'}")
    if find_spec("torch") is not None:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        print(f"{'GPU':>10}: {gpu}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nitrain", description="Medical-imaging-native deep learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser(
        "bench", help="benchmark sampling and transforms against numpy/scipy, ANTs, TorchIO and MONAI"
    )
    bench.add_argument("--quick", action="store_true", help="fewer items and repeats")
    bench.add_argument("--no-peers", action="store_true", help="skip TorchIO and MONAI")
    bench.add_argument("--threads", type=int, default=None, help="kernel threads (default: all CPUs)")
    bench.add_argument("--out", help="also write the report (markdown) to this file")
    bench.add_argument("--only", choices=["sampling", "transforms", "loader"], help="run one benchmark only")
    bench.set_defaults(func=_bench)
    demo = sub.add_parser("demo", help="train and explain a brain-age model on a built-in phantom cohort")
    demo.add_argument("--out", default="nitrain-demo", help="report folder (default: nitrain-demo)")
    demo.add_argument("--framework", default="torch", choices=["torch", "keras"])
    demo.add_argument("--subjects", type=int, default=64)
    demo.add_argument("--size", type=int, default=64, help="phantom size in voxels per axis")
    demo.add_argument("--epochs", type=int, default=40)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=_demo)
    train = sub.add_parser("train", help="train from a TOML/YAML config (see nitrain.config)")
    train.add_argument("config")
    train.set_defaults(func=_train)
    info = sub.add_parser("info", help="versions, threads, frameworks and GPU found")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
