"""``s2f export model``: one model -> one verified ONNX graph."""

from __future__ import annotations

import argparse
from pathlib import Path

from s2f.core.agreement import RoundingRule
from s2f.models.original import add_original_decoder_flag
from s2f.runtime.bundle.manifest import OPSET


def _graph_options(parser: argparse.ArgumentParser, verify_with_help: str) -> None:
    """What both export commands offer about the graphs they write."""
    parser.add_argument("--portable", action="store_true",
                        help="standard ONNX operators only, for runtimes other than onnxruntime (default: "
                             "attention, layer norm and GELU fused into onnxruntime's kernels, which run the "
                             "AST faster: bench/export_rewrites.py)")
    parser.add_argument("--fp16", action="store_true",
                        help="also write float16 graphs (NAME.fp16.onnx, float32 inputs and outputs) for GPUs, "
                             "each with its measured error against PyTorch float64 (refused above 1e-2)")
    parser.add_argument("--int8", action="store_true",
                        help="also write int8 graphs (NAME.int8.onnx): dynamic quantisation of the MatMul/Gemm "
                             "weights for CPUs, exact on every x86 CPU (no int8 saturation without VNNI), kept only "
                             "with a cosine >= 0.999 to PyTorch float64 on every output")
    parser.add_argument("--verify-with", type=Path, nargs="+", metavar="FILE", help=verify_with_help)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="export models to ONNX (verified against PyTorch)")
    what = export.add_subparsers(dest="what", metavar="WHAT", required=True)
    model = what.add_parser(
        "model", help="one model -> .onnx",
        description="Export a face encoder (.safetensors from 's2f convert' or a save_pretrained dir), a "
                    "voice encoder, or a face decoder (save_pretrained dirs or training run dirs) to ONNX "
                    f"(opset {OPSET}, dynamic batch, names and preprocessing in the metadata). The graph is "
                    "checked with onnx.checker and must match PyTorch in onnxruntime within float32 "
                    "rounding before the file is written.")
    model.add_argument("model", type=Path, help="save_pretrained directory, training run, .safetensors face encoder, "
                                                "or an original Speech-to-Face checkpoint (.pt)")
    add_original_decoder_flag(model)
    model.add_argument("-o", "--output", type=Path, required=True, help="output .onnx file")
    model.add_argument("--rounding-factor", type=float, default=RoundingRule.factor, metavar="K",
                       help="the graph may be K times as far from PyTorch float64 as PyTorch float32 is, per "
                            f"output (default {RoundingRule.factor:g}; never held to less than "
                            f"{RoundingRule.floor:.1e} relative)")
    _graph_options(model, "voice clips (voice encoders) or face photos (face encoders) to verify on, "
                          "besides random inputs")
    model.set_defaults(func=run_export_model, extras=("export",), what_runs="export")

    bundle = what.add_parser(
        "bundle", help="voice encoder + decoder (+ face encoder) -> a verified pipeline bundle",
        description="Export the speech->face pipeline (voice encoder + face decoder) and, with "
                    "--face-encoder, face->face, into one directory with a manifest.json holding versions, "
                    "sha256 of every file, preprocessing and shapes, plus the end-to-end graphs "
                    "speech2face.onnx (raw 16 kHz waveform -> uint8 face) and face2face.onnx (uint8 photo -> "
                    "uint8 face) that any ONNX runtime can run, reading the same weight files. Every graph is "
                    "verified (against PyTorch, the end-to-end ones against the two-stage path) first; the "
                    "directory appears only when complete.")
    bundle.add_argument("-o", "--output", type=Path, required=True, help="bundle directory to create")
    bundle.add_argument("--voice-encoder", type=Path, required=True,
                        help="checkpoint, training run directory, or an original Speech-to-Face VE_conv/AST .pt")
    bundle.add_argument("--decoder", type=Path, required=True,
                        help="checkpoint, training run directory, or an original Speech-to-Face decoder .pt")
    add_original_decoder_flag(bundle)
    bundle.add_argument("--face-encoder", type=Path, help="converted face encoder (.safetensors or directory)")
    bundle.add_argument("--overwrite", action="store_true")
    bundle.add_argument("--sign-key", type=Path, metavar="KEY.pem",
                        help="sign the bundle with this elliptic-curve private key (writes model.sig; see 's2f "
                             "bundle'); an encrypted key's passphrase is read from $S2F_SIGN_KEY_PASSWORD")
    _graph_options(bundle, "voice clips (and face photos, with --face-encoder) to verify on besides random "
                           "inputs; the decoder is checked on the embeddings made of them")
    bundle.set_defaults(func=run_export_bundle, extras=("export",), what_runs="export")


def run_export_model(args: argparse.Namespace) -> int:
    from s2f.core.errors import InputError
    from s2f.export.onnx_export import export_onnx
    from s2f.export.real_inputs import encoder_inputs
    from s2f.models.loading import load_model
    from s2f.models.original import OriginalOptions

    model = load_model(args.model, original=OriginalOptions(args.original_decoder_output))
    real = None
    if args.verify_with:
        real = encoder_inputs(model, args.verify_with)
        if real is None:
            raise InputError(args.verify_with[0], f"none of the --verify-with files is an input of a "
                                                  f"{model.model_type} (voice clips for voice encoders, photos "
                                                  "for face encoders; check a decoder with 'export bundle')")
    report = export_onnx(model, args.output, real_inputs=None if real is None else [real],
                         rule=RoundingRule(factor=args.rounding_factor), portable=args.portable, fp16=args.fp16,
                         int8=args.int8)
    print(report.summary())
    return 0


def run_export_bundle(args: argparse.Namespace) -> int:
    from s2f.export.bundle import export_bundle
    from s2f.models.loading import load_model_for
    from s2f.models.original import OriginalOptions

    original = OriginalOptions(args.original_decoder_output)
    if args.sign_key:  # a key that cannot sign fails now, not after the export
        from s2f.export.signing import check_signing_key

        check_signing_key(args.sign_key)
    face_encoder = load_model_for("face_encoder", args.face_encoder, flag="--face-encoder") if args.face_encoder \
        else None
    voice_encoder = load_model_for("voice_encoder", args.voice_encoder, flag="--voice-encoder")
    decoder = load_model_for("face_decoder", args.decoder, original=original, flag="--decoder")
    manifest = export_bundle(args.output, voice_encoder, decoder, face_encoder,
                             args.overwrite, args.portable, args.fp16, args.verify_with, args.int8,
                             sign_key=args.sign_key)
    signed = f" + model.sig (signed with {args.sign_key})" if args.sign_key else ""
    print(f"bundle {args.output}: {', '.join(manifest['files'])} + manifest.json{signed}")
    return 0
