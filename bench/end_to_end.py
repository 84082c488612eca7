"""The end-to-end graphs at full size (random weights):

* export: the verification figures ``s2f export bundle`` measured for ``speech2face.onnx``
  (features, embedding, landmarks against the two-stage path; image in 8-bit levels) and
  ``face2face.onnx`` (embedding cosine to the numpy path), for a VE_conv + VGG-Face bundle and
  an AST bundle exported ``--portable``; how big the graphs are next to the weights they read;
* speed: the runtime with the end-to-end graph against the two-stage path (numpy features,
  then the encoder and decoder graphs), 6 s clips, batch 1 and 8; face->face on a 640x480 photo.
  Each in its own process, median of ``--repeats``;
* Node.js: ``speech2face.onnx`` in onnxruntime-node (no code of ours) against the Python
  runtime on the same samples: deviation, and time per clip in each.

usage: python bench/end_to_end.py [--workdir DIR] [--repeats 5]
Writes bench/results/end_to_end.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))


def build(workdir: Path) -> dict[str, dict]:
    """The two full-size bundles; returns what export measured and took."""
    import torch

    from s2f.export.bundle import export_bundle
    from s2f.models.face_encoder import build_face_encoder, he_normal_init_
    from s2f.models.face_encoder_config import FaceEncoderConfig
    from s2f.models.registry import MODELS

    torch.manual_seed(0)
    face = he_normal_init_(build_face_encoder(FaceEncoderConfig.for_arch("serengil", True)), 0)
    decoder = MODELS["face_decoder"].build("full")
    plans = {"ve_conv": (MODELS["ve_conv"].build("full"), face, False),
             "ast_portable": (MODELS["ast_voice_encoder"].build("full"), None, True)}
    report = {}
    for name, (voice, face_encoder, portable) in plans.items():
        started = time.perf_counter()
        manifest = export_bundle(workdir / name, voice.eval(), decoder.eval(), face_encoder, overwrite=True,
                                 portable=portable)
        files = manifest["files"]
        report[name] = {
            "export_s": round(time.perf_counter() - started, 1),
            "verification_end_to_end": manifest["verification_end_to_end"],
            "graph_bytes": {g: files[g]["bytes"] for g in ("speech2face.onnx", "face2face.onnx") if g in files},
            "weights_read_bytes": {g: sum(files[w]["bytes"] for w in files[g]["weights"])
                                   for g in ("speech2face.onnx", "face2face.onnx") if g in files},
        }
    return report


WORKER = r"""
import json, statistics, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1] + "/tests")
from s2f.data.synth_voice import speech_clip
from s2f.runtime.pipeline import FaceToFace, SpeechToFace
bundle, mode, end_to_end = sys.argv[2], sys.argv[3], sys.argv[4] == "1"
batch, repeats = int(sys.argv[5]), int(sys.argv[6])
if mode == "speech":
    model = SpeechToFace(bundle, device="cpu", end_to_end=end_to_end)
    clips = [speech_clip(6.0, seed=seed) for seed in range(batch)]
    run = lambda: model.generate_batch([model.prepare(clip, 16000) for clip in clips])
else:
    model = FaceToFace(bundle, device="cpu", end_to_end=end_to_end)
    photo = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    run = lambda: model.generate_batch([model.prepare(photo)] * batch)
run()
times = []
for _ in range(repeats):
    started = time.perf_counter(); run(); times.append(time.perf_counter() - started)
print(json.dumps({"seconds": statistics.median(times)}))
"""


def timed(bundle: Path, mode: str, end_to_end: bool, batch: int, repeats: int) -> float:
    out = subprocess.run([sys.executable, "-c", WORKER, str(REPO), str(bundle), mode, "1" if end_to_end else "0",
                          str(batch), str(repeats)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def speed(workdir: Path, repeats: int) -> dict:
    rows = {}
    for name, mode, batches in (("speech->face, VE_conv", "speech", (1, 8)),
                                ("speech->face, AST (portable)", "speech", (1, 8)),
                                ("face->face, VGG-Face, 640x480 photo", "face", (1,))):
        bundle = workdir / ("ast_portable" if "AST" in name else "ve_conv")
        for batch in batches:
            two_stage = timed(bundle, mode, False, batch, repeats)
            fused = timed(bundle, mode, True, batch, repeats)
            rows[f"{name}, batch {batch}"] = {"two_stage_ms": round(1000 * two_stage, 1),
                                              "end_to_end_ms": round(1000 * fused, 1),
                                              "speedup": round(two_stage / fused, 2)}
            print(name, batch, rows[f"{name}, batch {batch}"], flush=True)
    return rows


def node(workdir: Path, repeats: int) -> dict:
    from support.node_runtime import deviation, install_onnxruntime_node, run_speech2face_in_node

    from s2f.data.synth_voice import speech_clip
    from s2f.runtime.pipeline import SpeechToFace

    if shutil.which("node") is None:
        return {"skipped": "node is not installed"}
    node_dir = install_onnxruntime_node()
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    results = {"node": version, "onnxruntime_node": node_dir.name.rsplit("-", 1)[1]}
    for name in ("ve_conv", "ast_portable"):
        clip = speech_clip(4.5, seed=3)
        model = SpeechToFace(workdir / name, device="cpu")
        face = model.generate(clip, 16000)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            model.generate(clip, 16000)
            times.append(time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as work:
            outputs = run_speech2face_in_node(node_dir, workdir / name / "speech2face.onnx", clip, Path(work),
                                              repeats=repeats + 1)
        results[name] = {"deviation": deviation(outputs, face), "node_median_ms": round(outputs["median_ms"], 1),
                         "python_median_ms": round(1000 * statistics.median(times), 1)}
        print(name, results[name], flush=True)
    return results


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    workdir = bench_workdir(args.workdir, "s2f-e2e-bench-")

    report = {"machine": announce(), "export": build(workdir)}
    print(json.dumps(report["export"], indent=1), flush=True)
    report["speed"] = speed(workdir, args.repeats)
    report["node"] = node(workdir, args.repeats)
    out = REPO / "bench" / "results" / "end_to_end.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
