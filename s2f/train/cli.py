"""``s2f train decoder``, ``s2f train voice`` and ``s2f evaluate``."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from s2f.models.original import add_original_decoder_flag
from s2f.models.registry import SIZES
from s2f.runtime.scorecard import add_judge_flags, judge_input
from s2f.train.options import DECODER_RECIPE, OPTIMIZERS, SCHEDULES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train the face decoder or a voice encoder")
    which = train.add_subparsers(dest="model", metavar="MODEL", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("data", type=Path, help="preprocessed tree ('s2f preprocess')")
        parser.add_argument("-o", "--out", type=Path, required=True, help="run directory (checkpoints, metrics, grids)")
        parser.add_argument("--split", type=Path, help="split JSON ('s2f data split'): train on train, validate on val")
        parser.add_argument("--size", choices=SIZES, default="full",
                            help="model size preset: full (the paper's) or tiny (CPU tests and demos)")
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--lr", type=float, default=1e-3)
        parser.add_argument("--eps", type=float, default=1e-4, help="Adam's epsilon (the original's 1e-4)")
        parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
        parser.add_argument("--schedule", choices=SCHEDULES, default="constant")
        parser.add_argument("--accumulate", type=int, default=1, help="micro-batches per optimiser step")
        parser.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
        parser.add_argument("--device", default="auto")
        parser.add_argument("--save-every-steps", type=int, default=0)
        parser.add_argument("--patience", type=int, default=0, help="early stopping (epochs); 0: off")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
        parser.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")

    decoder = which.add_parser("decoder", help="face embedding -> landmarks + texture (Cole et al.)")
    common(decoder)
    decoder.add_argument("--face-encoder", type=Path,
                         help="the face encoder the embeddings came from: adds the embedding-cosine term")
    decoder.add_argument("--w-landmarks", type=float, default=0.01,
                         help="landmarks MSE weight, squared pixels (original: 1, which starves the texture head)")
    decoder.add_argument("--w-texture", type=float, default=100.0,
                         help="texture L1 weight (original: 100); with --warp on the aligned texture")
    decoder.add_argument("--w-image", type=float, default=100.0, help="--warp: L1 weight of the warped face")
    decoder.add_argument("--w-embedding", type=float, default=100.0, help="embedding cosine weight (original: 100)")
    decoder.add_argument("--warp", action=argparse.BooleanOptionalAction, default=True,
                         help="Cole et al.'s warping decoder (default): texture in the mean face's frame, warped to "
                              "the predicted landmarks by a thin-plate spline, trained on the aligned textures "
                              "'s2f preprocess faces' writes; --no-warp: the texture head draws the photo itself, "
                              "as the original did")
    decoder.add_argument("--no-mean-start", dest="mean_start", action="store_false",
                         help="start from grey at the image centre (the original) instead of the mean face")
    # the decoder's recipe (bench/decoder_recipe.py): the original's constant 1e-3 with Adam's eps 1e-4
    # leaves the 224x224 texture head far from converged in any CPU budget
    decoder.set_defaults(func=run_train_decoder, extras=("train",), what_runs="train", **DECODER_RECIPE)

    voice = which.add_parser("voice", help="voice features -> face embedding, taught by the face encoder")
    common(voice)
    voice.add_argument("--encoder", choices=("ve_conv", "ast"), required=True)
    voice.add_argument("--pairing", choices=("all_to_one", "one_to_one", "all_to_all"), default="all_to_all")
    voice.add_argument("--decoder", type=Path, help="trained decoder (its first layer enters the loss; grids)")
    voice.add_argument("--face-encoder", type=Path, help="face encoder with its classifier: fc8 distillation")
    voice.add_argument("--w-decoder", type=float, default=1.0, help="decoder first-layer L1 weight (original: 1)")
    voice.add_argument("--w-distance", type=float, default=0.025, help="normalised distance weight (original: 0.025)")
    voice.add_argument("--w-distillation", type=float, default=200.0, help="fc8 distillation weight (original: 200)")
    voice.add_argument("--temperature", type=float, default=2.0, help="distillation temperature (original: 2)")
    voice.add_argument("--ast-pretrained", type=Path, help="local transformers AST checkpoint directory")
    voice.add_argument("--ast-head-epochs", type=int, default=0,
                       help="AST: train only the head for this many epochs first, then --epochs more with --ast-then")
    voice.add_argument("--ast-then", choices=("full", "top"), default="full")
    voice.add_argument("--ast-top-layers", type=int, default=2)
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
    evaluate.add_argument("--split", type=Path)
    evaluate.add_argument("--part", default="test", help="which part of the split (default test)")
    evaluate.add_argument("--candidates", type=int, default=10)
    evaluate.add_argument("-o", "--output", type=Path, required=True, help="JSON report (a .png goes beside it)")
    evaluate.add_argument("--decoder", type=Path,
                          help="trained decoder (a run directory or checkpoint): adds reconstruction L1 vs the "
                               "mean training face, and the result grid original | face->face | speech->face")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--protocol", choices=("retrieval", "sf2f"), default="retrieval",
                          help="retrieval: rank face embeddings by the voice embedding (above). sf2f: the SF2F "
                               "scorecard of the generated faces (needs --decoder and a judge): recall@1-50 in "
                               "galleries of 100 identities, face->face and voice-embedding rows beside it")
    evaluate.add_argument("--max-clips", type=int, help="sf2f: clips per identity to generate faces from (default all)")
    add_judge_flags(evaluate)
    add_original_decoder_flag(evaluate)
    evaluate.set_defaults(func=run_evaluate, extras=("train",), what_runs="evaluate")


def _run_fields(cls, args: argparse.Namespace) -> dict:
    """The flags that are fields of the run dataclass ``cls``, plus its ``TrainConfig``."""
    from s2f.train.runs import train_config

    names = {f.name for f in fields(cls)} - {"train"}
    return {**{k: v for k, v in vars(args).items() if k in names}, "train": train_config(vars(args))}


def run_train_decoder(args: argparse.Namespace) -> int:
    from s2f.train.runs import DecoderTraining, train_decoder

    train_decoder(DecoderTraining(**_run_fields(DecoderTraining, args)))
    return 0


def run_train_voice(args: argparse.Namespace) -> int:
    from s2f.train.runs import VoiceTraining, train_voice

    train_voice(VoiceTraining(**_run_fields(VoiceTraining, args)))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from s2f.train.runs import Evaluation, evaluate

    names = {f.name for f in fields(Evaluation)} - {"judge_input"}
    result = evaluate(Evaluation(**{k: v for k, v in vars(args).items() if k in names}, judge_input=judge_input(args)))
    if args.protocol == "sf2f":
        from s2f.runtime.scorecard import summary_lines

        print("\n".join(summary_lines(result)))
        print(f"report {args.output}; recall curve {result['curve']}; grid {result['grid']}")
        return 0
    if "decoder_l1" in result:
        print(f"decoder L1 {result['decoder_l1']:.4f} vs mean face {result['mean_face_l1']:.4f}; grid: "
              f"{result['grid']}")
    print(", ".join(f"{k} {v:.3f}" for k, v in result.items() if k.startswith(("recall", "chance"))))
    return 0
