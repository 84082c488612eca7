"""``s2f preprocess audio|faces`` and ``s2f data synth|split``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from s2f.data.jobs import default_workers


# Over 60 lines on purpose: one add_argument per flag of five commands, declarations and no logic.
def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from s2f.data.landmarks import LANDMARK_MODES
    from s2f.runtime.preprocess.voice_input import AUDIO_STEPS, ENCODERS, VE_VARIANTS

    pre = subparsers.add_parser("preprocess", help="raw audio / face photos -> model inputs and targets")
    kinds = pre.add_subparsers(dest="kind", metavar="KIND", required=True)
    audio = kinds.add_parser(
        "audio", help="voice clips -> voice-encoder features (.npy), mirroring the tree",
        description="Every audio file under DATA_DIR (wav, flac, ogg, mp3, m4a, ...) is decoded to 16 kHz "
                    "mono, RMS-normalised to -23 dBFS, looped or cropped to the encoder's clip length and "
                    "turned into its input: a 2x257xT spectrogram (ve_conv) or a 1024x128 fbank (ast). "
                    "Outputs mirror the input tree under OUT_DIR. Reruns skip finished files; a bad file "
                    "is reported in OUT_DIR/report_audio.json and skipped.")
    audio.add_argument("data_dir", type=Path)
    audio.add_argument("out_dir", type=Path)
    audio.add_argument("--encoder", choices=ENCODERS, required=True)
    audio.add_argument("--variant", choices=VE_VARIANTS, default="paper",
                       help="ve_conv spectrogram: paper (2x257x598) or original (2x257x601)")
    audio.add_argument("--seconds", type=float, help="clip length (default 6 for ve_conv, 10.26 for ast)")
    audio.add_argument("--mean", type=float, help="AST fbank mean (default: DATA_DIR/audio_stats.json from 's2f data "
                                                  "stats', else AudioSet's -4.2677393)")
    audio.add_argument("--std", type=float, help="AST fbank std (default: as --mean; AudioSet's 4.5689974)")
    audio.add_argument("--audio-steps", choices=AUDIO_STEPS, default="speech2face",
                       help="original: the original project's PCM16 rounding around a loudness step measured over "
                            "the whole file, for data meant for its models (default: loudness of the clip used)")
    _common(audio)
    audio.set_defaults(func=run_preprocess_audio, extras=("audio",), what_runs="preprocess audio")

    faces = kinds.add_parser(
        "faces", help="face photos -> embeddings, landmarks and decoder targets (.npy)",
        description="Every image under DATA_DIR gets <stem>_embedding.npy (the face encoder's descriptor, "
                    "batched), <stem>_target.npy (224x224 uint8, the decoder's target) and "
                    "<stem>_landmarks.npy (on the target: 72 points as the original, 68, or 'given' to "
                    "take <stem>_landmarks.npy from beside the photo), mirroring the tree under OUT_DIR.")
    faces.add_argument("data_dir", type=Path)
    faces.add_argument("out_dir", type=Path)
    faces.add_argument("--face-encoder", type=Path, required=True,
                       help="converted face encoder (.safetensors from 's2f convert', or a save_pretrained dir)")
    faces.add_argument("--landmarks", choices=(*LANDMARK_MODES, "none"), default="dlib72",
                       help="dlib72: the original's 72 points (dlib's 68 with four lip points repeated); dlib68: "
                            "dlib's own 68; given: <stem>_landmarks.npy beside each photo. The decoder trains on "
                            "whichever count the data has ('none' is refused: the decoder needs landmarks)")
    faces.add_argument("--batch-size", type=int, default=32)
    faces.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    faces.add_argument("--split", type=Path,
                       help="split JSON ('s2f data split'): the aligned textures' mean landmarks come from its "
                            "training identities (default: every face)")
    _common(faces)
    faces.set_defaults(func=run_preprocess_faces, extras=("train",), what_runs="preprocess faces")

    data = subparsers.add_parser("data", help="synthetic corpus, VoxCeleb ingest, fbank statistics, identity splits")
    actions = data.add_subparsers(dest="action", metavar="ACTION", required=True)
    synth = actions.add_parser(
        "synth", help="write a synthetic voice+face corpus (no download needed)",
        description="Speech-like clips and face images whose traits (pitch, formants, breathiness, "
                    "tempo <-> face width, jaw, skin tone, hair) follow the same hidden identity "
                    "parameters, in the raw dataset layout. Deterministic from --seed; rerunning "
                    "completes an interrupted corpus.")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--identities", type=int, default=100)
    synth.add_argument("--clips", type=int, default=4, help="clips per identity")
    synth.add_argument("--images", type=int, default=3, help="images per identity")
    synth.add_argument("--seconds", type=float, default=6.0, help="mean clip length (each varies 0.6-1.2x)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=default_workers())
    synth.set_defaults(func=run_synth, extras=("audio",), what_runs="data synth")

    imported = actions.add_parser(
        "import-original", help="the original Speech-to-Face project's preprocessed datasets -> a speech2face tree",
        description="Turn the original project's voice-encoder dataset (Person/audios/*.npy spectrograms or "
                    "fbanks, Person/images/*.npy embeddings) and its decoder dataset (Person/x.jpg with "
                    "x_embedding.npy and x_landmarks.npy) into a tree 's2f train' and 's2f evaluate' read. Arrays "
                    "are hard-linked (symbolic links across file systems), not copied; each decoder photo gets its "
                    "224x224 target. The features (VE_conv 'original' 2x257x601 or AST 1x1024x128) are read from "
                    "the arrays' shapes; mixed or unknown shapes are refused. Rerunning completes an import.")
    imported.add_argument("data_dir", type=Path, help="the original dataset's root (one folder per person)")
    imported.add_argument("-o", "--output", type=Path, required=True, help="speech2face tree to write")
    imported.set_defaults(func=run_import_original, what_runs="data import-original")

    vox = actions.add_parser(
        "voxceleb", help="VoxCeleb1/2 voices + HQ-VoxCeleb faces -> one corpus (links, not copies)",
        description="Read the downloads as unpacked (VoxCeleb1 wav/idNNNNN/<video>/<clip>.wav, VoxCeleb2 "
                    "aac/idNNNNN/<video>/<clip>.m4a, HQ-VoxCeleb vox1|vox2/masked_faces|origin_faces/<Name>/), name "
                    "every speaker id through the metadata (vox1_meta.csv; HQ-VoxCeleb's full_vox2_meta.csv), and "
                    "link OUT/<Name>/audios/<id>/<video>/<clip> and OUT/<Name>/images/<file>. Names are compared in "
                    "Unicode NFC; a person in both datasets is one identity; only identities with voices and faces "
                    "are kept, the rest are listed in OUT/ingest.json. Atomic, and a rerun with the same inputs "
                    "changes nothing.")
    vox.add_argument("hq_dir", type=Path, help="HQ-VoxCeleb's root (vox1/, vox2/, meta_info/)")
    vox.add_argument("-o", "--output", type=Path, required=True, help="the corpus to write")
    vox.add_argument("--vox1", type=Path, nargs="+", default=[], metavar="DIR",
                     help="VoxCeleb1 audio roots (dev and test), each holding wav/idNNNNN/ or idNNNNN/")
    vox.add_argument("--vox1-meta", type=Path, help="VoxCeleb1's vox1_meta.csv (ids -> names)")
    vox.add_argument("--vox2", type=Path, nargs="+", default=[], metavar="DIR",
                     help="VoxCeleb2 audio roots (dev and test), each holding aac/idNNNNN/ or idNNNNN/")
    vox.add_argument("--vox2-meta", type=Path,
                     help="ids -> names for VoxCeleb2 (default: HQ_DIR/meta_info/full_vox2_meta.csv)")
    vox.add_argument("--faces", choices=("masked", "origin"), default="masked",
                     help="HQ-VoxCeleb's masked_faces (the original's choice) or origin_faces")
    vox.add_argument("--max-clips-per-video", type=int, metavar="N",
                     help="at most N clips of each video, in clip order (the original used up to 20)")
    vox.set_defaults(func=run_voxceleb, what_runs="data voxceleb")

    stats = actions.add_parser(
        "stats", help="the dataset's own AST fbank mean and std -> DATA_DIR/audio_stats.json",
        description="Measure the AST fbank's mean and standard deviation over the training identities' clips "
                    "(raw clips, or the arrays of a preprocessed tree) and write DATA_DIR/audio_stats.json, which "
                    "'s2f preprocess audio --encoder ast' uses when no --mean/--std is given; training and the "
                    "exported bundle take them from the preprocessed tree.")
    stats.add_argument("data_dir", type=Path)
    stats.add_argument("--encoder", choices=("ast",), default="ast")
    stats.add_argument("--split", type=Path, help="split JSON: only its training identities (default: every identity)")
    stats.add_argument("--max-clips", type=int, default=5000,
                       help="measure an evenly spaced sample of this many clips (0: every clip)")
    stats.add_argument("--seconds", type=float,
                       help="clip length, as 's2f preprocess audio --seconds' will use (default: the encoder's 10.26)")
    stats.add_argument("--workers", type=int, default=default_workers(), help="processes (default: all cores)")
    stats.set_defaults(func=run_stats, extras=("audio",), what_runs="data stats")

    split = actions.add_parser(
        "split", help="deterministic train/val/test split by identity",
        description="Assign every identity folder of DATA_DIR to train, val or test by a hash of the "
                    "seed and its own name alone: stable across machines, and adding identities never "
                    "moves an existing one. Proportions hold on average; --exact makes them exact.")
    split.add_argument("data_dir", type=Path)
    split.add_argument("-o", "--output", type=Path, required=True, help="split JSON to write")
    split.add_argument("--fractions", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VAL", "TEST"))
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--exact", action="store_true",
                       help="exact proportions (per stratum with --strata) by cutting the hash ranking; NOT "
                            "stable: adding identities later moves some existing ones between parts")
    split.add_argument("--strata", type=Path, help="with --exact: CSV with identity and the --strata-column")
    split.add_argument("--strata-column", default="register_group")
    split.set_defaults(func=run_split)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=default_workers(), help="processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo finished files (and accept changed settings)")
    parser.add_argument("--shard", metavar="K/N",
                        help="do only shard K of N (K from 0) of the files, into the same OUT_DIR; default: "
                             "torchrun's RANK/WORLD_SIZE or a Slurm array's task, else all files")


def _finish(report, out_dir: Path, report_name: str) -> int:
    print(report.summary(out_dir / report_name) + (f" [{report.shard}]" if report.shard else ""))
    return 0 if report.written + report.already_done > 0 or report.total == 0 else 1


def run_preprocess_audio(args: argparse.Namespace) -> int:
    from s2f.core.shards import resolve_shard
    from s2f.data.feature_stats import AUDIO_STATS, spec_with_stats
    from s2f.data.layout import AUDIO_REPORT, shard_report_name
    from s2f.data.preprocess_audio import preprocess_audio

    spec, measured = spec_with_stats(args.data_dir, args.encoder, args.variant, args.seconds, args.audio_steps,
                                     args.mean, args.std)
    if measured:
        print(f"fbank mean {measured['mean']}, std {measured['std']} from {args.data_dir / AUDIO_STATS}")
    shard = resolve_shard(args.shard)
    report = preprocess_audio(args.data_dir, args.out_dir, spec, args.workers, args.overwrite, shard)
    return _finish(report, args.out_dir, shard_report_name(AUDIO_REPORT, shard))


def run_preprocess_faces(args: argparse.Namespace) -> int:
    from s2f.core.shards import resolve_shard
    from s2f.data.layout import FACE_REPORT, shard_report_name
    from s2f.data.preprocess_faces import preprocess_faces

    shard = resolve_shard(args.shard)
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per process on a node
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    from s2f.core.splits import read_split

    split = read_split(args.split)
    report = preprocess_faces(args.data_dir, args.out_dir, args.face_encoder, args.landmarks, args.workers,
                              args.batch_size, device, args.overwrite, shard,
                              train_identities=split["train"] if split else None)
    return _finish(report, args.out_dir, shard_report_name(FACE_REPORT, shard))


def run_synth(args: argparse.Namespace) -> int:
    from s2f.data.synth import SynthConfig, synthesize_corpus

    config = SynthConfig(identities=args.identities, clips=args.clips, images=args.images,
                         seconds=args.seconds, seed=args.seed)
    csv_path = synthesize_corpus(args.out_dir, config, args.workers)
    print(f"wrote {config.identities} identities x ({config.clips} clips, {config.images} images) to "
          f"{args.out_dir} (traits in {csv_path})")
    return 0


def run_import_original(args: argparse.Namespace) -> int:
    from s2f.data.import_original import import_original_dataset

    report = import_original_dataset(args.data_dir, args.output)
    print(f"imported {args.data_dir} -> {args.output}: {report.summary()}")
    return 0


def run_voxceleb(args: argparse.Namespace) -> int:
    from s2f.data.voxceleb import VoxCelebSources, ingest_voxceleb

    sources = VoxCelebSources(args.hq_dir, tuple(args.vox1), args.vox1_meta, tuple(args.vox2), args.vox2_meta,
                              args.faces, args.max_clips_per_video)
    print(ingest_voxceleb(sources, args.output).summary(args.output))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from s2f.data.feature_stats import AUDIO_STATS, measure_stats

    stats = measure_stats(args.data_dir, args.encoder, args.split, args.max_clips, args.workers, args.seconds)
    print(f"{stats.summary()} -> {args.data_dir / AUDIO_STATS}")
    return 0


def run_split(args: argparse.Namespace) -> int:
    from s2f.data.split import write_split

    split = write_split(args.data_dir, args.output, args.fractions, args.seed, args.strata, args.strata_column,
                        args.exact)
    print(", ".join(f"{name}: {len(members)}" for name, members in split.items()) + f" identities -> {args.output}")
    return 0
