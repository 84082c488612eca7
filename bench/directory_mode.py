"""``s2f-runtime speech2face DIR``: files per second on 64 voice clips (44.1 kHz WAV, 3-8 s),
batched with decoding overlapped (``run_directory``, ``--batch-size 8``) against one file at a
time as the command did before (decode, run, write, next), each way in its own process, for
tiny and full-size models (random weights). The PNGs of both ways must be byte-identical.
The batched run is repeated on OpenVINO (float32, and bf16 where the CPU has it), with how
many levels its faces are from onnxruntime's.
Also what a real batch could save: the time per clip of the longest clip (the model's clip
length) run alone and as a batch of 8, and how many of the clips share a length (only those
can share a run of the waveform graph).

usage: python bench/directory_mode.py [--workdir DIR] [--clips 64] [--sizes tiny full]
Writes bench/results/directory_mode.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))

WORKER = r"""
import json, sys, time
from pathlib import Path
from PIL import Image
from s2f.runtime.directory import run_directory
from s2f.runtime.pipeline import SpeechToFace
bundle, clips, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
backend, precision = sys.argv[5], sys.argv[6]
files = sorted(clips.glob("*.wav"))
model = SpeechToFace(bundle, device="cpu", backend=backend, precision=precision)
def save(path, face):
    Image.fromarray(face.image).save(out / (path.stem + ".png"))
if mode == "batch-cost":  # what a real batch saves: equal-length clips, batch 1 against batch 8
    arrays = [model.prepare_file(path) for path in files]
    longest = max(arrays, key=len)
    costs = {"equal_length": sum(len(a) == len(longest) for a in arrays),
             "distinct_lengths": len({len(a) for a in arrays})}
    for size in (1, 8):
        model.generate_batch([longest] * size)  # warm-up: onnxruntime plans memory per shape
        started = time.perf_counter()
        for _ in range(3):
            model.generate_batch([longest] * size)
        costs[f"batch{size}_ms_per_clip"] = (time.perf_counter() - started) / 3 / size * 1e3
    print(json.dumps(costs))
    sys.exit()
started = time.perf_counter()
if mode == "one-at-a-time":
    for path in files:
        save(path, model.generate_from_file(path))
else:
    run_directory(model, files, save, batch_size=int(mode))
print(json.dumps({"seconds": time.perf_counter() - started, "files": len(files)}))
"""


def build(workdir: Path, size: str, clips: int) -> tuple[Path, Path]:
    import numpy as np
    import soundfile
    import torch

    from s2f.data.synth_voice import speech_clip
    from s2f.export.bundle import export_bundle
    from s2f.models.registry import MODELS

    bundle = workdir / f"bundle-{size}"
    if not (bundle / "manifest.json").is_file():
        torch.manual_seed(0)
        export_bundle(bundle, MODELS["ve_conv"].build(size).eval(), MODELS["face_decoder"].build(size).eval(),
                      overwrite=True)
    folder = workdir / "clips"
    if not folder.is_dir():
        folder.mkdir()
        rng = np.random.default_rng(0)
        for index in range(clips):
            seconds = float(rng.uniform(3.0, 8.0))
            soundfile.write(folder / f"clip{index:03d}.wav", speech_clip(seconds, 44100, f0=100 + index, seed=index),
                            44100)
    return bundle, folder


def run(bundle: Path, clips: Path, mode: str, out: Path, engine: tuple[str, str] = ("onnxruntime", "fp32")) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", WORKER, str(bundle), str(clips), str(out), mode, *engine],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}


def max_levels(ours: Path, theirs: Path) -> int:
    import numpy as np
    from PIL import Image

    def pixels(path: Path) -> np.ndarray:
        return np.asarray(Image.open(path), np.int16)

    return max(int(np.abs(pixels(p) - pixels(theirs / p.name)).max()) for p in sorted(ours.glob("*.png")))


def openvino_rows(bundle: Path, clips: Path, workdir: Path, size: str, count: int, onnxruntime_s: float) -> dict:
    """The batched directory run on OpenVINO's engines, against onnxruntime's."""
    from s2f.runtime.engines.backends import has_bf16

    rows = {}
    for precision in ("fp32", *(["bf16"] if has_bf16() else [])):
        out = workdir / f"out-{size}-openvino-{precision}"
        seconds = run(bundle, clips, "8", out, ("openvino", precision))["seconds"]
        rows[f"openvino_{precision}"] = {"files_per_s": round(count / seconds, 2),
                                         "over_onnxruntime": round(onnxruntime_s / seconds, 2),
                                         "max_levels_from_onnxruntime": max_levels(out, workdir / f"out-{size}-8")}
    return rows


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "full"])
    args = parser.parse_args()
    workdir = bench_workdir(args.workdir, "s2f-directory-bench-")
    report = {"machine": announce(), "clips": args.clips, "results": {}}
    for size in args.sizes:
        bundle, clips = build(workdir, size, args.clips)
        times = {mode: run(bundle, clips, mode, workdir / f"out-{size}-{mode}")["seconds"]
                 for mode in ("one-at-a-time", "8")}
        identical = digests(workdir / f"out-{size}-one-at-a-time") == digests(workdir / f"out-{size}-8")
        row = {"one_at_a_time_files_per_s": round(args.clips / times["one-at-a-time"], 2),
               "batched_files_per_s": round(args.clips / times["8"], 2),
               "speedup": round(times["one-at-a-time"] / times["8"], 2), "identical_pngs": identical}
        row.update(openvino_rows(bundle, clips, workdir, size, args.clips, times["8"]))
        cost = run(bundle, clips, "batch-cost", workdir / f"out-{size}-cost")
        row["clips_of_equal_length"] = cost["equal_length"]
        row["distinct_lengths"] = cost["distinct_lengths"]
        for key in ("batch1_ms_per_clip", "batch8_ms_per_clip"):
            row[key] = round(cost[key], 1)
        report["results"][size] = row
        print(size, row, flush=True)
    (REPO / "bench" / "results" / "directory_mode.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
