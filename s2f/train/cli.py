"""``s2f train decoder``, ``s2f train voice`` and ``s2f evaluate``."""

from __future__ import annotations

import argparse

from s2f.core.config_flags import add_command, add_config_flags, config_from_args
from s2f.models.original import add_original_decoder_flag
from s2f.runtime.evaluate.scorecard import add_judge_flags, judge_input
from s2f.train.options import DECODER_RECIPE

# fields whose flags are made elsewhere: --original-decoder-output is shared with every command
# that reads a decoder (add_original_decoder_flag), the judge's with the scorecard (add_judge_flags)
RUN_FLAGS_ELSEWHERE = ("original_decoder_output",)
EVALUATION_FLAGS_ELSEWHERE = ("face_encoder", "judge", "judge_input", "original_decoder_output")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from s2f.train.runs import DecoderTraining, Evaluation, VoiceTraining

    train = subparsers.add_parser("train", help="train the face decoder or a voice encoder")
    which = train.add_subparsers(dest="model", metavar="MODEL", required=True)

    decoder = which.add_parser("decoder", help="face embedding -> landmarks + texture (Cole et al.)")
    # the decoder's own recipe (DECODER_RECIPE, bench/decoder_recipe.py) replaces TrainConfig's defaults
    add_config_flags(decoder, DecoderTraining, defaults=DECODER_RECIPE)
    decoder.set_defaults(func=run_train_decoder, extras=("train",), what_runs="train")

    voice = add_command(which, "voice", VoiceTraining, run_train_voice, exclude=RUN_FLAGS_ELSEWHERE, extras=("train",),
                        what_runs="train",
                        help="voice features -> face embedding, taught by the face encoder")
    add_original_decoder_flag(voice)

    evaluate = add_command(subparsers, "evaluate", Evaluation, run_evaluate, exclude=EVALUATION_FLAGS_ELSEWHERE,
                           extras=("train",), what_runs="evaluate",
                           help="speech->face retrieval recall@K of a voice encoder",
                           description="Rank N candidate faces per held-out voice clip by cosine between the voice "
                                       "embedding and the face embeddings; report recall@1/5/10, chance, cosine and L1"
                                       " to the true face as JSON and a PNG.")
    add_judge_flags(evaluate)
    add_original_decoder_flag(evaluate)


def run_train_decoder(args: argparse.Namespace) -> int:
    from s2f.train.runs import DecoderTraining, train_decoder

    train_decoder(config_from_args(DecoderTraining, args))
    return 0


def run_train_voice(args: argparse.Namespace) -> int:
    from s2f.train.runs import VoiceTraining, train_voice

    train_voice(config_from_args(VoiceTraining, args))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from s2f.train.runs import Evaluation, evaluate

    result = evaluate(config_from_args(Evaluation, args, judge_input=judge_input(args)))
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
