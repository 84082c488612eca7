"""``s2f export model``: one model -> one verified ONNX graph."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from s2f.core.agreement import RoundingRule
from s2f.core.config_flags import add_command, config_from_args
from s2f.export.options import BundleExport, GraphChoices
from s2f.models.original import add_original_decoder_flag
from s2f.runtime.bundle.manifest import OPSET


@dataclass(kw_only=True)
class ExportModelCommand:
    """Args:
        model: save_pretrained directory, training run, .safetensors face encoder, or an original Speech-to-Face
            checkpoint (.pt).
        output: output .onnx file.
        rounding_factor: the graph may be K times as far from PyTorch float64 as PyTorch float32 is, per output
            (never held to less than the rule's floor, 64 float32 unit roundoffs relative).
        graphs: the graphs beside float32 and what they are verified on.
    """

    model: Path = field(metadata={"positional": True})
    output: Path = field(metadata={"short": "-o"})
    rounding_factor: float = field(default=RoundingRule.factor, metadata={"metavar": "K"})
    graphs: GraphChoices = field(default_factory=GraphChoices)


@dataclass(kw_only=True)
class ExportBundleCommand:
    """Args:
        output: bundle directory to create.
        voice_encoder: checkpoint, training run directory, or an original Speech-to-Face VE_conv/AST .pt.
        decoder: checkpoint, training run directory, or an original Speech-to-Face decoder .pt.
        face_encoder: converted face encoder (.safetensors or directory): adds face2face.
        export: which graphs, what they are verified on, overwrite and signing.
    """

    output: Path = field(metadata={"short": "-o"})
    voice_encoder: Path
    decoder: Path
    face_encoder: Path | None = None
    export: BundleExport = field(default_factory=BundleExport)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="export models to ONNX (verified against PyTorch)")
    what = export.add_subparsers(dest="what", metavar="WHAT", required=True)
    model = add_command(what, "model", ExportModelCommand, run_export_model, extras=("export",), what_runs="export",
                        help="one model -> .onnx",
                        description="Export a face encoder (.safetensors from 's2f convert' or a save_pretrained "
                                    "dir), a voice encoder, or a face decoder (save_pretrained dirs or training run "
                                    f"dirs) to ONNX (opset {OPSET}, dynamic batch, names and preprocessing in the "
                                    "metadata). The graph is checked with onnx.checker and must match PyTorch in "
                                    "onnxruntime within float32 rounding before the file is written.")
    add_original_decoder_flag(model)

    bundle = add_command(what, "bundle", ExportBundleCommand, run_export_bundle, extras=("export",), what_runs="export",
                         help="voice encoder + decoder (+ face encoder) -> a verified pipeline bundle",
                         description="Export the speech->face pipeline (voice encoder + face decoder) and, with "
                                     "--face-encoder, face->face, into one directory with a manifest.json holding "
                                     "versions, sha256 of every file, preprocessing and shapes, plus the end-to-end "
                                     "graphs speech2face.onnx (raw 16 kHz waveform -> uint8 face) and face2face.onnx "
                                     "(uint8 photo -> uint8 face) that any ONNX runtime can run, reading the same "
                                     "weight files. Every graph is verified (against PyTorch, the end-to-end ones "
                                     "against the two-stage path) first; the directory appears only when complete.")
    add_original_decoder_flag(bundle)


def run_export_model(args: argparse.Namespace) -> int:
    from s2f.core.errors import InputError
    from s2f.export.onnx_export import export_onnx
    from s2f.export.real_inputs import encoder_inputs
    from s2f.models.loading import load_model
    from s2f.models.original import OriginalOptions

    command = config_from_args(ExportModelCommand, args)
    graphs = command.graphs
    model = load_model(command.model, original=OriginalOptions(args.original_decoder_output))
    real = None
    if graphs.verify_with:
        real = encoder_inputs(model, list(graphs.verify_with))
        if real is None:
            raise InputError(graphs.verify_with[0], f"none of the --verify-with files is an input of a "
                                                    f"{model.model_type} (voice clips for voice encoders, photos "
                                                    "for face encoders; check a decoder with 'export bundle')")
    report = export_onnx(model, command.output, real_inputs=None if real is None else [real],
                         rule=RoundingRule(factor=command.rounding_factor), portable=graphs.portable,
                         fp16=graphs.fp16, int8=graphs.int8)
    print(report.summary())
    return 0


def run_export_bundle(args: argparse.Namespace) -> int:
    from s2f.export.bundle import export_bundle
    from s2f.models.loading import load_model_for
    from s2f.models.original import OriginalOptions

    command = config_from_args(ExportBundleCommand, args)
    original = OriginalOptions(args.original_decoder_output)
    sign_key = command.export.sign_key
    if sign_key:  # a key that cannot sign fails now, not after the export
        from s2f.export.signing import check_signing_key

        check_signing_key(sign_key)
    face_encoder = load_model_for("face_encoder", command.face_encoder, flag="--face-encoder") \
        if command.face_encoder else None
    voice_encoder = load_model_for("voice_encoder", command.voice_encoder, flag="--voice-encoder")
    decoder = load_model_for("face_decoder", command.decoder, original=original, flag="--decoder")
    manifest = export_bundle(command.output, voice_encoder, decoder, face_encoder, command.export)
    signed = f" + model.sig (signed with {sign_key})" if sign_key else ""
    print(f"bundle {command.output}: {', '.join(manifest['files'])} + manifest.json{signed}")
    return 0
