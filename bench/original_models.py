"""The original Speech-to-Face project's inference against ``s2f-runtime`` on the bundle
exported from the original's own checkpoint files, full-size models with random weights
(BatchNorm statistics measured on random inputs), both voice encoders, side by side.

* original: its inference scripts' path (``inference/inference_speech_to_face_{ve,ast}.py``)
  in PyTorch: ``torch.load`` of its ``ModelSaver`` files into its modules (rebuilt in
  tests/support/original_project.py), its feature code (librosa STFT or transformers'
  ``ASTFeatureExtractor``) after the PCM16 and -23 dB steps it does with ffmpeg (done in numpy
  here: no ffmpeg binary), the models, ``(texture * 255).to(uint8)``. Its AST comes from
  ``AutoModelForAudioClassification.from_pretrained`` on the hub there; here from an
  ``ASTConfig`` (nothing can be downloaded), which skips a second copy of the weights.
* runtime: ``SpeechToFace(bundle).generate_from_file`` (onnxruntime), three ways: float32 as
  ``s2f-runtime`` runs a one-shot command (speech2face.onnx, weights not prepacked: the
  session opens faster), float32 prepacked (as ``serve`` and directory mode run), and the
  bundle's int8 graphs (``--int8`` at export, ``--precision int8``: encoder and decoder graphs
  on numpy features).

Each side runs in its own process: cold start (process start to the first face, imports and
model loading included) and the median time per clip over the rest. The faces and embeddings
of both are compared clip by clip.

usage: python bench/original_models.py [--workdir DIR] [--clips 6]
Writes bench/results/original_models.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))

ORIGINAL = r"""
import sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1] + "/tests")
import json
import numpy as np, soundfile, torch
from support.original_project import (OriginalFaceDecoder, OriginalVEConv, original_ast, original_ast_features,
                              original_inference, original_ve_features)
encoder_kind, voice_path, decoder_path, out = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
clips = sys.argv[6:]
decoder = OriginalFaceDecoder().eval()
decoder.load_state_dict(torch.load(decoder_path)["model_state_dict"])
voice = (OriginalVEConv() if encoder_kind == "ve_conv" else original_ast()).eval()
voice.load_state_dict(torch.load(voice_path)["model_state_dict"])
times, images, embeddings = [], [], []
for path in clips:
    begin = time.perf_counter()
    waveform, _ = soundfile.read(path, dtype="float32")
    features = original_ve_features(waveform) if encoder_kind == "ve_conv" else original_ast_features(waveform)
    image, _, embedding = original_inference(voice, decoder, features.astype(np.float32), ast=encoder_kind == "ast")
    now = time.perf_counter()
    times.append(now - begin)
    if len(times) == 1:
        cold = now - started
    images.append(image)
    embeddings.append(embedding)
np.savez(out, images=np.stack(images), embeddings=np.stack(embeddings))
print(json.dumps({"cold_start_s": cold, "per_clip_s": times}))
"""

RUNTIME = r"""
import sys, time
started = time.perf_counter()
import json
import numpy as np
from s2f.runtime.pipeline import SpeechToFace
bundle, out, precision, prepack, clips = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5:]
model = SpeechToFace(bundle, device="cpu", prepack=prepack, precision=precision)
times, images, embeddings = [], [], []
for path in clips:
    begin = time.perf_counter()
    face = model.generate_from_file(path)
    now = time.perf_counter()
    times.append(now - begin)
    if len(times) == 1:
        cold = now - started
    images.append(face.image)
    embeddings.append(face.embedding)
np.savez(out, images=np.stack(images), embeddings=np.stack(embeddings))
print(json.dumps({"cold_start_s": cold, "per_clip_s": times}))
"""


def write_models(workdir: Path) -> dict[str, Path]:
    """The original's three modules at full size, saved as its ModelSaver saves them."""
    import torch
    from support.original_project import (
        OriginalFaceDecoder,
        OriginalVEConv,
        original_ast,
        randomise_batchnorm,
        save_like_model_saver,
    )

    paths = {name: workdir / f"{name}_best_model.pt" for name in ("ve_conv", "ast", "decoder")}
    if all(path.is_file() for path in paths.values()):
        return paths
    torch.manual_seed(0)
    ve = randomise_batchnorm(OriginalVEConv(), torch.randn(4, 2, 257, 601))
    save_like_model_saver(ve, paths["ve_conv"])
    del ve
    save_like_model_saver(original_ast().eval(), paths["ast"])
    decoder = OriginalFaceDecoder()
    with torch.no_grad():  # a face with contrast, so levels are a real test
        decoder.texture_layers[-1][0].weight.mul_(200)
    save_like_model_saver(randomise_batchnorm(decoder, torch.rand(64, 4096)), paths["decoder"])
    return paths


def write_clips(workdir: Path, count: int) -> list[Path]:
    import soundfile

    from s2f.data.synth_voice import speech_clip

    clips = []
    for seed in range(count):
        path = workdir / f"clip{seed}.wav"
        if not path.is_file():
            soundfile.write(path, speech_clip(3.0 + seed, seed=seed, f0=100 + 15 * seed), 16000, subtype="PCM_16")
        clips.append(path)
    return clips


def run_json(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(original: Path, runtime: Path) -> dict:
    a, b = np.load(original), np.load(runtime)
    levels = np.abs(a["images"].astype(int) - b["images"].astype(int))
    embedding = np.abs(a["embeddings"] - b["embeddings"]).max(axis=1) / np.abs(a["embeddings"]).max(axis=1)
    return {"image_max_levels": int(levels.max()), "image_mean_levels": float(levels.mean()),
            "embedding_max_relative_error": float(embedding.max()),
            "image_std_levels": float(a["images"].std())}


RUNTIMES = (("runtime_fp32_one_shot", "fp32", False), ("runtime_fp32_prepacked", "fp32", True),
            ("runtime_int8", "int8", True))


def summary(measured: dict) -> dict:
    return {"cold_start_s": round(measured["cold_start_s"], 3),
            "per_clip_s": round(float(np.median(measured["per_clip_s"][1:])), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--clips", type=int, default=6)
    args = parser.parse_args()
    info = announce()
    workdir = bench_workdir(args.workdir, "s2f-bench-original-")
    paths = write_models(workdir)
    clips = [str(p) for p in write_clips(workdir, args.clips)]
    results = {"machine": info, "clips": args.clips, "encoders": {}}
    for kind in ("ve_conv", "ast"):
        bundle = workdir / f"bundle_{kind}"
        started = time.perf_counter()
        if not (bundle / "manifest.json").is_file():
            done = subprocess.run([sys.executable, "-m", "s2f", "-q", "export", "bundle", "-o", str(bundle),
                                   "--voice-encoder", str(paths[kind]), "--decoder", str(paths["decoder"]),
                                   "--int8", "--overwrite"], capture_output=True, text=True, cwd=REPO)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
        export_s = time.perf_counter() - started
        original = run_json([sys.executable, "-c", ORIGINAL, str(REPO), kind, str(paths[kind]), str(paths["decoder"]),
                             str(workdir / f"original_{kind}.npz"), *clips])
        row = {"export_s": round(export_s, 1), "original": summary(original)}
        for name, precision, prepack in RUNTIMES:
            npz = workdir / f"{name}_{kind}.npz"
            measured = summary(run_json([sys.executable, "-c", RUNTIME, str(bundle), str(npz), precision,
                                         "1" if prepack else "0", *clips]))
            measured["speedup_per_clip"] = round(row["original"]["per_clip_s"] / measured["per_clip_s"], 2)
            measured["speedup_cold_start"] = round(row["original"]["cold_start_s"] / measured["cold_start_s"], 2)
            measured["agreement"] = compare(workdir / f"original_{kind}.npz", npz)
            row[name] = measured
            print(f"{kind} {name}: {measured} (original {row['original']})", flush=True)
        results["encoders"][kind] = row
    out = REPO / "bench" / "results" / "original_models.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
