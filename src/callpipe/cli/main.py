"""``callpipe``: the command-line entry point.

Each command lives in its own module under ``callpipe.cli`` and registers itself through an
``add_parser(subparsers)`` function that returns the parser with ``func`` set as its default.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import CallpipeError
from . import bench, demo, doctor, join, receive, sfu, simulate, stream, token, tune

COMMANDS = (demo, join, bench, doctor, sfu, token, simulate, stream, receive, tune)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-command per module in ``COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="callpipe",
        description="callpipe: end-to-end encrypted group video calls, with a native media core.",
        epilog="Run 'callpipe COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"callpipe {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status (0 = success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except CallpipeError as e:
        print(f"callpipe: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("callpipe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
