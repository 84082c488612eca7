"""``s2f demo``: the whole system on built-in defaults (``s2f.demo``)."""

from __future__ import annotations

import argparse

from s2f.core.config_flags import add_command, config_from_args
from s2f.demo import DemoConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    add_command(subparsers, "demo", DemoConfig, run_demo_command, extras=("parity", "train", "export"),
                what_runs="demo",
                help="end to end on built-in defaults: convert + parity, then train, evaluate, export and run",
                description="Write upstream Keras VGGFace files with random weights in the real legacy HDF5 layout (no"
                            " download needed), convert them and check parity; then train a decoder and a voice "
                            "encoder on a synthetic corpus, evaluate retrieval on unseen identities, export the "
                            "verified ONNX bundle and generate faces with s2f-runtime. Needs every extra ('all').")


def run_demo_command(args: argparse.Namespace) -> int:
    from s2f.demo import run_demo

    return 0 if run_demo(config_from_args(DemoConfig, args)) else 1
