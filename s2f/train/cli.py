"""``s2f train decoder``, ``s2f train voice`` and ``s2f evaluate``."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from s2f.core.config_flags import add_config_flags
from s2f.models.original import add_original_decoder_flag
from s2f.runtime.evaluate.scorecard import add_judge_flags, judge_input
from s2f.train.options import DECODER_RECIPE, VOICE_ENCODER_NAMES, TrainConfig

# run fields whose flags are made elsewhere: --encoder is required (no default), and
# --original-decoder-output is shared with every command that reads a decoder
RUN_FLAGS_ELSEWHERE = ("encoder", "original_decoder_output")
# evaluation fields that are positional, or the judge's flags (add_judge_flags), or shared
EVALUATION_FLAGS_ELSEWHERE = ("voice_encoder", "data", "output", "face_encoder", "judge", "judge_input",
                              "original_decoder_output")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from s2f.train.runs import DecoderTraining, Evaluation, RunSettings, VoiceTraining

    train = subparsers.add_parser("train", help="train the face decoder or a voice encoder")
    which = train.add_subparsers(dest="model", metavar="MODEL", required=True)

    def common(parser: argparse.ArgumentParser, run: type, defaults: dict | None = None) -> None:
        """The run's fields and its TrainConfig's, each flag generated from its dataclass."""
        parser.add_argument("data", type=Path, help="preprocessed tree ('s2f preprocess')")
        parser.add_argument("-o", "--out", type=Path, required=True, help="run directory (checkpoints, metrics, grids)")
        add_config_flags(parser, RunSettings, exclude=("data", "out"))
        add_config_flags(parser, TrainConfig, defaults=defaults)
        add_config_flags(parser, run, exclude=(*(f.name for f in fields(RunSettings)), *RUN_FLAGS_ELSEWHERE))

    decoder = which.add_parser("decoder", help="face embedding -> landmarks + texture (Cole et al.)")
    # the decoder's own recipe (DECODER_RECIPE, bench/decoder_recipe.py) replaces TrainConfig's defaults
    common(decoder, DecoderTraining, defaults=DECODER_RECIPE)
    decoder.set_defaults(func=run_train_decoder, extras=("train",), what_runs="train")

    voice = which.add_parser("voice", help="voice features -> face embedding, taught by the face encoder")
    voice.add_argument("--encoder", choices=VOICE_ENCODER_NAMES, required=True,
                       help="the voice encoder: the paper's ve_conv or an Audio Spectrogram Transformer")
    common(voice, VoiceTraining)
    add_original_decoder_flag(voice)
    voice.set_defaults(func=run_train_voice, extras=("train",), what_runs="train")

    evaluate = subparsers.add_parser(
        "evaluate", help="speech->face retrieval recall@K of a voice encoder",
        description="Rank N candidate faces per held-out voice clip by cosine between the voice "
                    "embedding and the face embeddings; report recall@1/5/10, chance, cosine and L1 "
                    "to the true face as JSON and a PNG.")
    evaluate.add_argument("voice_encoder", type=Path,
                          help="save_pretrained directory, training run, or an original Speech-to-Face checkpoint")
    evaluate.add_argument("data", type=Path)
    evaluate.add_argument("-o", "--output", type=Path, required=True, help="JSON report (a .png goes beside it)")
    add_config_flags(evaluate, Evaluation, exclude=EVALUATION_FLAGS_ELSEWHERE)
    add_judge_flags(evaluate)
    add_original_decoder_flag(evaluate)
    evaluate.set_defaults(func=run_evaluate, extras=("train",), what_runs="evaluate")


def _run_fields(cls, args: argparse.Namespace) -> dict:
    """The flags that are fields of the run dataclass ``cls``, plus its ``TrainConfig``."""
    from s2f.core.config_flags import config_from_args, config_values

    return {**config_values(cls, args), "train": config_from_args(TrainConfig, args)}


def run_train_decoder(args: argparse.Namespace) -> int:
    from s2f.train.runs import DecoderTraining, train_decoder

    train_decoder(DecoderTraining(**_run_fields(DecoderTraining, args)))
    return 0


def run_train_voice(args: argparse.Namespace) -> int:
    from s2f.train.runs import VoiceTraining, train_voice

    train_voice(VoiceTraining(**_run_fields(VoiceTraining, args)))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from s2f.core.config_flags import config_values
    from s2f.train.runs import Evaluation, evaluate

    result = evaluate(Evaluation(**config_values(Evaluation, args), judge_input=judge_input(args)))
    if args.protocol == "sf2f":
        from s2f.runtime.evaluate.scorecard import summary_lines

        print("\n".join(summary_lines(result)))
        print(f"report {args.output}; recall curve {result['curve']}; grid {result['grid']}")
        return 0
    if "decoder_l1" in result:
        print(f"decoder L1 {result['decoder_l1']:.4f} vs mean face {result['mean_face_l1']:.4f}; grid: "
              f"{result['grid']}")
    print(", ".join(f"{k} {v:.3f}" for k, v in result.items() if k.startswith(("recall", "chance"))))
    return 0
