"""The `nitrain` command."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib.util import find_spec


def _bench(args: argparse.Namespace) -> int:
    from nitrain.benchmarks import run_loader, run_pipeline, run_reading, run_sampling, run_transforms

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
    if args.only in (None, "reading"):
        parts.append(run_reading(quick=args.quick, peers=not args.no_peers))
    if args.only in (None, "pipeline"):
        parts.append(run_pipeline(quick=args.quick, peers=not args.no_peers))
    report = "\n\n".join(parts)
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report + "\n")
        print(f"\nreport written to {args.out}", file=sys.stderr)
    return 0


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


def _demo(args: argparse.Namespace) -> int:
    from nitrain.demo import run_demo
    from nitrain.demo_segmentation import run_segmentation_demo

    try:
        if args.task == "segmentation":
            seg = run_segmentation_demo(
                args.out if args.out != "nitrain-demo" else "nitrain-demo-segmentation",
                n_subjects=_given(args.subjects, 24),
                size=_given(args.size, 48),
                block=_given(args.block, 32),
                epochs=_given(args.epochs, 12),
                framework=args.framework,
                verbose=0 if args.quiet else 1,
            )
            return 0 if seg["mean_dice"] == seg["mean_dice"] else 1
        metrics = run_demo(
            args.out,
            n_subjects=_given(args.subjects, 64),
            size=_given(args.size, 64),
            epochs=_given(args.epochs, 40),
            framework=args.framework,
            verbose=0 if args.quiet else 1,
        )
    except ImportError as e:  # the framework is not installed: the message says what to install
        message = str(e) if str(e).startswith("nitrain demo") else f"nitrain demo: {e}"
        print(message, file=sys.stderr)
        return 2
    return 0 if metrics["r2"] == metrics["r2"] else 1


def _train(args: argparse.Namespace) -> int:
    from nitrain.config import ConfigError, run

    try:
        run(args.config, epochs=args.epochs, output=args.output, framework=args.framework)
    except ConfigError as e:
        print(f"nitrain train: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _train_epilog() -> str:
    from nitrain.config import EXAMPLE

    return (
        "CONFIG is a .toml, .yaml or .yml file (YAML takes the same keys and values).\n"
        "A complete example, with every accepted key:\n\n"
        f"{EXAMPLE}\n"
        "Written to OUTPUT: history.json, checkpoints/final (the model at the end),\n"
        "checkpoints/best (the best epoch by trainer.monitor) and checkpoints/epoch_XXX\n"
        "(every checkpoint_freq epochs); .pt for torch, .weights.h5 for keras.\n"
        "A config or data error prints one line and exits with status 2."
    )


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
    import nitrain

    parser = argparse.ArgumentParser(prog="nitrain", description="Medical-imaging-native deep learning.")
    parser.add_argument("--version", action="version", version=f"nitrain {nitrain.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser(
        "bench", help="benchmark sampling and transforms against numpy/scipy, ANTs, TorchIO and MONAI"
    )
    bench.add_argument("--quick", action="store_true", help="fewer items and repeats")
    bench.add_argument("--no-peers", action="store_true", help="skip TorchIO and MONAI")
    bench.add_argument("--threads", type=int, default=None, help="kernel threads (default: all CPUs)")
    bench.add_argument("--out", help="also write the report (markdown) to this file")
    bench.add_argument(
        "--only",
        choices=["sampling", "transforms", "loader", "reading", "pipeline"],
        help="run one benchmark only",
    )
    bench.set_defaults(func=_bench)
    demo = sub.add_parser(
        "demo",
        help="train and explain a brain-age model (or, with --task segmentation, a tissue segmentation) on a "
        "built-in phantom cohort",
    )
    demo.add_argument(
        "--task",
        default="brain-age",
        choices=["brain-age", "segmentation"],
        help="brain-age (default): a 2-D CNN on slices, explained by occlusion; segmentation: a 3-D U-Net "
        "on blocks, whole volumes segmented by sliding windows",
    )
    demo.add_argument(
        "--out",
        default="nitrain-demo",
        help="report folder (default: nitrain-demo, nitrain-demo-segmentation)",
    )
    demo.add_argument("--framework", default="torch", choices=["torch", "keras"])
    demo.add_argument("--subjects", type=int, default=None, help="default: 64 (brain-age), 24 (segmentation)")
    demo.add_argument("--size", type=int, default=None, help="phantom size in voxels per axis: 64 / 48")
    demo.add_argument("--epochs", type=int, default=None, help="default: 40 / 12")
    demo.add_argument(
        "--block", type=int, default=None, help="segmentation: block size in voxels (default 32)"
    )
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=_demo)
    train = sub.add_parser(
        "train",
        help="train from a TOML/YAML config (nitrain train --help shows a complete one)",
        description="Train the pipeline a TOML or YAML config describes.",
        epilog=_train_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("config", help="the config file (.toml, .yaml or .yml)")
    train.add_argument("--epochs", type=_positive_int, help="train this many epochs (overrides epochs)")
    train.add_argument("--output", help="write the results into this folder (overrides output)")
    train.add_argument(
        "--framework", choices=["torch", "keras"], help="build the model for this framework (model.framework)"
    )
    train.set_defaults(func=_train)
    info = sub.add_parser("info", help="versions, threads, frameworks and GPU found")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
