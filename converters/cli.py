"""``s2f convert`` and ``s2f parity``."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from s2f.core.agreement import RoundingRule
from s2f.core.config_flags import add_command, config_from_args
from s2f.models.face_encoder_config import ARCHITECTURES
from s2f.models.original import OriginalOptions


@dataclass(kw_only=True)
class ConvertCommand:
    """Args:
        input: Keras .h5, PyTorch .pth, or an original Speech-to-Face .pt.
        output: output .safetensors path (face encoders) or directory (original VE_conv, AST, decoder).
        arch: expected architecture (checked against the file; default: detected from its layers).
        original: what an original checkpoint cannot tell.
    """

    input: Path = field(metadata={"positional": True})
    output: Path = field(metadata={"short": "-o"})
    arch: str | None = field(default=None, metadata={"choices": ARCHITECTURES})
    original: OriginalOptions = field(default_factory=OriginalOptions)


@dataclass(kw_only=True)
class ParityCommand:
    """Args:
        input: Keras .h5 weights file.
        arch: expected architecture.
        converted: an existing 's2f convert' output to check (default: convert afresh).
        images: real face images or directories of them.
        random: number of random images.
        seed: of the random images.
        rounding_factor: Keras may be K times as far from the PyTorch port in float64 as the port in float32 is
            (never held to less than the rule's floor, 64 float32 unit roundoffs relative).
        report: write the full JSON report here.
    """

    input: Path = field(metadata={"positional": True})
    arch: str | None = field(default=None, metadata={"choices": ARCHITECTURES})
    converted: Path | None = None
    images: tuple[Path, ...] = ()
    random: int = 2
    seed: int = 0
    rounding_factor: float = field(default=RoundingRule.factor, metadata={"metavar": "K"})
    report: Path | None = None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    add_command(subparsers, "convert", ConvertCommand, run_convert, extras=("convert",), what_runs="convert",
                help="convert Keras VGGFace .h5, a known PyTorch port, or an original Speech-to-Face checkpoint",
                description="Convert Keras VGGFace weights (deepface vgg_face_weights.h5, keras-vggface "
                            "rcmalli_vggface_tf_*.h5, save_weights or whole-model files) or an existing PyTorch port "
                            "(deepface vgg_face_weights.pth, the original Speech-to-Face state dicts) into a "
                            "speech2face .safetensors file. Reads HDF5 with h5py: TensorFlow is not needed. The "
                            "architecture is detected from the file's layers unless --arch is given. A checkpoint of "
                            "the original Speech-to-Face project's VE_conv, AST or FaceDecoder (its torch.save files, "
                            "read with weights_only=True) becomes a save_pretrained directory (config.json + "
                            "model.safetensors) carrying the preprocessing the original used.")

    add_command(subparsers, "parity", ParityCommand, run_parity_command, extras=("parity",), what_runs="parity",
                help="compare the Keras original with the PyTorch port, layer by layer",
                description="Run the upstream Keras model (from deepface / keras-vggface) with the .h5 weights and the"
                            " PyTorch port with the converted weights on random and real face images; report max |Δ|, "
                            "max |Δ| relative to the reference's range and cosine for every layer with weights and the"
                            " outputs. Exits 1 when Keras's embedding is further from the port's float64 result than "
                            "float32 rounding explains. Needs the 'parity' extra.")


def run_convert(args: argparse.Namespace) -> int:
    from s2f.converters.convert import convert
    from s2f.models.original import OriginalImport

    command = config_from_args(ConvertCommand, args)
    result = convert(command.input, command.output, command.arch, command.original)
    if isinstance(result, OriginalImport):
        print(f"found: the original Speech-to-Face project's {result.model_type}: {result.layout}")
        print(f"preprocessing: {json.dumps(result.preprocessing(), sort_keys=True)}")
        parameters = sum(p.numel() for p in result.model.parameters())
        print(f"wrote {command.output}/: config.json + model.safetensors, {parameters:,} parameters "
              f"(source sha256 {result.source['sha256'][:16]}...)")
        return 0
    how = "given" if command.arch else f"detected from {result.detected.evidence}"
    print(f"architecture: {result.arch} ({'with' if result.include_top else 'without'} top; {how})")
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {command.output}: {result.tensors} tensors, {result.parameters:,} parameters, "
          f"{result.output_bytes / 1e6:.1f} MB in {result.seconds:.2f} s "
          f"(source sha256 {result.source_sha256[:16]}...)")
    return 0


def run_parity_command(args: argparse.Namespace) -> int:
    from s2f.converters.parity import format_report, run_parity, write_report

    command = config_from_args(ParityCommand, args)
    report = run_parity(command.input, command.arch, images=list(command.images), random_count=command.random,
                        seed=command.seed, rule=RoundingRule(factor=command.rounding_factor),
                        converted=command.converted)
    print(format_report(report))
    if command.report:
        write_report(report, command.report)
        print(f"report: {command.report}")
    return 0 if report.passed else 1
