"""The ``hadamrnn`` command: argument parsing only; every command calls into the package."""

from __future__ import annotations

import argparse
import sys


def _bench(args: argparse.Namespace) -> int:
    from .bench import BENCH_CONFIGS, main as bench_main

    names = list(BENCH_CONFIGS) if args.config == "all" else [args.config]
    bench_main(names, engine=args.engine, repeats=args.repeats, as_json=args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hadamrnn", description="Binary / sparse-ternary orthogonal RNNs.")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser("bench", help="time a training step: fast engine vs the step-by-step loop")
    bench.add_argument("--config", choices=["pmnist", "imdb", "copy", "all"], default="all")
    bench.add_argument("--engine", default="auto", help="engine to compare with the loop (default: auto)")
    bench.add_argument("--repeats", type=int, default=5, help="timed steps per engine (median reported)")
    bench.add_argument("--json", action="store_true", help="one JSON object per configuration")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"hadamrnn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
