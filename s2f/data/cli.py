"""``s2f preprocess audio|faces`` and ``s2f data synth|split``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from s2f.core.config_flags import add_command, config_from_args
from s2f.data.jobs import default_workers
from s2f.data.synth import SynthConfig
from s2f.data.voxceleb import VoxCelebSources


@dataclass(kw_only=True)
class SynthCommand:
    """Args:
        out_dir: where the corpus goes.
        workers: processes (default: all cores).
        corpus: what to draw.
    """

    out_dir: Path = field(metadata={"positional": True})
    workers: int = field(default_factory=default_workers)
    corpus: SynthConfig = field(default_factory=SynthConfig)


@dataclass(kw_only=True)
class ImportCommand:
    """Args:
        data_dir: the original dataset's root (one folder per person).
        output: speech2face tree to write.
    """

    data_dir: Path = field(metadata={"positional": True})
    output: Path = field(metadata={"short": "-o"})


@dataclass(kw_only=True)
class VoxCelebCommand:
    """Args:
        output: the corpus to write.
        sources: what was downloaded.
    """

    output: Path = field(metadata={"short": "-o"})
    sources: VoxCelebSources


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from s2f.data.feature_stats import StatsConfig
    from s2f.data.preprocess_audio import AudioPreprocessing
    from s2f.data.preprocess_faces import FacePreprocessing
    from s2f.data.split import SplitConfig

    pre = subparsers.add_parser("preprocess", help="raw audio / face photos -> model inputs and targets")
    kinds = pre.add_subparsers(dest="kind", metavar="KIND", required=True)
    add_command(kinds, "audio", AudioPreprocessing, run_preprocess_audio, extras=("audio",),
                what_runs="preprocess audio",
                help="voice clips -> voice-encoder features (.npy), mirroring the tree",
                description="Every audio file under DATA_DIR (wav, flac, ogg, mp3, m4a, ...) is decoded to 16 kHz "
                            "mono, RMS-normalised to -23 dBFS, looped or cropped to the encoder's clip length and "
                            "turned into its input: a 2x257xT spectrogram (ve_conv) or a 1024x128 fbank (ast). Outputs"
                            " mirror the input tree under OUT_DIR. Reruns skip finished files; a bad file is reported "
                            "in OUT_DIR/report_audio.json and skipped.")

    add_command(kinds, "faces", FacePreprocessing, run_preprocess_faces, extras=("train",),
                what_runs="preprocess faces",
                help="face photos -> embeddings, landmarks and decoder targets (.npy)",
                description="Every image under DATA_DIR gets <stem>_embedding.npy (the face encoder's descriptor, "
                            "batched), <stem>_target.npy (224x224 uint8, the decoder's target) and "
                            "<stem>_landmarks.npy (on the target: 72 points as the original, 68, or 'given' to take "
                            "<stem>_landmarks.npy from beside the photo), mirroring the tree under OUT_DIR.")

    data = subparsers.add_parser("data", help="synthetic corpus, VoxCeleb ingest, fbank statistics, identity splits")
    actions = data.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_command(actions, "synth", SynthCommand, run_synth, extras=("audio",), what_runs="data synth",
                help="write a synthetic voice+face corpus (no download needed)",
                description="Speech-like clips and face images whose traits (pitch, formants, breathiness, tempo <-> "
                            "face width, jaw, skin tone, hair) follow the same hidden identity parameters, in the raw "
                            "dataset layout. Deterministic from --seed; rerunning completes an interrupted corpus.")

    add_command(actions, "import-original", ImportCommand, run_import_original, what_runs="data import-original",
                help="the original Speech-to-Face project's preprocessed datasets -> a speech2face tree",
                description="Turn the original project's voice-encoder dataset (Person/audios/*.npy spectrograms or "
                            "fbanks, Person/images/*.npy embeddings) and its decoder dataset (Person/x.jpg with "
                            "x_embedding.npy and x_landmarks.npy) into a tree 's2f train' and 's2f evaluate' read. "
                            "Arrays are hard-linked (symbolic links across file systems), not copied; each decoder "
                            "photo gets its 224x224 target. The features (VE_conv 'original' 2x257x601 or AST "
                            "1x1024x128) are read from the arrays' shapes; mixed or unknown shapes are refused. "
                            "Rerunning completes an import.")

    add_command(actions, "voxceleb", VoxCelebCommand, run_voxceleb, what_runs="data voxceleb",
                help="VoxCeleb1/2 voices + HQ-VoxCeleb faces -> one corpus (links, not copies)",
                description="Read the downloads as unpacked (VoxCeleb1 wav/idNNNNN/<video>/<clip>.wav, VoxCeleb2 "
                            "aac/idNNNNN/<video>/<clip>.m4a, HQ-VoxCeleb vox1|vox2/masked_faces|origin_faces/<Name>/),"
                            " name every speaker id through the metadata (vox1_meta.csv; HQ-VoxCeleb's "
                            "full_vox2_meta.csv), and link OUT/<Name>/audios/<id>/<video>/<clip> and "
                            "OUT/<Name>/images/<file>. Names are compared in Unicode NFC; a person in both datasets is"
                            " one identity; only identities with voices and faces are kept, the rest are listed in "
                            "OUT/ingest.json. Atomic, and a rerun with the same inputs changes nothing.")

    add_command(actions, "stats", StatsConfig, run_stats, extras=("audio",), what_runs="data stats",
                help="the dataset's own AST fbank mean and std -> DATA_DIR/audio_stats.json",
                description="Measure the AST fbank's mean and standard deviation over the training identities' clips "
                            "(raw clips, or the arrays of a preprocessed tree) and write DATA_DIR/audio_stats.json, "
                            "which 's2f preprocess audio --encoder ast' uses when no --mean/--std is given; training "
                            "and the exported bundle take them from the preprocessed tree.")

    add_command(actions, "split", SplitConfig, run_split,
                help="deterministic train/val/test split by identity",
                description="Assign every identity folder of DATA_DIR to train, val or test by a hash of the seed and "
                            "its own name alone: stable across machines, and adding identities never moves an existing"
                            " one. Proportions hold on average; --exact makes them exact.")


def _finish(report) -> int:
    print(report.summary())
    return 0 if report.produced_something else 1


def run_preprocess_audio(args: argparse.Namespace) -> int:
    from s2f.data.preprocess_audio import AudioPreprocessing, preprocess_audio

    config = config_from_args(AudioPreprocessing, args)
    return _finish(preprocess_audio(config.data_dir, config.out_dir, config.spec(), config.jobs))


def run_preprocess_faces(args: argparse.Namespace) -> int:
    from s2f.data.preprocess_faces import FacePreprocessing, preprocess_faces

    return _finish(preprocess_faces(config_from_args(FacePreprocessing, args)))


def run_synth(args: argparse.Namespace) -> int:
    from s2f.data.synth import synthesize_corpus

    command = config_from_args(SynthCommand, args)
    config = command.corpus
    csv_path = synthesize_corpus(command.out_dir, config, command.workers)
    print(f"wrote {config.identities} identities x ({config.clips} clips, {config.images} images) to "
          f"{command.out_dir} (traits in {csv_path})")
    return 0


def run_import_original(args: argparse.Namespace) -> int:
    from s2f.data.import_original import import_original_dataset

    command = config_from_args(ImportCommand, args)
    report = import_original_dataset(command.data_dir, command.output)
    print(f"imported {command.data_dir} -> {command.output}: {report.summary()}")
    return 0


def run_voxceleb(args: argparse.Namespace) -> int:
    from s2f.data.voxceleb import ingest_voxceleb

    command = config_from_args(VoxCelebCommand, args)
    print(ingest_voxceleb(command.sources, command.output).summary(command.output))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from s2f.data.feature_stats import AUDIO_STATS, StatsConfig, measure_stats

    config = config_from_args(StatsConfig, args)
    stats = measure_stats(config)
    print(f"{stats.summary()} -> {config.data_dir / AUDIO_STATS}")
    return 0


def run_split(args: argparse.Namespace) -> int:
    from s2f.data.split import SplitConfig, write_split

    config = config_from_args(SplitConfig, args)
    split = write_split(config)
    print(", ".join(f"{name}: {len(members)}" for name, members in split.items()) + f" identities -> {config.output}")
    return 0
