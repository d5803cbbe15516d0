"""The `kitsync` command line: one entry point for the sandbox, the demo and (later) sync, load and query."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Command = Callable[[argparse.Namespace], int]


def _sandbox_serve(args: argparse.Namespace) -> int:
    from sandbox.server import run_from_args

    run_from_args(args)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo

    return run_demo(seed=args.seed, kits=args.kits)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; sub-commands import their modules lazily so `--help` stays fast."""
    parser = argparse.ArgumentParser(prog="kitsync", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser("sandbox", help="local simulators of the partner APIs")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    serve = sandbox_commands.add_parser("serve", help="serve both partner APIs on 127.0.0.1")
    from sandbox.server import add_arguments

    add_arguments(serve)
    serve.set_defaults(handler=_sandbox_serve)

    demo = commands.add_parser("demo", help="run the main job against an in-process sandbox")
    demo.add_argument("--seed", type=int, default=7, help="sandbox world seed")
    demo.add_argument("--kits", type=int, default=300, help="sandbox world size (kits per partner)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kitsync` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
