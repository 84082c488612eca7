"""The ``s2f`` command. Each subcommand is a thin shell over a function tests call directly.

Subcommands are registered by module path and imported only when used, so ``s2f --help``
stays fast and the packages keep their one-way dependencies (the CLI is the only place that
knows them all).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from runtime.errors import run_command
from s2f import __version__

# subcommand -> module with ``add_parser(subparsers)``; each sets ``func`` on its parser
SUBCOMMAND_MODULES = ("converters.cli", "weights.cli", "s2f.data.cli", "s2f.train.cli", "export.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2f",
        description="speech2face: convert VGGFace weights from Keras to PyTorch, prove parity, "
                    "and (in later releases) train, export and run the Speech2Face pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"speech2face {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command("s2f", args)


if __name__ == "__main__":
    sys.exit(main())
