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
from pathlib import Path

from s2f.core.command_line import add_verbosity_flags, run_command
from s2f.core.errors import InputError
from s2f.core.listing import paths_under
from s2f.runtime.directory import DEFAULT_BATCH_SIZE
from s2f.runtime.engines.backends import BACKENDS, PRECISIONS
from s2f.runtime.engines.onnxruntime import DEVICES

# ServeConfig fields every runtime command shares (common()) or that come from --two-stage
SHARED_SERVE_FIELDS = ("bundle", "device", "threads", "precision", "backend", "unverified", "end_to_end", "trust_key")


# Over 60 lines on purpose: one add_argument per flag of six commands, declarations and no logic.
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2f-runtime", description=__doc__.split("\n\n")[0])
    add_verbosity_flags(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--bundle", type=Path, required=True, help="directory from 's2f export bundle'")
        sub.add_argument("--device", choices=DEVICES, default="auto",
                         help="auto: CUDA if it really starts, else CPU (with a warning); an explicit GPU "
                              "choice fails if its provider cannot be created")
        sub.add_argument("--threads", type=int, help="CPU threads (default: the cores this process may use)")
        sub.add_argument("--backend", choices=BACKENDS, default="onnxruntime",
                         help="openvino: the same graphs on OpenVINO (CPU; needs speech2face[openvino]); auto: per "
                              "graph, the fastest engine and precision that passes the bundle's probe on this machine")
        sub.add_argument("--precision", choices=PRECISIONS,
                         help="fp32 (default; auto: any); bf16: bfloat16 arithmetic on CPUs with bf16 units "
                              "(OpenVINO); fp16: the bundle's float16 graphs (exported with --fp16), meant for GPUs; "
                              "int8: its int8 graphs (exported with --int8), meant for CPUs")
        sub.add_argument("--unverified", action="store_true",
                         help="run a precision other than fp32 on a bundle exported without a probe (logged)")
        sub.add_argument("--trust-key", type=Path, metavar="KEY.pub",
                         help="refuse the bundle unless it is signed by this public key ('s2f bundle sign') and holds "
                              "only the files signed; default: $S2F_TRUST_KEY. Needs speech2face[signing]")
        sub.add_argument("--rehash", action="store_true",
                         help="hash every bundle file even if it was verified before and is unchanged since")
        sub.add_argument("--two-stage", action="store_true",
                         help="run the encoder and decoder graphs on numpy-prepared inputs even when the bundle has "
                              "end-to-end graphs (face2face then resizes exactly as OpenCV, and batches photos)")

    for name, what in (("speech2face", "voice clip(s)"), ("face2face", "face photo(s)")):
        sub = commands.add_parser(name, help=f"{what} -> decoded face PNG(s)")
        sub.add_argument("input", type=Path, help=f"a file, or a directory of {what} (mirrored into OUTPUT)")
        sub.add_argument("-o", "--output", type=Path, required=True, help="PNG file, or directory for a directory")
        sub.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                         help=f"directory mode: files per onnxruntime run, decoded ahead in threads "
                              f"(default {DEFAULT_BATCH_SIZE})")
        sub.add_argument("--shard", metavar="K/N",
                         help="directory mode: only shard K of N (K from 0) of the files, into the same OUTPUT; "
                              "default: torchrun's RANK/WORLD_SIZE or a Slurm array's task, else all files")
        common(sub)
        sub.set_defaults(func=run_convert, mode=name, extras=("runtime",), what_runs=name)
    grid = commands.add_parser("grid", help="original | face->face | speech->face, one row per person")
    grid.add_argument("--faces", type=Path, nargs="+", required=True)
    grid.add_argument("--voices", type=Path, nargs="+", required=True, help="one voice clip per face, same order")
    grid.add_argument("-o", "--output", type=Path, required=True)
    common(grid)
    grid.set_defaults(func=run_grid, extras=("runtime",), what_runs="grid")

    score = commands.add_parser(
        "scorecard", help="the SF2F scorecard of the bundle's generated faces on a corpus",
        description="Generate a face from every clip and photo of the corpus's test identities, embed them and "
                    "the real photos with a face-recognition judge (the bundle's face encoder, or --judge), and "
                    "report recall@1/2/5/10/20/50 in galleries of 100 identities (three averaged with 300 or "
                    "more, else one of all), chance, and cosine/L1/L2 to the real faces: speech->face, "
                    "face->face and the voice embedding itself. JSON, a recall-curve PNG and the result grid.")
    score.add_argument("corpus", type=Path, help="identity folders with audios/ and images/")
    score.add_argument("-o", "--output", type=Path, required=True, help="JSON report (.png and _grid.png beside)")
    score.add_argument("--split", type=Path, help="split JSON: score its --part identities (default: all)")
    score.add_argument("--part", default="test")
    score.add_argument("--max-clips", type=int, help="clips per identity (default: all)")
    from s2f.runtime.evaluate.scorecard import add_judge_flags

    add_judge_flags(score, face_encoder=False)
    common(score)
    score.set_defaults(func=run_scorecard, extras=("runtime",), what_runs="scorecard")

    serve = commands.add_parser(
        "serve", help="HTTP service and web page: POST /v1/speech2face, /v1/face2face",
        description="Serve the bundle over HTTP (Starlette on uvicorn): POST /v1/speech2face (an audio file, raw or "
                    "multipart field 'audio') and /v1/face2face (a photo, field 'image') answer image/png, or JSON "
                    "with Accept: application/json; GET /healthz, /readyz, /metrics (Prometheus) and / (a page "
                    "that records your voice). Concurrent requests are micro-batched. Stateless: run replicas "
                    "behind any load balancer. SIGTERM finishes the requests in flight, then exits.")
    common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    from s2f.core.config_flags import add_config_flags
    from s2f.runtime.serve.server import ServeConfig

    add_config_flags(serve, ServeConfig, exclude=SHARED_SERVE_FIELDS)
    serve.set_defaults(func=run_serve, extras=("serve",), what_runs="serve")
    return parser


def _save_png(path: Path, image) -> None:
    from PIL import Image

    from s2f.core.atomic import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as handle:
        Image.fromarray(image).save(handle, format="PNG")


def _end_to_end(args: argparse.Namespace) -> bool | None:
    """None: the end-to-end graphs when the bundle has them (fp32); False with --two-stage."""
    return False if args.two_stage else None


def _engine(args: argparse.Namespace) -> dict:
    return {"backend": args.backend, "unverified": args.unverified}


def run_convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from s2f.core.progress import progress_bar
    from s2f.core.shards import resolve_shard
    from s2f.runtime.directory import run_directory
    from s2f.runtime.pipeline import FaceToFace, SpeechToFace
    from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES
    from s2f.runtime.preprocess.images import IMAGE_SUFFIXES

    one_file = args.input.is_file()  # one-shot: open fast rather than prepack for later batches
    if not one_file and not args.input.is_dir():
        raise InputError(args.input, "not found")
    if args.batch_size < 1:
        raise InputError(None, f"--batch-size must be at least 1, got {args.batch_size}")
    if one_file and args.shard:
        raise InputError(args.input, "--shard splits a directory of files; this is one file")
    model = (SpeechToFace if args.mode == "speech2face" else FaceToFace)(
        args.bundle, args.device, args.threads, prepack=not one_file, verify_cache=not args.rehash,
        precision=args.precision, end_to_end=_end_to_end(args), trust_key=args.trust_key, **_engine(args))
    if one_file:
        _save_png(args.output, model.generate_from_file(args.input).image)
        print(f"{args.input} -> {args.output}")
        return 0
    suffixes = AUDIO_SUFFIXES if args.mode == "speech2face" else IMAGE_SUFFIXES
    inputs = paths_under(args.input, suffixes)
    if not inputs:
        raise InputError(args.input, f"no {'audio' if args.mode == 'speech2face' else 'image'} files found")
    shard = resolve_shard(args.shard)
    mine = shard.select(inputs)
    bar = progress_bar(total=len(mine), desc=args.mode, unit="file")

    def save(path: Path, face) -> None:
        _save_png(args.output / path.relative_to(args.input).with_suffix(".png"), face.image)

    def on_file(path: Path, error: str | None) -> None:
        bar.update(1)
        if error:
            tqdm.write(f"s2f-runtime: skipped {error}", file=sys.stderr)

    with bar:
        run = run_directory(model, mine, save, args.batch_size, on_file=on_file)
    where = "" if shard.whole else f" [{shard}]"
    print(f"{run.written} of {len(mine)} files -> {args.output}{where}"
          + (f"; {len(run.failed)} failed" if run.failed else ""))
    return 0 if run.written or not mine else 1


def run_grid(args: argparse.Namespace) -> int:
    from s2f.runtime.evaluate.grid import save_face_grid
    from s2f.runtime.pipeline import FaceToFace, SpeechToFace, original

    if len(args.faces) != len(args.voices):
        raise InputError(None, f"{len(args.faces)} faces but {len(args.voices)} voices: give one voice per face")
    face_to_face = FaceToFace(args.bundle, args.device, args.threads, prepack=False, verify_cache=not args.rehash,
                              precision=args.precision, end_to_end=_end_to_end(args), trust_key=args.trust_key,
                              **_engine(args))
    speech_to_face = SpeechToFace(face_to_face.bundle, args.device, args.threads, prepack=False,
                                  precision=args.precision, end_to_end=_end_to_end(args), **_engine(args))
    rows = []
    for face, voice in zip(args.faces, args.voices, strict=True):
        rows.append([original(face), face_to_face.generate_from_file(face).image,
                     speech_to_face.generate_from_file(voice).image])
    save_face_grid(args.output, rows, ["original", "face->face", "speech->face"])
    print(f"grid of {len(rows)} people -> {args.output}")
    return 0


def run_scorecard(args: argparse.Namespace) -> int:
    from s2f.runtime.evaluate.score_bundle import score_bundle
    from s2f.runtime.evaluate.scorecard import judge_input, summary_lines

    report = score_bundle(args.bundle, args.corpus, args.output, args.split, args.part, args.judge,
                          judge_input(args), args.device, args.max_clips)
    print("\n".join(summary_lines(report)))
    print(f"report {args.output}; recall curve {report['curve']}; grid {report['grid']}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from s2f.core.config_flags import config_from_args
    from s2f.runtime.serve.server import ServeConfig, serve

    config = config_from_args(ServeConfig, args, end_to_end=_end_to_end(args))
    serve(config, args.host, args.port, on_open=lambda: print(
        f"serving {args.bundle} on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("s2f-runtime", args)


if __name__ == "__main__":
    sys.exit(main())
