"""How the data path grows with the corpus: VoxCeleb-shaped trees of 1k, 10k and 100k clips
(<Name>/audios/<id>/<video>/<clip>, 10 clips a video, 100 a speaker, hard links to a few
real 8 s clips so the disk stays small), each step measured in its own process (wall time and
peak RSS):

* listing: the preprocessing job stream over every clip;
* the training index: ``VoiceClipPairs`` over the tree (bytes per clip);
* preprocessing: a rerun over a finished tree (the listing, skip and leftover sweep every
  resumed run does, per clip) at every size, and the per-clip work itself (clips/s on one
  core, VE_conv and AST) on 200 clips;
* the training DataLoader, one worker: precomputed ``.npy``, on the fly from m4a and from wav
  (VE_conv's 6 s and the AST's 10.26 s windows): samples/s per worker, bytes read per sample.

The bench fails unless times grow linearly (per-clip time at 100k within 1.5x of 10k's) and
memory stays flat (peak RSS at 100k within 64 MB of 1k's, the training index excepted, which
is reported in bytes per clip). It then projects to VoxCeleb2 (1,128,246 clips): disk, hours
of preprocessing per core, and DataLoader workers to feed one GPU at the measured H200 rates
(bench/results/gpu_check.json: VE_conv 238, AST 337 samples/s).
Writes bench/results/data_scale.json.

usage: python bench/data_scale.py [--sizes 1000 10000 100000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402

sys.path.insert(0, str(REPO))

VOXCELEB2_CLIPS = 1_128_246  # dev 1,092,009 + test 36,237
GPU_RATES = {"ve_conv": 238.0, "ast": 337.0}  # samples/s on one H200 with AMP (bench/results/gpu_check.json)
SOURCE_CLIPS = 4
CLIP_SECONDS = 8.2  # VoxCeleb2's mean clip length
CLIPS_PER_VIDEO, VIDEOS_PER_SPEAKER = 10, 10
RATE_CLIPS = 200  # clips the per-clip preprocessing rate is measured on
LOADER_SAMPLES = 1024


def peak_rss_mb(pid: int | str = "self") -> float:
    """The process's high-water resident set (VmHWM): per address space, so unlike
    ``ru_maxrss`` it does not carry over the peak of the parent that started it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/status")


def speech(seconds: float, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    pitch = 100 + 30 * seed + 15 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 10)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) ** 2
    return (0.15 * voiced + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def write_sources(folder: Path) -> dict[str, list[Path]]:
    """A few real clips in both of VoxCeleb's formats: AAC in MP4 (VoxCeleb2), 16-bit WAV (VoxCeleb1)."""
    import av
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    sources: dict[str, list[Path]] = {"m4a": [], "wav": []}
    for index in range(SOURCE_CLIPS):
        samples = speech(CLIP_SECONDS, index)
        wav = folder / f"clip{index}.wav"
        soundfile.write(wav, samples, 16000, subtype="PCM_16")
        m4a = folder / f"clip{index}.m4a"
        with av.open(str(m4a), "w", format="mp4") as container:
            stream = container.add_stream("aac", rate=16000)
            stream.layout = "mono"
            for start in range(0, samples.size, 1024):
                frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 16000, start
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        sources["wav"].append(wav)
        sources["m4a"].append(m4a)
    return sources


def clip_names(clips: int):
    """(speaker folder, relative clip path without suffix) for ``clips`` clips in VoxCeleb's nesting."""
    per_speaker = CLIPS_PER_VIDEO * VIDEOS_PER_SPEAKER
    for index in range(clips):
        speaker, within = divmod(index, per_speaker)
        video, clip = divmod(within, CLIPS_PER_VIDEO)
        yield f"Speaker_{speaker:05d}", f"audios/id{speaker:05d}/video{video:03d}/{clip + 1:05d}"


def build_tree(root: Path, clips: int, suffix: str, sources: list[Path]) -> Path:
    """A corpus of hard links to ``sources``; a finished mark makes reruns free."""
    if (root / ".built").is_file():
        return root
    for index, (speaker, name) in enumerate(clip_names(clips)):
        path = root / speaker / f"{name}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.link(sources[index % len(sources)], path)
    (root / ".built").touch()
    return root


def build_faces(root: Path, clips: int, embedding: Path) -> Path:
    """The preprocessed side: one face embedding per speaker (hard links)."""
    for speaker in sorted({speaker for speaker, _ in clip_names(clips)}):
        path = root / speaker / "images" / "face_embedding.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.link(embedding, path)
    return root


# ------------------------------------------------------------------------------------------
# measurements, each in its own process: python bench/data_scale.py --measure KIND ARGS...

def measure_listing(corpus: str) -> dict:
    from s2f.data.preprocess_audio import audio_jobs

    started = time.perf_counter()
    jobs = audio_jobs(Path(corpus), Path(corpus + "_out"))
    count = sum(1 for _ in jobs)
    return {"clips": count, "seconds": time.perf_counter() - started}


def measure_index(pre: str, corpus: str) -> dict:
    from s2f.data.voice_clips import VoiceClipPairs
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    started = time.perf_counter()
    pairs = VoiceClipPairs(pre, corpus, VoiceInputSpec(encoder="ve_conv"), "all_to_all")
    seconds = time.perf_counter() - started
    held = pairs.clips.nbytes + pairs.faces.nbytes + pairs.clip_identity.nbytes
    return {"clips": len(pairs.clips), "seconds": seconds, "index_bytes_per_clip": held / len(pairs.clips)}


def measure_rerun(corpus: str, out: str) -> dict:
    import logging

    from s2f.data.preprocess_audio import preprocess_audio
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    logging.disable(logging.INFO)
    started = time.perf_counter()
    report = preprocess_audio(Path(corpus), Path(out), VoiceInputSpec(encoder="ve_conv"))
    assert report.already_done == report.total and not report.written, report.summary(Path(out))
    return {"clips": report.total, "seconds": time.perf_counter() - started}


def measure_preprocess(corpus: str, out: str, encoder: str) -> dict:
    from s2f.data.preprocess_audio import preprocess_audio
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    started = time.perf_counter()
    report = preprocess_audio(Path(corpus), Path(out), VoiceInputSpec(encoder=encoder))
    seconds = time.perf_counter() - started
    assert report.written == report.total, report.summary(Path(out))
    sizes = {path.stat().st_size for path in Path(out).rglob("*.npy")}
    return {"clips": report.written, "seconds": seconds, "clips_per_s_per_core": report.written / seconds,
            "bytes_per_clip": max(sizes)}


def measure_loader(pre: str, corpus: str, kind: str, encoder: str) -> dict:
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from s2f.data.pairs import VoiceFacePairs
    from s2f.data.voice_clips import VoiceClipPairs
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    if kind == "npy":
        data = VoiceFacePairs(pre, "all_to_all")
    else:
        data = VoiceClipPairs(pre, corpus, VoiceInputSpec(encoder=encoder), "all_to_all")
    sampler = RandomSampler(data, num_samples=LOADER_SAMPLES + 64, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(data, batch_size=32, sampler=sampler, num_workers=1, prefetch_factor=2)
    batches = iter(loader)
    first = next(batches)  # the worker's start (spawn, imports) is not the steady rate
    started = time.perf_counter()
    samples = sum(len(batch[0]) for _, batch in zip(range(LOADER_SAMPLES // 32), batches, strict=False))
    seconds = time.perf_counter() - started
    worker_rss = max(peak_rss_mb(worker.pid) for worker in batches._workers)
    clip = data.pair(0).clip
    return {"samples_per_s_per_worker": samples / seconds, "item_shape": list(first[0].shape[1:]),
            "bytes_read_per_sample": clip.stat().st_size, "pairs": len(data),
            "worker_peak_rss_mb": round(worker_rss, 1)}


MEASURES = {"listing": measure_listing, "index": measure_index, "rerun": measure_rerun,
            "preprocess": measure_preprocess, "loader": measure_loader}


def run_measure(kind: str, *args: str) -> dict:
    """One measurement in a fresh process: its wall time, and its peak RSS (the process and,
    for the DataLoader, its worker)."""
    done = subprocess.run([sys.executable, __file__, "--measure", kind, *map(str, args)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_main(kind: str, args: list[str]) -> None:
    result = MEASURES[kind](*args)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------

def check_growth(rows: dict[int, dict], what: str, failures: list[str], memory_too: bool = True) -> None:
    sizes = sorted(rows)
    small, middle, large = sizes[0], sizes[-2], sizes[-1]
    per_clip = {size: rows[size]["seconds"] / size for size in sizes}
    if per_clip[large] > 1.5 * per_clip[middle]:
        failures.append(f"{what}: {per_clip[large] * 1e6:.1f} us/clip at {large} vs {per_clip[middle] * 1e6:.1f} "
                        f"at {middle}: not linear")
    if memory_too and rows[large]["peak_rss_mb"] > rows[small]["peak_rss_mb"] + 64:
        failures.append(f"{what}: peak RSS {rows[large]['peak_rss_mb']} MB at {large} clips vs "
                        f"{rows[small]['peak_rss_mb']} MB at {small}: not flat")


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--workdir", type=Path, help="keep the trees here (default: a temporary directory)")
    args = parser.parse_args()
    machine = announce()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        sources = write_sources(work / "sources")
        embedding = work / "sources" / "face_embedding.npy"
        np.save(embedding, np.random.default_rng(0).standard_normal(4096).astype(np.float32))

        # the per-clip work, once: clips/s on one core and the array each clip becomes
        rate_tree = build_tree(work / "rate_m4a", RATE_CLIPS, ".m4a", sources["m4a"])
        for encoder in ("ve_conv", "ast"):
            shutil.rmtree(work / f"rate_out_{encoder}", ignore_errors=True)
        preprocessing = {encoder: run_measure("preprocess", rate_tree, work / f"rate_out_{encoder}", encoder)
                         for encoder in ("ve_conv", "ast")}
        feature = work / f"rate_out_ve_conv/{next(iter(clip_names(1)))[0]}"
        feature_file = next(Path(feature).rglob("*.npy"))
        features = []  # several copies: a file system allows some 65,000 hard links to one file
        for index in range(SOURCE_CLIPS):
            features.append(work / "sources" / f"feature{index}.npy")
            if not features[-1].exists():
                shutil.copyfile(feature_file, features[-1])
        scale: dict[str, dict[int, dict]] = {"listing": {}, "index": {}, "rerun": {}, "loader": {}}
        for size in args.sizes:
            print(f"== {size} clips", flush=True)
            m4a = build_tree(work / f"m4a_{size}", size, ".m4a", sources["m4a"])
            wav = build_tree(work / f"wav_{size}", size, ".wav", sources["wav"])
            finished = build_tree(work / f"npy_{size}", size, ".npy", features)
            build_faces(finished, size, embedding)
            scale["listing"][size] = run_measure("listing", m4a)
            scale["index"][size] = run_measure("index", finished, m4a)
            scale["rerun"][size] = run_measure("rerun", m4a, finished)
            loaders = {"npy (ve_conv, precomputed)": ("npy", "ve_conv", m4a),
                       "m4a, ve_conv 6 s": ("m4a", "ve_conv", m4a), "wav, ve_conv 6 s": ("wav", "ve_conv", wav),
                       "m4a, ast 10.26 s": ("m4a", "ast", m4a), "wav, ast 10.26 s": ("wav", "ast", wav)}
            scale["loader"][size] = {name: run_measure("loader", finished, corpus, kind, encoder)
                                     for name, (kind, encoder, corpus) in loaders.items()}
            for step in ("listing", "index", "rerun"):
                row = scale[step][size]
                print(f"  {step}: {row['seconds']:.2f} s ({row['seconds'] / size * 1e6:.1f} us/clip), "
                      f"peak RSS {row['peak_rss_mb']} MB", flush=True)
            for name, row in scale["loader"][size].items():
                print(f"  loader {name}: {row['samples_per_s_per_worker']:.1f} samples/s per worker, "
                      f"peak RSS {row['peak_rss_mb']} MB (worker {row['worker_peak_rss_mb']} MB)", flush=True)
    sizes = sorted(args.sizes)
    if len(sizes) >= 3:
        check_growth(scale["listing"], "listing", failures)
        check_growth(scale["rerun"], "preprocessing rerun", failures)
        check_growth(scale["index"], "training index", failures, memory_too=False)
        loader_rss = {size: max(row["peak_rss_mb"] for row in scale["loader"][size].values()) for size in sizes}
        worker_rss = {size: max(row["worker_peak_rss_mb"] for row in scale["loader"][size].values()) for size in sizes}
        if worker_rss[sizes[-1]] > worker_rss[sizes[0]] + 64:
            failures.append(f"DataLoader worker: peak RSS {worker_rss} MB grows with the corpus")
        if loader_rss[sizes[-1]] > loader_rss[sizes[0]] + 64:
            failures.append(f"DataLoader: peak RSS {loader_rss} MB grows with the corpus")
    largest = sizes[-1]
    loader = scale["loader"][largest]
    disk = {"npy ve_conv 6 s": preprocessing["ve_conv"]["bytes_per_clip"],
            "npy ast 10.26 s": preprocessing["ast"]["bytes_per_clip"],
            "m4a (these synthetic 8.2 s clips)": sources["m4a"][0].stat().st_size,
            "wav 16-bit 16 kHz (8.2 s)": sources["wav"][0].stat().st_size}
    listing_per_clip = scale["listing"][largest]["seconds"] / largest
    projection = {
        "clips": VOXCELEB2_CLIPS,
        "disk_tb": {"precomputed ve_conv": round(disk["npy ve_conv 6 s"] * VOXCELEB2_CLIPS / 1e12, 2),
                    "precomputed ast": round(disk["npy ast 10.26 s"] * VOXCELEB2_CLIPS / 1e12, 2),
                    "on the fly": 0.0},
        "preprocessing_hours_per_core": {
            encoder: round(VOXCELEB2_CLIPS / preprocessing[encoder]["clips_per_s_per_core"] / 3600, 1)
            for encoder in ("ve_conv", "ast")},
        "listing_minutes": round(listing_per_clip * VOXCELEB2_CLIPS / 60, 1),
        "index_mb": round(scale["index"][largest]["index_bytes_per_clip"] * VOXCELEB2_CLIPS / 1e6, 1),
        "dataloader_workers_per_gpu": {
            f"{encoder} from {kind}": math.ceil(GPU_RATES[encoder] / loader[name]["samples_per_s_per_worker"])
            for encoder, kind, name in (("ve_conv", "npy", "npy (ve_conv, precomputed)"),
                                        ("ve_conv", "m4a", "m4a, ve_conv 6 s"), ("ve_conv", "wav", "wav, ve_conv 6 s"),
                                        ("ast", "m4a", "m4a, ast 10.26 s"), ("ast", "wav", "wav, ast 10.26 s"))},
        "precomputed_read_mb_per_s_per_gpu": {
            "ve_conv": round(GPU_RATES["ve_conv"] * disk["npy ve_conv 6 s"] / 1e6),
            "ast": round(GPU_RATES["ast"] * disk["npy ast 10.26 s"] / 1e6)},
        "on_the_fly_read_mb_per_s_per_gpu (m4a)": round(GPU_RATES["ve_conv"] * disk["m4a (these synthetic 8.2 s clips)"]
                                                        / 1e6, 1),
    }
    result = {"machine": machine, "sizes": sizes, "preprocessing_per_clip": preprocessing, "disk_bytes_per_clip": disk,
              "scale": {step: {str(k): v for k, v in rows.items()} for step, rows in scale.items()},
              "projection_voxceleb2": projection, "checks_failed": failures,
              "notes": "hard-linked trees: every read after the first comes from the page cache, so the "
                       "precomputed loader's rate is a memory-speed upper bound; on a disk or network file "
                       "system it is capped by the read rate (precomputed_read_mb_per_s_per_gpu)."}
    (REPO / "bench" / "results" / "data_scale.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(projection, indent=2))
    if failures:
        raise SystemExit("growth checks failed:\n" + "\n".join(failures))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        _child_main(sys.argv[2], sys.argv[3:])
    else:
        main()
