"""``s2f data voxceleb`` and the corpus listing at VoxCeleb's scale.

A VoxCeleb2-shaped tree (``dev/aac/idNNNNN/<video>/<clip>.m4a``: 185 clips a speaker in 25
videos, VoxCeleb2's averages) of 10k and 100k clips, every clip a hard link to one of 64
small real files so the disk stays small, with HQ-VoxCeleb faces (3 a person) and the
metadata. Measured, each in its own process: the ingest (plan and link), its rerun (nothing
to change), and listing the ingested corpus with ``s2f.core.listing`` against ``sorted(rglob)``
(what the commands used before, without following symlinked folders); time per clip and peak
Python memory (tracemalloc). The baseline for the ingest is ``cp -al`` of the same audio tree:
the cheapest way to make that many links. The projection multiplies the largest run's time
per clip by VoxCeleb1+2's 1.28 million clips.

And the steps after it, on samples of the real formats (random weights; time is what is
measured): ``s2f preprocess audio`` of 8 s AAC clips (VoxCeleb2's mean length is about 8 s)
for each encoder, ``s2f preprocess faces`` of 224x224 photos with the full-size VGG-Face
encoder and dlib's 72 landmarks, on all cores: seconds and bytes written per file, projected
to 1.28 million clips.

usage: python bench/ingest.py [--clips 10000 100000] [--workdir DIR]
Writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402

CLIPS_PER_SPEAKER, VIDEOS_PER_SPEAKER, FACES_PER_PERSON = 185, 25, 3
VOXCELEB_CLIPS = 148_642 + 4_874 + 1_092_009 + 36_273  # VoxCeleb1 dev+test, VoxCeleb2 dev+test


def build_tree(root: Path, clips: int) -> None:
    """The downloads: VoxCeleb2 dev audio, HQ-VoxCeleb vox2 faces and its metadata."""
    import numpy as np
    import soundfile
    from PIL import Image

    from s2f.data.synth_voice import speech_clip

    sources = root / "sources"
    sources.mkdir(parents=True)

    audio = []  # 64 files: ext4 allows 65,000 links to one file, and each clip gets three (tree, corpus, cp -al)
    for index in range(64):
        path = sources / f"clip{index}.wav"
        soundfile.write(path, speech_clip(2.0, seed=index % 4), 16000)
        audio.append(path)
    photos = []
    for index in range(FACES_PER_PERSON):
        path = sources / f"face{index}.jpg"
        Image.fromarray(np.random.default_rng(index).integers(0, 255, (224, 224, 3), np.uint8)).save(path)
        photos.append(path)
    speakers = max(1, clips // CLIPS_PER_SPEAKER)
    meta = ["Class_ID,Name,Sample_Num,Flag,Gender_x,VoxCeleb2ID,VGGFace2ID,Gender_y,Set"]
    made = 0
    for speaker in range(speakers):
        speaker_id, name = f"id{speaker:05d}", f"Person_{speaker:05d}"
        meta.append(f"{speaker},{name},{FACES_PER_PERSON},1,m,{speaker_id},n{speaker:06d},m,dev")
        count = clips - made if speaker == speakers - 1 else CLIPS_PER_SPEAKER
        for number in range(count):
            video = root / "vox2" / "dev" / "aac" / speaker_id / f"video{number % VIDEOS_PER_SPEAKER:02d}"
            video.mkdir(parents=True, exist_ok=True)
            os.link(audio[number % len(audio)], video / f"{number // VIDEOS_PER_SPEAKER + 1:05d}.wav")
        made += count
        faces = root / "hq" / "vox2" / "masked_faces" / name
        faces.mkdir(parents=True)
        for number, photo in enumerate(photos):
            os.link(photo, faces / f"{number:05d}.jpg")
    (root / "hq" / "meta_info").mkdir(parents=True)
    (root / "hq" / "meta_info" / "full_vox2_meta.csv").write_text("\n".join(meta) + "\n")


_MEASURE = r"""
import json, sys, time, tracemalloc
from pathlib import Path
what, root = sys.argv[1], Path(sys.argv[2])
import s2f.data.voxceleb as voxceleb
from s2f.core.listing import list_files
from s2f.core.progress import show_progress
show_progress(False)
tracemalloc.start()
started = time.perf_counter()
if what == "ingest":
    sources = voxceleb.VoxCelebSources(root / "hq", vox2=(root / "vox2",))
    report = voxceleb.ingest_voxceleb(sources, root / "corpus")
    result = {"clips": report.clips, "unchanged": report.unchanged, "symbolic_links": report.symbolic_links}
elif what == "listing":
    result = {"files": len(list_files(root / "corpus"))}
else:  # rglob, as the commands listed before
    result = {"files": len(sorted(p for p in (root / "corpus").rglob("*") if p.is_file()))}
result.update(seconds=time.perf_counter() - started, peak_mb=tracemalloc.get_traced_memory()[1] / 2**20)
print(json.dumps(result))
"""


def measure(what: str, root: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _MEASURE, what, str(root)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.splitlines()[-1])


def copy_links(root: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-al", str(root / "vox2"), str(root / "cp_al")], check=True)
    return time.perf_counter() - started


def run(clips: int, workdir: Path) -> dict:
    root = workdir / f"tree_{clips}"
    build_tree(root, clips)
    first, again = measure("ingest", root), measure("ingest", root)
    assert first["clips"] == clips and first["symbolic_links"] == 0 and again["unchanged"], (first, again)
    listing, rglob = measure("listing", root), measure("rglob", root)
    baseline = copy_links(root)
    per_clip = first["seconds"] / clips
    return {"clips": clips, "speakers": max(1, clips // CLIPS_PER_SPEAKER),
            "ingest_s": round(first["seconds"], 2), "ingest_us_per_clip": round(per_clip * 1e6, 1),
            "ingest_peak_mb": round(first["peak_mb"], 1), "rerun_s": round(again["seconds"], 2),
            "cp_al_s": round(baseline, 2), "ingest_vs_cp_al": round(first["seconds"] / baseline, 2),
            "listing_s": round(listing["seconds"], 3), "listing_peak_mb": round(listing["peak_mb"], 1),
            "rglob_s": round(rglob["seconds"], 3), "listing_vs_rglob": round(listing["seconds"] / rglob["seconds"], 2),
            "listing_us_per_file": round(listing["seconds"] / listing["files"] * 1e6, 2)}


def preprocessing(workdir: Path, clips: int = 48, photos: int = 24) -> dict:
    """Seconds and bytes per file of ``s2f preprocess audio|faces``."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(REPO / "tests"))
    from support.helpers import write_m4a

    from s2f.assets import SAMPLE_FACE
    from s2f.data.synth_teacher import synthetic_face_encoder
    from s2f.data.synth_voice import speech_clip

    raw = workdir / "preprocess_raw"
    for index in range(clips):
        folder = raw / f"Person_{index % 8}" / "audios" / "id00001" / f"video{index // 8}"
        folder.mkdir(parents=True, exist_ok=True)
        write_m4a(folder / "00001.m4a", speech_clip(8.0, seed=index), 16000)
    face = np.asarray(Image.open(SAMPLE_FACE).convert("RGB").resize((224, 224)))
    for index in range(photos):
        folder = raw / f"Person_{index % 8}" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face[:, ::-1] if index % 2 else face).save(folder / f"{index:05d}.jpg", quality=95)
    encoder = synthetic_face_encoder(0).save_pretrained(workdir / "face_encoder")
    results = {}
    for name, arguments, count, suffix in (
            ("audio_ve_conv", ["audio", "--encoder", "ve_conv"], clips, ".npy"),
            ("audio_ast", ["audio", "--encoder", "ast"], clips, ".npy"),
            ("faces", ["faces", "--face-encoder", str(encoder), "--landmarks", "dlib72"], photos, ".npy")):
        out = workdir / f"preprocessed_{name}"
        subprocess.run([sys.executable, "-m", "s2f", "--quiet", "preprocess", arguments[0], str(raw), str(out),
                        *arguments[1:]], check=True, capture_output=True)
        # the run's own clock (its report): the files, not the start-up of Python and torch
        seconds = json.loads((out / f"report_{arguments[0]}.json").read_text())["seconds"]
        written = sum(path.stat().st_size for path in out.rglob(f"*{suffix}"))
        results[name] = {"files": count, "s_per_file": round(seconds / count, 4),
                         "bytes_per_file": int(written / count)}
    for name in ("audio_ve_conv", "audio_ast"):
        row = results[name]
        row["voxceleb_hours"] = round(row["s_per_file"] * VOXCELEB_CLIPS / 3600, 1)
        row["voxceleb_tb"] = round(row["bytes_per_file"] * VOXCELEB_CLIPS / 1e12, 2)
    results["faces"]["s_per_1000_faces"] = round(results["faces"]["s_per_file"] * 1000, 1)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = bench_workdir(args.workdir, "s2f-ingest-")
    report = {"machine": announce(), "runs": [run(clips, workdir) for clips in args.clips],
              "preprocessing": preprocessing(workdir)}
    largest = report["runs"][-1]
    report["projection_voxceleb1_2"] = {
        "clips": VOXCELEB_CLIPS,
        "ingest_minutes": round(largest["ingest_s"] / largest["clips"] * VOXCELEB_CLIPS / 60, 1),
        "listing_seconds": round(largest["listing_s"] / largest["clips"] * VOXCELEB_CLIPS, 1)}
    out = REPO / "bench" / "results" / "ingest.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
