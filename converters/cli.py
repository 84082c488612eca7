"""``s2f convert`` and ``s2f parity``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from s2f.core.agreement import RoundingRule
from s2f.models.face_encoder_config import ARCHITECTURES
from s2f.models.original import add_original_decoder_flag


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    convert = subparsers.add_parser(
        "convert", help="convert Keras VGGFace .h5, a known PyTorch port, or an original Speech-to-Face checkpoint",
        description="Convert Keras VGGFace weights (deepface vgg_face_weights.h5, keras-vggface "
                    "rcmalli_vggface_tf_*.h5, save_weights or whole-model files) or an existing "
                    "PyTorch port (deepface vgg_face_weights.pth, the original Speech-to-Face "
                    "state dicts) into a speech2face .safetensors file. Reads HDF5 with h5py: "
                    "TensorFlow is not needed. The architecture is detected from the file's "
                    "layers unless --arch is given. A checkpoint of the original Speech-to-Face "
                    "project's VE_conv, AST or FaceDecoder (its torch.save files, read with "
                    "weights_only=True) becomes a save_pretrained directory (config.json + "
                    "model.safetensors) carrying the preprocessing the original used.",
    )
    convert.add_argument("input", type=Path, help="Keras .h5, PyTorch .pth, or an original Speech-to-Face .pt")
    convert.add_argument("-o", "--output", type=Path, required=True,
                         help="output .safetensors path (face encoders) or directory (original VE_conv, AST, decoder)")
    convert.add_argument("--arch", choices=ARCHITECTURES, help="expected architecture (checked against the file)")
    add_original_decoder_flag(convert)
    convert.add_argument("--ast-mean", type=float, help="original AST: fbank mean instead of the original's -5.460994")
    convert.add_argument("--ast-std", type=float, help="original AST: fbank std instead of the original's 3.1129124")
    convert.add_argument("--variant", choices=("paper", "original"),
                         help="original VE_conv: spectrogram variant instead of 'original' (the one it was trained on)")
    convert.set_defaults(func=run_convert, extras=("convert",), what_runs="convert")

    parity = subparsers.add_parser(
        "parity", help="compare the Keras original with the PyTorch port, layer by layer",
        description="Run the upstream Keras model (from deepface / keras-vggface) with the .h5 "
                    "weights and the PyTorch port with the converted weights on random and real "
                    "face images; report max |Δ|, max |Δ| relative to the reference's range and "
                    "cosine for every layer with weights and the outputs. Exits 1 when Keras's "
                    "embedding is further from the port's float64 result than float32 rounding "
                    "explains. Needs the 'parity' extra.",
    )
    parity.add_argument("input", type=Path, help="Keras .h5 weights file")
    parity.add_argument("--arch", choices=ARCHITECTURES, help="expected architecture")
    parity.add_argument("--converted", type=Path,
                        help="an existing 's2f convert' output to check (default: convert afresh)")
    parity.add_argument("--images", nargs="*", default=[], type=Path,
                        help="real face images or directories of them")
    parity.add_argument("--random", type=int, default=2, help="number of random images (default 2)")
    parity.add_argument("--seed", type=int, default=0)
    parity.add_argument("--rounding-factor", type=float, default=RoundingRule.factor, metavar="K",
                        help="Keras may be K times as far from the PyTorch port in float64 as the port in "
                             f"float32 is (default {RoundingRule.factor:g}; never held to less than "
                             f"{RoundingRule.floor:.1e} relative)")
    parity.add_argument("--report", type=Path, help="write the full JSON report here")
    parity.set_defaults(func=run_parity_command, extras=("parity",), what_runs="parity")


def run_convert(args: argparse.Namespace) -> int:
    from s2f.converters.convert import convert
    from s2f.models.original import OriginalImport, OriginalOptions

    original = OriginalOptions(args.original_decoder_output, args.ast_mean, args.ast_std, args.variant)
    result = convert(args.input, args.output, args.arch, original)
    if isinstance(result, OriginalImport):
        print(f"found: the original Speech-to-Face project's {result.model_type}: {result.layout}")
        print(f"preprocessing: {json.dumps(result.preprocessing(), sort_keys=True)}")
        parameters = sum(p.numel() for p in result.model.parameters())
        print(f"wrote {args.output}/: config.json + model.safetensors, {parameters:,} parameters "
              f"(source sha256 {result.source['sha256'][:16]}...)")
        return 0
    how = "given" if args.arch else f"detected from {result.detected.evidence}"
    print(f"architecture: {result.arch} ({'with' if result.include_top else 'without'} top; {how})")
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {args.output}: {result.tensors} tensors, {result.parameters:,} parameters, "
          f"{result.output_bytes / 1e6:.1f} MB in {result.seconds:.2f} s "
          f"(source sha256 {result.source_sha256[:16]}...)")
    return 0


def run_parity_command(args: argparse.Namespace) -> int:
    from s2f.converters.parity import format_report, run_parity, write_report

    report = run_parity(args.input, args.arch, images=args.images, random_count=args.random,
                        seed=args.seed, rule=RoundingRule(factor=args.rounding_factor), converted=args.converted)
    print(format_report(report))
    if args.report:
        write_report(report, args.report)
        print(f"report: {args.report}")
    return 0 if report.passed else 1
