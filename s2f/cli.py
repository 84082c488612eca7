"""The ``s2f`` command. Each subcommand is a thin shell over a library function.

Subcommand modules only describe their flags when the parser is built; everything heavy
(torch, TensorFlow, onnx, h5py) is imported when a subcommand runs. So ``s2f --help`` is
instant, and each extra works alone: a subcommand whose extra is missing says which one to
install (``s2f.core.extras``) instead of failing on an import.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from s2f import __version__
from s2f.core.command_line import add_verbosity_flags, run_command

# modules with ``add_parser(subparsers)``; each sets ``func`` (and ``extras``) on its parsers
SUBCOMMAND_MODULES = ("s2f.converters.cli", "s2f.weights.cli", "s2f.data.cli", "s2f.train.cli", "s2f.export.cli",
                      "s2f.export.signing_cli", "s2f.demo_cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2f",
        description="speech2face: convert Keras VGGFace weights to PyTorch and prove parity, preprocess data, "
                    "train the voice encoder and face decoder, and export the pipeline to ONNX. Inference "
                    "without PyTorch: s2f-runtime.",
    )
    parser.add_argument("--version", action="version", version=f"speech2face {__version__}")
    add_verbosity_flags(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("s2f", args)


if __name__ == "__main__":
    sys.exit(main())
