"""``s2f train decoder``, ``s2f train voice`` and ``s2f evaluate``."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from runtime.errors import InputError

SIZES = ("tiny", "full")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from s2f.train.trainer import OPTIMIZERS, SCHEDULES

    train = subparsers.add_parser("train", help="train the face decoder or a voice encoder")
    which = train.add_subparsers(dest="model", metavar="MODEL", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("data", type=Path, help="preprocessed tree ('s2f preprocess')")
        parser.add_argument("-o", "--out", type=Path, required=True, help="run directory (checkpoints, metrics, grids)")
        parser.add_argument("--split", type=Path, help="split JSON ('s2f data split'): train on train, validate on val")
        parser.add_argument("--size", choices=SIZES, default="full", help="model size: full (paper) or tiny (tests)")
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--lr", type=float, default=1e-3)
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
    decoder.add_argument("--w-landmarks", type=float, default=1.0, help="landmarks MSE weight (original: 1)")
    decoder.add_argument("--w-texture", type=float, default=100.0, help="texture L1 weight (original: 100)")
    decoder.add_argument("--w-embedding", type=float, default=100.0, help="embedding cosine weight (original: 100)")
    decoder.set_defaults(func=run_train_decoder)

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
    voice.set_defaults(func=run_train_voice)

    evaluate = subparsers.add_parser(
        "evaluate", help="speech->face retrieval recall@K of a voice encoder",
        description="Rank N candidate faces per held-out voice clip by cosine between the voice "
                    "embedding and the face embeddings; report recall@1/5/10, chance, cosine and L1 "
                    "to the true face as JSON and a PNG.")
    evaluate.add_argument("voice_encoder", type=Path, help="save_pretrained directory (a run's checkpoint)")
    evaluate.add_argument("data", type=Path)
    evaluate.add_argument("--split", type=Path)
    evaluate.add_argument("--part", default="test", help="which part of the split (default test)")
    evaluate.add_argument("--candidates", type=int, default=10)
    evaluate.add_argument("-o", "--output", type=Path, required=True, help="JSON report (a .png goes beside it)")
    evaluate.add_argument("--decoder", type=Path,
                          help="trained decoder (a run directory or checkpoint): adds reconstruction L1 vs the "
                               "mean training face, and the result grid original | face->face | speech->face")
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(func=run_evaluate)


def _train_config(args: argparse.Namespace, epochs: int | None = None):
    from s2f.train.trainer import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if epochs is not None:
        values["epochs"] = epochs
    try:
        return TrainConfig(**values)
    except ValueError as err:
        raise InputError(None, str(err)) from None


def read_split(path: Path | None) -> dict[str, list[str]] | None:
    if path is None:
        return None
    try:
        split = json.loads(path.read_text())
        return {part: list(split[part]) for part in ("train", "val", "test")}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(path, f"not a split file from 's2f data split' ({err})") from None


def _embedding_dim(root: Path) -> int:
    import numpy as np

    from s2f.data.layout import EMBEDDING_SUFFIX

    for path in sorted(root.rglob(f"*{EMBEDDING_SUFFIX}")):
        return int(np.load(path).shape[-1])
    raise InputError(root, "no face embeddings found; run 's2f preprocess faces' first")


def decoder_config(size: str, embedding_dim: int):
    from s2f.models.face_decoder import FaceDecoderConfig

    if size == "tiny":
        return FaceDecoderConfig(embedding_dim=embedding_dim, shared_dims=[256, 128], landmark_dims=[64],
                                 texture_channels=[64, 32, 16, 16, 8])
    return FaceDecoderConfig(embedding_dim=embedding_dim)


def tiny_ve_conv_config(variant: str, embedding_dim: int):
    """VE_conv's layer plan at a fraction of the cost for CPU tests and demos: thin layers,
    stride 2 in the first three convolutions instead of the four time pools (~40x fewer
    multiply-adds than the paper's model)."""
    from s2f.models.voice_encoder import VEConvConfig

    return VEConvConfig(variant=variant, channels=[16, 16, 32, 32, 32, 64, 64, 64, 64], stride2_convs=[1, 2, 3, 8, 9],
                        time_pool_after=[], hidden_dim=256, embedding_dim=embedding_dim)


def voice_model(args: argparse.Namespace, embedding_dim: int):
    from s2f.data.layout import AUDIO_SETTINGS
    from s2f.data.settings import read_settings

    settings = read_settings(args.data / AUDIO_SETTINGS) or {}
    if settings and settings.get("encoder") != args.encoder:
        raise InputError(args.data, f"holds {settings.get('encoder')} features; --encoder {args.encoder} needs "
                                    f"'s2f preprocess audio --encoder {args.encoder}'")
    if args.encoder == "ve_conv":
        from s2f.models.voice_encoder import VEConv, VEConvConfig

        variant = settings.get("variant", "paper")
        if args.size == "tiny":
            return VEConv(tiny_ve_conv_config(variant, embedding_dim))
        return VEConv(VEConvConfig(variant=variant, embedding_dim=embedding_dim))
    from s2f.models.ast_encoder import ASTVoiceEncoder, ASTVoiceEncoderConfig

    ast = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) \
        if args.size == "tiny" else {}
    base = ASTVoiceEncoderConfig()
    config = ASTVoiceEncoderConfig(ast={**base.ast, **ast}, embedding_dim=embedding_dim,
                                   feature_mean=settings.get("mean", base.feature_mean),
                                   feature_std=settings.get("std", base.feature_std),
                                   train_mode="head" if args.ast_head_epochs else "full",
                                   train_top_layers=args.ast_top_layers)
    return ASTVoiceEncoder(config, pretrained_ast=args.ast_pretrained)


def run_train_decoder(args: argparse.Namespace) -> int:
    import torch

    from s2f.data.pairs import DecoderFaces
    from s2f.models.face_decoder import FaceDecoder
    from s2f.train.tasks import DecoderTask
    from s2f.train.trainer import Trainer

    split = read_split(args.split)
    train = DecoderFaces(args.data, split["train"] if split else None)
    val = DecoderFaces(args.data, split["val"]) if split and split["val"] else None
    torch.manual_seed(args.seed)
    model = FaceDecoder(decoder_config(args.size, _embedding_dim(args.data)))
    encoder = None
    if args.face_encoder:
        from s2f.models.face_encoder import load_face_encoder

        encoder = load_face_encoder(args.face_encoder)
    from s2f.train.losses import DecoderLossWeights

    weights = DecoderLossWeights(args.w_landmarks, args.w_texture, args.w_embedding)
    task = DecoderTask(model, preview=val or train, weights=weights, face_encoder=encoder)
    trainer = Trainer(task, train, val, args.out, _train_config(args))
    if args.resume and not trainer.resume():
        print(f"no checkpoint in {args.out}; starting afresh")
    trainer.fit()
    _finish(trainer, f"decoder: {args.out}/latest.json -> best and latest checkpoints, metrics.csv, grids/")
    return 0


def run_train_voice(args: argparse.Namespace) -> int:
    import torch

    from s2f.data.pairs import VoiceFacePairs
    from s2f.models.face_decoder import FaceDecoder
    from s2f.train.tasks import VoiceTask
    from s2f.train.trainer import Trainer

    split = read_split(args.split)
    train = VoiceFacePairs(args.data, args.pairing, split["train"] if split else None)
    val = VoiceFacePairs(args.data, "all_to_one", split["val"]) if split and split["val"] else None
    torch.manual_seed(args.seed)
    model = voice_model(args, _embedding_dim(args.data))
    decoder = FaceDecoder.from_pretrained(_best_checkpoint(args.decoder)) if args.decoder else None
    face_head = None
    if args.face_encoder:
        from s2f.models.face_encoder import load_face_encoder
        from s2f.train.tasks import FaceHead

        encoder = load_face_encoder(args.face_encoder)
        if encoder.config.include_top:
            face_head = FaceHead(encoder)
    from s2f.train.losses import VoiceLossWeights

    weights = VoiceLossWeights(args.w_decoder, args.w_distance, args.w_distillation, args.temperature)
    task = VoiceTask(model, face_head, decoder, preview=val or train, weights=weights)
    # AST as the original trained it: the head alone first, then everything (or the top K layers)
    stages = [(args.ast_head_epochs, "head"), (args.ast_head_epochs + args.epochs, args.ast_then)] \
        if args.encoder == "ast" and args.ast_head_epochs else [(args.epochs, None)]
    for epochs, mode in stages:
        if mode is not None:
            model.set_train_mode(mode, args.ast_top_layers)
        trainer = Trainer(task, train, val, args.out, _train_config(args, epochs))
        if args.resume and not trainer.resume():
            print(f"no checkpoint in {args.out}; starting afresh")
        args.resume = True  # the second AST stage continues from the first
        trainer.fit()
    _finish(trainer, f"voice encoder: {args.out}/latest.json -> checkpoints, metrics.csv, grids/")
    return 0


def _finish(trainer, message: str) -> None:
    from s2f.train.trainer import shutdown_distributed

    if trainer.dist.main:
        print(message)
    shutdown_distributed()


def load_voice_encoder(directory: Path, device: str = "cpu"):
    from s2f.models.loading import load_model

    model = load_model(directory, device)
    if getattr(model, "model_type", None) not in ("ve_conv", "ast_voice_encoder"):
        raise InputError(directory, f"holds a {getattr(model, 'model_type', '?')!r} model, not a voice encoder")
    return model


def _best_checkpoint(directory: Path) -> Path:
    from s2f.models.loading import checkpoint_dir

    return checkpoint_dir(directory)


def run_evaluate(args: argparse.Namespace) -> int:
    from runtime.atomic import atomic_output
    from s2f.train.evaluate import evaluate_voice_encoder, plot_recall
    from s2f.train.trainer import pick_device

    directory = _best_checkpoint(args.voice_encoder)
    device = pick_device(args.device)
    model = load_voice_encoder(directory, str(device))
    split = read_split(args.split)
    identities = split[args.part] if split else None
    result = evaluate_voice_encoder(model, args.data, identities, args.candidates, device=device)
    result["checkpoint"] = str(directory)
    if args.decoder:
        from s2f.data.pairs import DecoderFaces, VoiceFacePairs
        from s2f.models.face_decoder import FaceDecoder
        from s2f.train.evaluate import decoder_reconstruction, mean_face, result_grid

        decoder_dir = _best_checkpoint(args.decoder)
        decoder = FaceDecoder.from_pretrained(decoder_dir, str(device))
        baseline = mean_face(DecoderFaces(args.data, split["train"] if split else None))
        result.update(decoder_reconstruction(decoder, DecoderFaces(args.data, identities), baseline, device))
        result["decoder_checkpoint"] = str(decoder_dir)
        grid = result_grid(model, decoder, VoiceFacePairs(args.data, "all_to_one", identities),
                           args.output.with_name(args.output.stem + "_grid.png"), device=device)
        print(f"decoder L1 {result['decoder_l1']:.4f} vs mean face {result['mean_face_l1']:.4f}; grid: {grid}")
    with atomic_output(args.output, "w") as handle:
        json.dump(result, handle, indent=2)
    plot_recall(result, args.output.with_suffix(".png"))
    print(", ".join(f"{k} {v:.3f}" for k, v in result.items() if k.startswith(("recall", "chance"))))
    return 0
