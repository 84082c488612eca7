"""Memory that stays flat as a corpus grows: the training index holds bytes per clip, not
objects; the preprocessing listing streams (and a shard never holds another shard's files);
the worker pool keeps a bounded number of chunks in flight; a large photo is reduced before
its wide copy; and a resumed run removes what killed runs left, and only that."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest


def clip_tree(root: Path, identities: int, clips: int, suffix: str) -> Path:
    """VoxCeleb's nesting, <identity>/audios/<id>/<video>/<clip>, with empty files."""
    for person in range(identities):
        folder = root / f"Person_{person:05d}"
        (folder / "images").mkdir(parents=True)
        np.save(folder / "images" / "face_embedding.npy", np.zeros(4, np.float32))
        for video in range(clips // 10):
            videos = folder / "audios" / f"id{person:05d}" / f"video{video:03d}"
            videos.mkdir(parents=True)
            for clip in range(10):
                (videos / f"{clip:05d}{suffix}").touch()
    return root


def traced(function):
    """(result, bytes still held by the result, peak bytes while it ran)."""
    tracemalloc.start()
    try:
        result = function()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, held, peak


def test_the_pair_index_holds_bytes_per_clip_not_objects(tmp_path):
    from s2f.data.pairs import VoiceFacePairs

    root = clip_tree(tmp_path, 100, 50, ".npy")
    pairs, held, peak = traced(lambda: VoiceFacePairs(root, "all_to_all"))
    assert len(pairs.clips) == 5000 and len(pairs) == 5000
    name = np.mean([len(pairs.clips.name(i)) for i in range(0, 5000, 97)])
    # the names' UTF-8 bytes and an int64 offset, plus an int64 identity per clip; a Path
    # object per clip alone is several times that
    assert held / 5000 <= name + 8 + 8 + 16, held / 5000
    assert peak / 5000 <= 3 * (name + 16), peak / 5000
    assert pairs.clips[4999] == root / "Person_00099" / "audios" / "id00099" / "video004" / "00009.npy"
    assert pairs.pair(4999).clip == pairs.clips[4999] and pairs.pair(4999).identity == 99


def test_listing_jobs_streams_and_a_shard_holds_only_its_own(tmp_path):
    from s2f.core.shards import Shard
    from s2f.data.preprocess_audio import audio_jobs

    small = clip_tree(tmp_path / "small", 20, 50, ".wav")
    large = clip_tree(tmp_path / "large", 100, 50, ".wav")
    peaks = {}
    sum(1 for _ in audio_jobs(large, tmp_path / "out"))  # pathlib's table of interned names grows once
    for name, root in (("small", small), ("large", large)):
        jobs = audio_jobs(root, tmp_path / "out")
        count, _, peaks[name] = traced(lambda jobs=jobs: sum(1 for _ in jobs))
        assert count == jobs.total == jobs.files
    assert jobs.total == 5000
    # five times the files, not five times the memory: the deepest folder's listing, nothing per file
    assert peaks["large"] < 1.5 * peaks["small"] + 64_000, peaks
    shards = [list(audio_jobs(large, tmp_path / "out", Shard(k, 3))) for k in range(3)]
    assert [len(s) for s in shards] == [1667, 1667, 1666]
    assert shards[1][0].source == large / "Person_00000" / "audios" / "id00000" / "video000" / "00001.wav"
    assert shards[1][0].outputs[0] == tmp_path / "out" / "Person_00000" / "audios" / "id00000" / "video000" / \
        "00001.npy"
    every = sorted(job.source for shard in shards for job in shard)
    assert len(set(every)) == 5000


def test_two_inputs_with_one_output_are_refused_even_far_apart(tmp_path):
    from s2f.core.errors import InputError
    from s2f.data.preprocess_audio import audio_jobs

    root = clip_tree(tmp_path, 2, 10, ".wav")
    folder = root / "Person_00000" / "audios" / "id00000" / "video000"
    (folder / "00003.g").mkdir()  # a subfolder listed between 00003.flac and 00003.wav
    (folder / "00003.g" / "x.wav").touch()
    (folder / "00003.flac").touch()
    with pytest.raises(InputError, match="00003.wav.*same output"):
        audio_jobs(root, tmp_path / "out")  # refused by the counting pass, before any work


def _slow_identity(item: int) -> int:
    return item


def test_the_worker_pool_draws_items_only_as_results_are_taken():
    from s2f.data.jobs import IN_FLIGHT_PER_WORKER, process_map

    drawn = []

    def items():
        for item in range(400):
            drawn.append(item)
            yield item

    results = process_map(_slow_identity, items(), workers=2, chunksize=4)
    window = 2 * IN_FLIGHT_PER_WORKER * 4
    taken = []
    for result in results:
        taken.append(result)
        assert len(drawn) <= len(taken) + window + 4, (len(drawn), len(taken))
        if len(taken) == 40:
            break
    results.close()
    assert taken == list(range(40)) and len(drawn) < 100


def test_a_large_photo_is_reduced_before_its_wide_copy():
    from s2f.runtime.preprocess.faces import letterbox

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (2400, 1800, 3), dtype=np.uint8)
    target, _, peak = traced(lambda: letterbox(photo, 224))
    assert target.shape == (224, 224, 3) and target.std() > 20
    assert peak < 2 * photo.nbytes, peak / photo.nbytes  # an int64 copy of the whole photo is 8x it


def _plant_partial(output: Path) -> Path:
    """A temporary exactly as ``atomic_output`` names it, as a killed writer leaves it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    os.write(handle, b"half a feature array")
    os.close(handle)
    return Path(name)


@pytest.mark.slow
def test_a_killed_and_resumed_preprocessing_leaves_no_partial_file_of_its_own(tmp_path):
    from s2f.data.synth import SynthConfig, synthesize_corpus

    raw = tmp_path / "raw"
    synthesize_corpus(raw, SynthConfig(identities=6, clips=5, images=1, seconds=2.0), 1)
    command = [sys.executable, "-m", "s2f", "preprocess", "audio", str(raw), str(tmp_path / "pre"), "--encoder",
               "ast", "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "pre").rglob("*.npy")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = sorted((tmp_path / "pre").rglob("*.npy"))
    assert 0 < len(written) < 30, "the run was to be killed half way"
    # whatever the kill left, plus the leftovers of two earlier kills: for a finished output,
    # an unfinished one, and files that are not ours (another name, another suffix)
    unfinished = tmp_path / "pre" / sorted(raw.rglob("*.wav"))[-1].relative_to(raw)
    ours = [_plant_partial(written[0]), _plant_partial(unfinished.with_suffix(".npy"))]
    foreign = [written[0].parent / ".notes.txt.x1.partial", written[0].parent / "download.npy.partial"]
    for path in foreign:
        path.write_bytes(b"not ours")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    left = {path.name for path in (tmp_path / "pre").rglob("*") if path.name.endswith(".partial")}
    assert left == {path.name for path in foreign}, left
    assert not any(path.exists() for path in ours)
    assert len(list((tmp_path / "pre").rglob("*.npy"))) == 30
    # the resumed run's arrays are an uninterrupted run's, byte for byte
    straight = subprocess.run([*command[:6], str(tmp_path / "straight"), *command[7:]], capture_output=True)
    assert straight.returncode == 0
    for path in (tmp_path / "straight").rglob("*.npy"):
        assert path.read_bytes() == (tmp_path / "pre" / path.relative_to(tmp_path / "straight")).read_bytes()


def test_a_resumed_training_run_removes_the_leftovers_of_killed_saves(tmp_path):
    import torch

    from s2f.train.checkpoint import remove_leftovers, save_checkpoint

    model = torch.nn.Linear(2, 2)
    model.save_pretrained = lambda directory: (Path(directory).mkdir(parents=True, exist_ok=True),
                                               torch.save({}, Path(directory) / "weights.pt"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    kept = save_checkpoint(tmp_path, model, optimizer, None, {"step": 5, "epoch": 1}, is_best=True)
    half_saved = tmp_path / "checkpoints" / "step-00000009"
    half_saved.mkdir()
    (half_saved / "weights.pt").write_bytes(b"")
    leftovers = [_plant_partial(tmp_path / "latest.json"), _plant_partial(kept / "state.json")]
    assert remove_leftovers(tmp_path) == 3
    assert not half_saved.exists() and not any(path.exists() for path in leftovers)
    assert kept.is_dir() and (kept / "state.json").is_file() and (tmp_path / "latest.json").is_file()
