"""``s2f demo``: the whole system on built-in defaults (``s2f.demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from s2f.models.face_encoder_config import ARCHITECTURES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="end to end on built-in defaults: convert + parity, then train, evaluate, export and run",
        description="Write upstream Keras VGGFace files with random weights in the real legacy HDF5 layout (no "
                    "download needed), convert them and check parity; then train a decoder and a voice encoder on "
                    "a synthetic corpus, evaluate retrieval on unseen identities, export the verified ONNX bundle "
                    "and generate faces with s2f-runtime. Needs every extra ('all').")
    demo.add_argument("--workdir", type=Path, default=Path("s2f-demo"), help="where files go (default ./s2f-demo)")
    demo.add_argument("--arch", choices=(*ARCHITECTURES, "all"), default="all",
                      help="architecture to run (default: all four)")
    demo.add_argument("--images", nargs="*", type=Path, default=None,
                      help="real face images (default: the sample face that ships with the package)")
    demo.add_argument("--skip-training", action="store_true",
                      help="stop after parity (skip the synthetic-corpus training pipeline)")
    demo.add_argument("--runtime-env", type=Path,
                      help="a virtual environment with only the 'runtime' extra: the exported bundle is run "
                           "there, without torch (default: this environment, through s2f-runtime)")
    demo.set_defaults(func=run_demo_command, extras=("parity", "train", "export"), what_runs="demo")


def run_demo_command(args: argparse.Namespace) -> int:
    from s2f.demo import DemoConfig, run_demo

    config = DemoConfig(workdir=args.workdir, arch=args.arch, images=args.images, training=not args.skip_training,
                        runtime_env=args.runtime_env)
    return 0 if run_demo(config) else 1
