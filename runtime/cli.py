"""``s2f-runtime``: speech -> face and face -> face from an exported bundle, with
onnxruntime (or OpenVINO, ``--backend openvino|auto``) alone: this command never imports torch.

    s2f-runtime speech2face voice.wav -o face.png --bundle bundle/
    s2f-runtime speech2face voices/ -o faces/ --bundle bundle/       # directory in, directory out
    s2f-runtime speech2face voice.wav -o face.png --bundle bundle/ --backend auto   # fastest that passes
    s2f-runtime face2face photo.jpg -o face.png --bundle bundle/
    s2f-runtime grid --bundle bundle/ --faces a.jpg b.jpg --voices a.wav b.wav -o grid.png
    s2f-runtime serve --bundle bundle/ --port 8000                  # HTTP API and a web page
    s2f-runtime scorecard --bundle bundle/ corpus/ --split split.json -o scorecard.json
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from s2f.core.command_line import add_verbosity_flags, run_command
from s2f.core.config_flags import add_command, config_from_args
from s2f.core.errors import InputError
from s2f.core.listing import paths_under
from s2f.runtime.directory import DEFAULT_BATCH_SIZE
from s2f.runtime.engines.options import RunOptions

RUN_FLAGS_ELSEWHERE = ("prepack",)  # each command decides: a one-shot command opens fast, a batch prepacks


@dataclass
class BundleCommand:
    """Args:
        bundle: directory from 's2f export bundle'.
        run: how the bundle runs.
    """

    bundle: Path
    run: RunOptions = field(default_factory=RunOptions)


@dataclass(kw_only=True)
class ConvertCommand(BundleCommand):
    """Args:
        input: a file, or a directory of them (mirrored into OUTPUT).
        output: PNG file, or directory for a directory.
        batch_size: directory mode: files per run, decoded ahead in threads.
        shard: directory mode: only shard K of N (K from 0) of the files, into the same OUTPUT; default:
            torchrun's RANK/WORLD_SIZE or a Slurm array's task, else all files.
    """

    input: Path = field(metadata={"positional": True})
    output: Path = field(metadata={"short": "-o"})
    batch_size: int = DEFAULT_BATCH_SIZE
    shard: str | None = field(default=None, metadata={"metavar": "K/N"})

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(None, f"--batch-size must be at least 1, got {self.batch_size}")


@dataclass(kw_only=True)
class GridCommand(BundleCommand):
    """Args:
        faces: face photos, one row each.
        voices: one voice clip per face, same order.
        output: the grid PNG.
    """

    faces: tuple[Path, ...]
    voices: tuple[Path, ...]
    output: Path = field(metadata={"short": "-o"})


def build_parser() -> argparse.ArgumentParser:
    from s2f.runtime.evaluate.score_bundle import ScoreConfig
    from s2f.runtime.evaluate.scorecard import add_judge_flags
    from s2f.runtime.serve.server import ServeConfig

    parser = argparse.ArgumentParser(prog="s2f-runtime", description=__doc__.split("\n\n")[0])
    add_verbosity_flags(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, what in (("speech2face", "voice clip(s)"), ("face2face", "face photo(s)")):
        add_command(commands, name, ConvertCommand, run_convert, exclude=RUN_FLAGS_ELSEWHERE, mode=name,
                    extras=("runtime",), what_runs=name,
                    help=f"{what} -> decoded face PNG(s)")
    add_command(commands, "grid", GridCommand, run_grid, exclude=RUN_FLAGS_ELSEWHERE, extras=("runtime",),
                what_runs="grid",
                help="original | face->face | speech->face, one row per person")

    score = add_command(commands, "scorecard", ScoreConfig, run_scorecard,
                        exclude=(*RUN_FLAGS_ELSEWHERE, "judge", "judge_input"), extras=("runtime",),
                        what_runs="scorecard",
                        help="the SF2F scorecard of the bundle's generated faces on a corpus",
                        description="Generate a face from every clip and photo of the corpus's test identities, embed "
                                    "them and the real photos with a face-recognition judge (the bundle's face "
                                    "encoder, or --judge), and report recall@1/2/5/10/20/50 in galleries of 100 "
                                    "identities (three averaged with 300 or more, else one of all), chance, and "
                                    "cosine/L1/L2 to the real faces: speech->face, face->face and the voice embedding "
                                    "itself. JSON, a recall-curve PNG and the result grid.")
    add_judge_flags(score, face_encoder=False)

    add_command(commands, "serve", ServeConfig, run_serve, exclude=RUN_FLAGS_ELSEWHERE, extras=("serve",),
                what_runs="serve",
                help="HTTP service and web page: POST /v1/speech2face, /v1/face2face",
                description="Serve the bundle over HTTP (Starlette on uvicorn): POST /v1/speech2face (an audio file, "
                            "raw or multipart field 'audio') and /v1/face2face (a photo, field 'image') answer "
                            "image/png, or JSON with Accept: application/json; GET /healthz, /readyz, /metrics "
                            "(Prometheus) and / (a page that records your voice). Concurrent requests are micro-"
                            "batched. Stateless: run replicas behind any load balancer. SIGTERM finishes the requests "
                            "in flight, then exits.")
    return parser


def _save_png(path: Path, image) -> None:
    from PIL import Image

    from s2f.core.atomic import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as handle:
        Image.fromarray(image).save(handle, format="PNG")


def run_convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from s2f.core.progress import progress_bar
    from s2f.core.shards import resolve_shard
    from s2f.runtime.directory import run_directory
    from s2f.runtime.pipeline import FaceToFace, SpeechToFace
    from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES
    from s2f.runtime.preprocess.images import IMAGE_SUFFIXES

    command = config_from_args(ConvertCommand, args)
    one_file = command.input.is_file()  # one-shot: open fast rather than prepack for later batches
    if not one_file and not command.input.is_dir():
        raise InputError(command.input, "not found")
    if one_file and command.shard:
        raise InputError(command.input, "--shard splits a directory of files; this is one file")
    model = (SpeechToFace if args.mode == "speech2face" else FaceToFace)(command.bundle, command.run,
                                                                         prepack=not one_file)
    if one_file:
        _save_png(command.output, model.generate_from_file(command.input).image)
        print(f"{command.input} -> {command.output}")
        return 0
    suffixes = AUDIO_SUFFIXES if args.mode == "speech2face" else IMAGE_SUFFIXES
    inputs = paths_under(command.input, suffixes)
    if not inputs:
        raise InputError(command.input, f"no {'audio' if args.mode == 'speech2face' else 'image'} files found")
    shard = resolve_shard(command.shard)
    mine = shard.select(inputs)
    bar = progress_bar(total=len(mine), desc=args.mode, unit="file")

    def save(path: Path, face) -> None:
        _save_png(command.output / path.relative_to(command.input).with_suffix(".png"), face.image)

    def on_file(path: Path, error: str | None) -> None:
        bar.update(1)
        if error:
            tqdm.write(f"s2f-runtime: skipped {error}", file=sys.stderr)

    with bar:
        run = run_directory(model, mine, save, command.batch_size, on_file=on_file)
    where = "" if shard.whole else f" [{shard}]"
    print(f"{run.written} of {len(mine)} files -> {command.output}{where}"
          + (f"; {len(run.failed)} failed" if run.failed else ""))
    return 0 if run.written or not mine else 1


def run_grid(args: argparse.Namespace) -> int:
    from s2f.runtime.evaluate.grid import save_face_grid
    from s2f.runtime.pipeline import FaceToFace, SpeechToFace, original

    command = config_from_args(GridCommand, args)
    if len(command.faces) != len(command.voices):
        raise InputError(None, f"{len(command.faces)} faces but {len(command.voices)} voices: give one voice per face")
    face_to_face = FaceToFace(command.bundle, command.run, prepack=False)
    speech_to_face = SpeechToFace(face_to_face.bundle, command.run, prepack=False)
    rows = []
    for face, voice in zip(command.faces, command.voices, strict=True):
        rows.append([original(face), face_to_face.generate_from_file(face).image,
                     speech_to_face.generate_from_file(voice).image])
    save_face_grid(command.output, rows, ["original", "face->face", "speech->face"])
    print(f"grid of {len(rows)} people -> {command.output}")
    return 0


def run_scorecard(args: argparse.Namespace) -> int:
    from s2f.runtime.evaluate.score_bundle import ScoreConfig, score_bundle
    from s2f.runtime.evaluate.scorecard import judge_input, summary_lines

    report = score_bundle(config_from_args(ScoreConfig, args, judge=args.judge, judge_input=judge_input(args)))
    print("\n".join(summary_lines(report)))
    print(f"report {args.output}; recall curve {report['curve']}; grid {report['grid']}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from s2f.runtime.serve.server import ServeConfig, serve

    config = config_from_args(ServeConfig, args)
    serve(config, on_open=lambda: print(
        f"serving {config.bundle} on http://{config.host}:{config.port}/ (Ctrl-C to stop)", flush=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("s2f-runtime", args)


if __name__ == "__main__":
    sys.exit(main())
