"""Training and evaluation runs as functions of dataclasses: the command line fills them from
its flags, the whole-system pipeline and the demo build them directly.

    train_decoder(DecoderTraining(data=pre, out=runs / "decoder", size="tiny",
                                  train=TrainConfig(epochs=30)))
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError
from s2f.core.splits import PARTS as SPLIT_PARTS
from s2f.core.splits import read_split
from s2f.models.registry import SIZES
from s2f.train.options import (
    PAIRINGS,
    TEXTURE_SPACE_NAMES,
    VOICE_ENCODER_NAMES,
    DecoderLossWeights,
    TrainConfig,
    VoiceLossWeights,
)

log = logging.getLogger(__name__)
FEATURE_PATHS = ("precomputed", "on-the-fly")  # where voice features come from in training


@dataclass
class RunSettings:
    """What every training run takes: data, where it goes, model size and the loop's settings.

    Args:
        data: preprocessed tree ('s2f preprocess').
        out: run directory (checkpoints, metrics, grids).
        split: split JSON ('s2f data split'): train on train, validate on val.
        size: model size preset: full (the paper's) or tiny (CPU tests and demos).
        resume: continue from the run directory's latest checkpoint.
    """

    data: Path = field(metadata={"positional": True})
    out: Path = field(metadata={"short": "-o"})
    split: Path | None = None
    size: str = field(default="full", metadata={"choices": SIZES})
    resume: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class DecoderTraining(RunSettings):
    """Args:
        face_encoder: the face encoder the embeddings came from: adds the embedding-cosine term.
        w_landmarks: landmarks MSE weight, squared pixels (the original's 1 starves the texture head).
        w_texture: texture L1 weight (original: 100); with --warp on the aligned texture.
        w_embedding: embedding cosine weight (original: 100).
        w_image: --warp: L1 weight of the warped face.
        warp: Cole et al.'s warping decoder: the texture in the mean face's frame, warped to the
            predicted landmarks by a thin-plate spline, trained on the aligned textures 's2f
            preprocess faces' writes; --no-warp: the texture head draws the photo itself, as the
            original did.
        mean_start: start at the mean training face (texture base and landmark bias,
            FaceDecoder.start_from_mean); --no-mean-start: grey at the image centre (the original).
        texture_space: the colour space of the texture L1: rgb (the original's) or cielab
            (perceptual: a hue or chroma error costs what it looks like).
        silent_texture_head: with mean_start, the texture head's last layer starts at zero, so
            the first faces are exactly the mean face, without a random colour noise each.
        output_activation: how the texture ends: sigmoid (a correction in logits to the mean
            face) or none (a correction in RGB, the same step for the three channels).
    """

    face_encoder: Path | None = None
    w_landmarks: float = DecoderLossWeights.landmarks
    w_texture: float = DecoderLossWeights.texture
    w_embedding: float = DecoderLossWeights.embedding
    w_image: float = DecoderLossWeights.image
    warp: bool = True
    mean_start: bool = True
    texture_space: str = field(default="rgb", metadata={"choices": TEXTURE_SPACE_NAMES})
    silent_texture_head: bool = False
    output_activation: str = field(default="sigmoid", metadata={"choices": ("sigmoid", "none")})

    def loss_weights(self) -> DecoderLossWeights:
        return DecoderLossWeights(self.w_landmarks, self.w_texture, self.w_embedding, self.w_image)


@dataclass
class VoiceTraining(RunSettings):
    """Args:
        encoder: the voice encoder: the paper's ve_conv or an Audio Spectrogram Transformer.
        pairing: how clips meet faces.
        decoder: trained decoder (its first layer enters the loss; grids).
        face_encoder: face encoder with its classifier: fc8 distillation.
        w_decoder: decoder first-layer L1 weight (original: 1).
        w_distance: normalised distance weight (original: 0.025).
        w_distillation: fc8 distillation weight (original: 200).
        temperature: distillation temperature (original: 2).
        ast_pretrained: local transformers AST checkpoint directory.
        ast_head_epochs: AST: train only the head for this many epochs first, then --epochs more
            with --ast-then.
        ast_then: AST: what trains after the head: everything, or the top --ast-top-layers.
        ast_top_layers: AST: how many top transformer layers --ast-then top trains.
        features: precomputed: the arrays 's2f preprocess audio' wrote into DATA. on-the-fly:
            DataLoader workers decode the clips under --voices and the training step computes
            the features on its own device (no feature array on disk).
        voices: on-the-fly: the corpus whose <identity>/audios/ hold the clips (the folder
            's2f preprocess faces' read).
        random_crop: on-the-fly: a new window of every clip longer than the window each epoch
            (validation always takes the first); off: exactly the precomputed features' window.
        variant: on-the-fly, ve_conv: spectrogram framing, paper or original.
        seconds: on-the-fly: the window (default 6 for ve_conv, 10.26 for ast).
        audio_steps: on-the-fly: speech2face, or the original project's (see 's2f preprocess audio').
    """

    encoder: str = field(default="ve_conv", metadata={"choices": VOICE_ENCODER_NAMES, "required": True})
    pairing: str = field(default="all_to_all", metadata={"choices": PAIRINGS})
    decoder: Path | None = None
    face_encoder: Path | None = None
    w_decoder: float = VoiceLossWeights.decoder
    w_distance: float = VoiceLossWeights.distance
    w_distillation: float = VoiceLossWeights.distillation
    temperature: float = VoiceLossWeights.temperature
    ast_pretrained: Path | None = None
    ast_head_epochs: int = 0
    ast_then: str = field(default="full", metadata={"choices": ("full", "top")})
    ast_top_layers: int = 2
    original_decoder_output: str = "sigmoid"
    features: str = field(default="precomputed", metadata={"choices": FEATURE_PATHS})
    voices: Path | None = None
    random_crop: bool = False
    variant: str = field(default="paper", metadata={"choices": ("paper", "original")})
    seconds: float | None = None
    audio_steps: str = field(default="speech2face", metadata={"choices": ("speech2face", "original")})

    def loss_weights(self) -> VoiceLossWeights:
        return VoiceLossWeights(self.w_decoder, self.w_distance, self.w_distillation, self.temperature)


PROTOCOLS = ("retrieval", "sf2f")


@dataclass
class Evaluation:
    """Speech -> face retrieval of a voice encoder on one part of a split (and, with a
    decoder, reconstruction against the mean face plus the result grid).

    ``protocol="sf2f"`` scores the generated faces instead (``s2f.runtime.evaluate.scorecard``): it
    needs ``decoder`` and a judge, the ``face_encoder`` (PyTorch) or any face-recognition
    ONNX graph ``judge`` with its input convention (``judge_input``).

    Args:
        voice_encoder: save_pretrained directory, training run, or an original Speech-to-Face checkpoint.
        data: preprocessed tree ('s2f preprocess').
        output: JSON report (a .png goes beside it).
        split: split JSON ('s2f data split'); without it, every identity is scored.
        part: which part of the split.
        candidates: retrieval: faces ranked per voice clip.
        decoder: trained decoder (a run directory or checkpoint): adds reconstruction L1 vs the
            mean training face, and the result grid original | face->face | speech->face.
        device: auto, cpu or cuda.
        protocol: retrieval: rank face embeddings by the voice embedding. sf2f: the SF2F
            scorecard of the generated faces (needs --decoder and a judge): recall@1-50 in
            galleries of 100 identities, face->face and voice-embedding rows beside it.
        max_clips: sf2f: clips per identity to generate faces from (default: all).
        voices: for a voice encoder trained with --features on-the-fly: the corpus whose audio
            clips it is scored on (read as the model takes them), instead of DATA's arrays.
    """

    voice_encoder: Path = field(metadata={"positional": True})
    data: Path = field(metadata={"positional": True})
    output: Path = field(metadata={"short": "-o"})
    split: Path | None = None
    part: str = field(default="test", metadata={"choices": SPLIT_PARTS})
    candidates: int = 10
    decoder: Path | None = None
    device: str = "auto"
    original_decoder_output: str = "sigmoid"
    protocol: str = field(default="retrieval", metadata={"choices": PROTOCOLS})
    face_encoder: Path | None = None
    judge: Path | None = None
    judge_input: Any = None  # s2f.runtime.evaluate.scorecard.JudgeInput
    max_clips: int | None = None
    voices: Path | None = None


def train_config(values: dict[str, Any]) -> TrainConfig:
    """A ``TrainConfig`` from a dict that may hold other keys too (parsed flags)."""
    names = {f.name for f in fields(TrainConfig)}
    try:
        return TrainConfig(**{k: v for k, v in values.items() if k in names})
    except ValueError as err:
        raise InputError(None, str(err)) from None


def train_decoder(run: DecoderTraining) -> Path:
    """Train the face decoder; returns the run directory."""
    import torch

    from s2f.data.layout import embedding_dim, landmark_count
    from s2f.data.pairs import DecoderFaces
    from s2f.models.registry import MODELS
    from s2f.train.tasks import DecoderTask
    from s2f.train.trainer import Trainer, shutdown_distributed

    split = read_split(run.split)
    train = DecoderFaces(run.data, split["train"] if split else None, aligned=run.warp)
    val = DecoderFaces(run.data, split["val"], aligned=run.warp) if split and split["val"] else None

    torch.manual_seed(run.train.seed)
    points = landmark_count(run.data)
    extra: dict[str, Any] = {"texture_base": run.mean_start, "output_activation": run.output_activation}
    if run.warp:
        from s2f.data.align_faces import read_mean_landmarks

        mean = read_mean_landmarks(run.data)
        if mean.size != 2 * points:
            raise InputError(Path(run.data), f"mean_landmarks.npy has {mean.size // 2} points, the faces {points}: "
                                             "run 's2f preprocess faces' again")
        extra.update(warp=True, mean_landmarks=[float(v) for v in mean])
    model = MODELS["face_decoder"].build(run.size, embedding_dim=embedding_dim(run.data), num_landmarks=points,
                                         **extra)
    if run.mean_start:  # a resumed run's checkpoint then replaces these, texture base included
        from s2f.train.evaluate import mean_face

        texture, landmarks = mean_face(train, with_landmarks=True)
        model.start_from_mean(torch.from_numpy(texture), torch.from_numpy(landmarks), run.silent_texture_head)
    encoder = None
    if run.face_encoder:
        from s2f.models.face_encoder import load_face_encoder

        encoder = load_face_encoder(run.face_encoder)
    weights = run.loss_weights()
    task = DecoderTask(model, preview=val or train, weights=weights, face_encoder=encoder,
                       texture_space=run.texture_space)
    trainer = Trainer(task, train, val, run.out, run.train)
    if run.resume and not trainer.resume():
        log.info("no checkpoint in %s; starting afresh", run.out)
    trainer.fit()
    if trainer.dist.main:
        log.info("decoder: %s/latest.json -> best and latest checkpoints, metrics.csv, grids/", run.out)
    shutdown_distributed()
    return Path(run.out)


def train_voice(run: VoiceTraining) -> Path:
    """Train a voice encoder against the face embeddings; returns the run directory."""
    from dataclasses import replace

    import torch

    from s2f.data.layout import embedding_dim
    from s2f.models.loading import load_model_for
    from s2f.models.original import OriginalOptions
    from s2f.models.registry import voice_encoder_for
    from s2f.train.tasks import FaceHead, VoiceTask
    from s2f.train.trainer import Trainer, shutdown_distributed

    split = read_split(run.split)
    train, val, settings, features = voice_training_data(run, split)
    torch.manual_seed(run.train.seed)
    model = voice_encoder_for(run.encoder, run.size, embedding_dim(run.data), settings,
                              ast_pretrained=run.ast_pretrained, ast_head_first=bool(run.ast_head_epochs),
                              ast_top_layers=run.ast_top_layers)
    decoder = load_model_for("face_decoder", run.decoder, original=OriginalOptions(run.original_decoder_output),
                             flag="--decoder") if run.decoder else None
    face_head = None
    if run.face_encoder:
        from s2f.models.face_encoder import load_face_encoder

        encoder = load_face_encoder(run.face_encoder)
        if encoder.config.include_top:
            face_head = FaceHead(encoder)
    weights = run.loss_weights()
    task = VoiceTask(model, face_head, decoder, preview=val or train, weights=weights, features=features)
    # AST as the original trained it: the head alone first, then everything (or the top K layers)
    epochs = run.train.epochs
    stages = [(run.ast_head_epochs, "head"), (run.ast_head_epochs + epochs, run.ast_then)] \
        if run.encoder == "ast" and run.ast_head_epochs else [(epochs, None)]
    resume = run.resume
    for stage_epochs, mode in stages:
        if mode is not None:
            model.set_train_mode(mode, run.ast_top_layers)
        trainer = Trainer(task, train, val, run.out, replace(run.train, epochs=stage_epochs))
        if resume and not trainer.resume():
            log.info("no checkpoint in %s; starting afresh", run.out)
        resume = True  # the second AST stage continues from the first
        trainer.fit()
    if trainer.dist.main:
        log.info("voice encoder: %s/latest.json -> checkpoints, metrics.csv, grids/", run.out)
    shutdown_distributed()
    return Path(run.out)


def voice_training_data(run: VoiceTraining, split: dict | None) -> tuple[Any, Any, dict, Any]:
    """The training and validation pairs, the voice input's settings (they travel with the
    model into its exported bundle) and, on the fly, the feature step for the training device."""
    from s2f.data.layout import audio_settings
    from s2f.data.pairs import VoiceFacePairs

    train_ids = split["train"] if split else None
    val_ids = split["val"] if split and split["val"] else None
    if run.features not in FEATURE_PATHS:
        raise InputError(None, f"--features must be one of {', '.join(FEATURE_PATHS)}, got {run.features!r}")
    if run.features == "precomputed":
        if run.voices is not None or run.random_crop:
            raise InputError(None, "--voices and --random-crop read the clips themselves: add --features on-the-fly")
        train = VoiceFacePairs(run.data, run.pairing, train_ids)
        val = VoiceFacePairs(run.data, "all_to_one", val_ids) if val_ids else None
        log.info("voice features: precomputed arrays under %s (%d clips)", run.data, len(train.clips))
        return train, val, audio_settings(run.data, run.encoder), None
    from s2f.data.preprocess_audio import feature_settings
    from s2f.data.voice_clips import VoiceClipPairs
    from s2f.train.device_features import DeviceFeatures

    if run.voices is None:
        raise InputError(None, "--features on-the-fly needs --voices: the corpus with the audio clips")
    spec = on_the_fly_spec(run)
    train = VoiceClipPairs(run.data, run.voices, spec, run.pairing, train_ids, random_crop=run.random_crop,
                           seed=run.train.seed)
    val = VoiceClipPairs(run.data, run.voices, spec, "all_to_one", val_ids) if val_ids else None
    log.info("voice features: computed on the training device from %d clips under %s (%s s windows, %s)",
             len(train.clips), run.voices, spec.seconds,
             "a random crop each epoch" if run.random_crop else "the first window")
    return train, val, feature_settings(spec), DeviceFeatures(spec)


def on_the_fly_spec(run: VoiceTraining):
    """The voice input of an on-the-fly run: its flags, and for AST the corpus's own fbank
    statistics ('s2f data stats' writes them into the corpus) or else AudioSet's."""
    from s2f.data.feature_stats import spec_with_stats

    try:
        spec, measured = spec_with_stats(run.voices, run.encoder, run.variant, run.seconds, run.audio_steps)
    except ValueError as err:
        raise InputError(None, str(err)) from None
    if measured:
        log.info("fbank mean %s, std %s from %s", measured["mean"], measured["std"], run.voices)
    return spec


def evaluate(run: Evaluation) -> dict[str, Any]:
    """Write the JSON report (and its PNG plot, and with a decoder the result grid); return it."""
    from s2f.data.layout import has_decoder_faces
    from s2f.models.loading import checkpoint_dir, load_model_for
    from s2f.models.original import OriginalOptions
    from s2f.train.evaluate import evaluate_voice_encoder, plot_recall
    from s2f.train.trainer import pick_device

    if run.protocol not in PROTOCOLS:
        raise InputError(None, f"--protocol must be one of {', '.join(PROTOCOLS)}, got {run.protocol!r}")
    if run.protocol == "sf2f":
        return evaluate_sf2f(run)
    directory = checkpoint_dir(run.voice_encoder)
    device = pick_device(run.device)
    model = load_model_for("voice_encoder", directory, str(device))
    split = read_split(run.split)
    identities = split[run.part] if split else None
    result = evaluate_voice_encoder(model, run.data, identities, run.candidates, device=device, voices=run.voices)
    result["checkpoint"] = str(directory)
    output = Path(run.output)
    if run.decoder:
        from s2f.data.pairs import DecoderFaces
        from s2f.train.evaluate import decoder_reconstruction, held_out_pairs, mean_face, result_grid

        decoder_dir = checkpoint_dir(run.decoder)
        decoder = load_model_for("face_decoder", decoder_dir, str(device),
                                 OriginalOptions(run.original_decoder_output), flag="--decoder")
        if has_decoder_faces(Path(run.data)):
            baseline = mean_face(DecoderFaces(run.data, split["train"] if split else None))
            result.update(decoder_reconstruction(decoder, DecoderFaces(run.data, identities), baseline, device))
        else:  # the original project's voice datasets keep embeddings, not photos
            log.warning("%s holds no face photos (targets): no reconstruction L1, the grid shows grey originals",
                        run.data)
        result["decoder_checkpoint"] = str(decoder_dir)
        result["grid"] = str(result_grid(model, decoder, held_out_pairs(run.data, identities, model, run.voices),
                                         output.with_name(output.stem + "_grid.png"), device=device))
    with atomic_output(output, "w") as handle:
        json.dump(result, handle, indent=2)
    plot_recall(result, output.with_suffix(".png"))
    return result


def evaluate_sf2f(run: Evaluation) -> dict[str, Any]:
    """The SF2F scorecard of the voice encoder and decoder: JSON, recall-curve PNG, result grid."""
    from s2f.models.loading import checkpoint_dir, load_model_for
    from s2f.models.original import OriginalOptions
    from s2f.runtime.evaluate.grid import save_face_grid
    from s2f.runtime.evaluate.scorecard import JudgeInput, onnx_judge, plot_recall_curve, save_report, scorecard
    from s2f.train.scorecard import collect_scorecard_inputs, torch_judge
    from s2f.train.trainer import pick_device

    if run.decoder is None:
        raise InputError(None, "--protocol sf2f scores generated faces: give --decoder")
    if (run.face_encoder is None) == (run.judge is None):
        raise InputError(None, "--protocol sf2f needs one judge: --face-encoder (the face encoder the embeddings "
                               "came from) or --judge FILE.onnx (any face-recognition graph)")
    device = pick_device(run.device)
    directory = checkpoint_dir(run.voice_encoder)
    voice = load_model_for("voice_encoder", directory, str(device))
    decoder = load_model_for("face_decoder", checkpoint_dir(run.decoder), str(device),
                             OriginalOptions(run.original_decoder_output), flag="--decoder")
    if run.judge is not None:
        judge, judge_name = onnx_judge(run.judge, run.judge_input or JudgeInput(), str(device)), Path(run.judge).name
    else:
        from s2f.models.face_encoder import load_face_encoder

        encoder = load_face_encoder(run.face_encoder, str(device))
        judge, judge_name = torch_judge(encoder, device), f"face encoder {Path(run.face_encoder).name}"
    split = read_split(run.split)
    identities = split[run.part] if split else None
    inputs, rows = collect_scorecard_inputs(voice, decoder, Path(run.data), identities, judge, device,
                                            max_clips=run.max_clips, voices=run.voices)
    report = scorecard(inputs, judge_name)
    output = Path(run.output)
    report.update(checkpoint=str(directory), decoder_checkpoint=str(checkpoint_dir(run.decoder)),
                  part=run.part if split else "all",
                  curve=str(output.with_suffix(".png")), grid=str(output.with_name(output.stem + "_grid.png")))
    save_face_grid(report["grid"], rows[:8], ["original", "face->face", "speech->face"])
    plot_recall_curve(report, report["curve"])
    save_report(report, output)
    return report


def decoder_scores(decoder_dir: Path, data: Path, split: Path | None, face_encoder: Path | None,
                   voice_encoder: Path | None = None, max_clips: int | None = None,
                   device: str = "cpu") -> dict[str, Any]:
    """A decoder on the test identities: texture L1 against the mean training face's,
    landmark error (pixels) against the mean training landmarks', and (with ``face_encoder``,
    the judge) the SF2F scorecard: face->face, and speech->face with ``voice_encoder``
    (``max_clips`` per identity). Returns them with the grid rows' images under ``rows``."""
    from s2f.data.pairs import DecoderFaces
    from s2f.models.face_encoder import load_face_encoder
    from s2f.models.loading import checkpoint_dir, load_model_for
    from s2f.runtime.evaluate.scorecard import scorecard
    from s2f.train.evaluate import decoder_reconstruction, landmark_errors, mean_face
    from s2f.train.scorecard import collect_scorecard_inputs, torch_judge

    parts = read_split(split)
    decoder = load_model_for("face_decoder", checkpoint_dir(decoder_dir), device, flag="--decoder")
    train = DecoderFaces(data, parts["train"] if parts else None)
    test = DecoderFaces(data, parts["test"] if parts else None)
    texture, landmarks = mean_face(train, with_landmarks=True)
    result = decoder_reconstruction(decoder, test, texture, device)
    result.update(landmark_errors(decoder, test, landmarks, device))
    if face_encoder is None:
        return result
    voice = load_model_for("voice_encoder", checkpoint_dir(voice_encoder), device) if voice_encoder else None
    judge = torch_judge(load_face_encoder(face_encoder, device), device)
    inputs, rows = collect_scorecard_inputs(voice, decoder, Path(data), parts["test"] if parts else None, judge,
                                            device, max_clips=max_clips)
    result["sf2f"] = scorecard(inputs, f"face encoder {Path(face_encoder).name}")
    result["rows"] = rows
    return result
