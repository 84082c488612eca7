"""The second engine: OpenVINO runs the bundle's graphs as onnxruntime does, bf16 only where the
CPU has it, and every engine but onnxruntime float32 answers to the bundle's probe: a graph
that misses the gate is refused (explicit) or skipped (auto), and bundles without a probe run
float32 unless --unverified says otherwise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile
from support.helpers import SAMPLE_FACE, fresh_venv, rewrite_manifest_to_match, run_isolated, small_models
from support.serving import Server

from s2f.core.errors import InputError
from s2f.data.synth_voice import speech_clip
from s2f.export.bundle import export_bundle
from s2f.runtime.engines.backends import CACHE_ENV, has_bf16
from s2f.runtime.engines.probe import PROBE
from s2f.runtime.pipeline import FaceToFace, SpeechToFace

pytestmark = pytest.mark.slow
RUNTIME = [sys.executable, "-m", "s2f.runtime.cli"]
needs_bf16 = pytest.mark.skipif(not has_bf16(), reason="this CPU has no bf16 units (OpenVINO's capabilities)")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("backends") / "bundle"
    export_bundle(path, *small_models(), int8=True)
    return path


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    path = tmp_path_factory.mktemp("voice") / "voice.wav"
    soundfile.write(path, speech_clip(3.0, 16000, f0=140.0), 16000)
    return path


@pytest.fixture(autouse=True)
def private_compile_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "ov-cache"))


def copy_bundle(bundle, where):
    target = where / "copy"
    shutil.copytree(bundle, target)
    return target


def levels(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.mark.parametrize("end_to_end", [None, False], ids=["end-to-end", "two-stage"])
def test_openvino_float32_gives_onnxruntimes_faces(bundle, voice, end_to_end):
    reference = SpeechToFace(bundle, device="cpu", end_to_end=end_to_end)
    openvino = SpeechToFace(bundle, device="cpu", end_to_end=end_to_end, backend="openvino")
    assert openvino.engines and set(openvino.engines.values()) == {"openvino fp32"}
    inputs = [reference.prepare_file(voice), reference.prepare(speech_clip(2.0, 16000, f0=210.0), 16000)]
    if end_to_end is not False:
        inputs = inputs[:1]
    for ours, theirs in zip(openvino.generate_batch(inputs), reference.generate_batch(inputs), strict=True):
        assert ours.image.std() > 1.0 and levels(ours.image, theirs.image) <= 1
        assert np.abs(ours.landmarks - theirs.landmarks).max() < 0.05
        cosine = ours.embedding @ theirs.embedding / np.linalg.norm(ours.embedding) / np.linalg.norm(theirs.embedding)
        assert cosine > 0.99999
    photo = FaceToFace(bundle, device="cpu", backend="openvino").generate_from_file(SAMPLE_FACE)
    assert levels(photo.image, FaceToFace(bundle, device="cpu").generate_from_file(SAMPLE_FACE).image) <= 1


def test_openvino_sessions_run_from_many_threads(bundle):
    model = SpeechToFace(bundle, device="cpu", backend="openvino", end_to_end=False)
    clips = [model.prepare(speech_clip(1.5 + i / 4, 16000, f0=120.0 + 20 * i), 16000) for i in range(6)]
    alone = [model.generate_batch([clip])[0] for clip in clips]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda clip: model.generate_batch([clip])[0], clips))
    for a, b in zip(alone, together, strict=True):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.embedding, b.embedding)
    assert len({a.embedding.tobytes() for a in alone}) == len(alone)  # different voices, different embeddings


@needs_bf16
def test_bf16_passes_the_probe_or_is_refused(bundle, voice):
    """bf16 on this CPU: the speech graphs keep the promise (the face is one level from float32's);
    the random ResNet50's huge activations do not survive bf16, so face2face is refused."""
    reference = SpeechToFace(bundle, device="cpu").generate_from_file(voice).image
    fast = SpeechToFace(bundle, device="cpu", backend="openvino", precision="bf16")
    assert fast.engines["speech2face"].startswith("openvino bf16 (image within")
    assert levels(fast.generate_from_file(voice).image, reference) <= 1
    with pytest.raises(InputError, match=r"face2face.onnx: openvino bf16 misses the bundle's gate on this machine "
                                         r"\(image within \d+ levels \(gate 1\)\)"):
        FaceToFace(bundle, device="cpu", backend="openvino", precision="bf16")


def test_onnxruntime_has_no_bf16(bundle):
    with pytest.raises(InputError, match="--precision bf16 runs on OpenVINO only: add --backend openvino"):
        SpeechToFace(bundle, device="cpu", precision="bf16")
    with pytest.raises(InputError, match="--backend openvino runs on the CPU; --device cuda"):
        SpeechToFace(bundle, device="cuda", backend="openvino")


@pytest.fixture(scope="module")
def broken_int8(bundle, tmp_path_factory):
    """The bundle with its int8 voice encoder taken from another model (same shapes, other
    weights), and the manifest rewritten to match: an engine whose outputs miss the gate."""
    other = tmp_path_factory.mktemp("other") / "bundle"
    export_bundle(other, *small_models(seed=1), int8=True)
    broken = copy_bundle(bundle, tmp_path_factory.mktemp("broken"))
    for name in ("voice_encoder.int8.onnx", "voice_encoder.int8.onnx.data"):
        shutil.copy(other / name, broken / name)
    rewrite_manifest_to_match(broken, "voice_encoder.int8.onnx", "voice_encoder.int8.onnx.data")
    return broken


def test_an_engine_that_misses_the_gate_is_refused(broken_int8, voice, tmp_path):
    out = tmp_path / "face.png"
    done = subprocess.run([*RUNTIME, "speech2face", voice, "-o", out, "--bundle", broken_int8, "--device", "cpu",
                           "--precision", "int8"], capture_output=True, text=True)
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.strip().startswith(f"s2f-runtime: error: {broken_int8 / 'voice_encoder.int8.onnx'}: "
                                          "onnxruntime int8 misses the bundle's gate on this machine (embedding "
                                          "cosine "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_auto_skips_an_engine_that_misses_the_gate(broken_int8, voice, tmp_path):
    out = tmp_path / "face.png"
    done = subprocess.run([*RUNTIME, "speech2face", voice, "-o", out, "--bundle", broken_int8, "--device", "cpu",
                           "--backend", "auto", "--two-stage"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for engine in ("onnxruntime int8", "openvino int8"):
        assert f"warning: voice_encoder: auto skips {engine}, it misses the bundle's gate here" in done.stderr
    chosen = next(line for line in done.stderr.splitlines() if line.startswith("engines: "))
    voice_engine = chosen.split("voice_encoder: ")[1]
    engine, measure = voice_engine.split(" (", 1)
    assert "int8" not in engine
    if engine.endswith("fp32"):  # judged by the rounding rule against float64
        error, allowed = re.match(r"embedding (\S+) from float64 \(gate (\S+)\)", measure).groups()
        assert float(error) <= float(allowed), measure
    else:  # bf16: by its cosine to float64
        assert float(re.match(r"embedding cosine (\S+) \(gate 0.999\)", measure).group(1)) >= 0.999, measure
    reference = SpeechToFace(broken_int8, device="cpu").generate_from_file(voice).image
    from PIL import Image

    assert levels(np.asarray(Image.open(out)), reference) <= 2  # the right model's face, not the other one


def test_auto_picks_a_passing_engine_per_graph(bundle, voice):
    model = SpeechToFace(bundle, device="cpu", backend="auto", end_to_end=False)
    assert set(model.engines) == {"voice_encoder", "face_decoder"}
    for what in model.engines.values():
        assert what.split(" (")[0] in {"onnxruntime fp32", "onnxruntime int8", "openvino fp32", "openvino int8",
                                       "openvino bf16"}
        assert "gate" in what and "probe" in what and "ms)" in what
    reference = SpeechToFace(bundle, device="cpu", end_to_end=False).generate_from_file(voice)
    assert levels(model.generate_from_file(voice).image, reference.image) <= 3


def without_probe(bundle, where):
    old = copy_bundle(bundle, where)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["files"][PROBE]
    (old / PROBE).unlink()
    (old / "manifest.json").write_text(json.dumps(manifest))
    return old


def test_bundles_without_a_probe_run_float32_unless_told(bundle, voice, tmp_path, caplog):
    old = without_probe(bundle, tmp_path)
    assert SpeechToFace(old, device="cpu", backend="openvino").engines == {"speech2face": "openvino fp32"}
    with pytest.raises(InputError, match="this bundle has no probe .exported before probes., so openvino int8 cannot "
                                         "be checked on this machine: run fp32, export the bundle again, or pass "
                                         "--unverified"):
        SpeechToFace(old, device="cpu", backend="openvino", precision="int8")
    with caplog.at_level("WARNING", logger="s2f"):
        risky = SpeechToFace(old, device="cpu", backend="openvino", precision="int8", unverified=True)
    assert risky.engines == {role: "openvino int8 (unverified)" for role in ("voice_encoder", "face_decoder")}
    assert "voice_encoder runs openvino int8 UNVERIFIED" in caplog.text
    assert SpeechToFace(old, device="cpu", backend="auto").engines == {"speech2face": "onnxruntime fp32 (no probe)"}
    # onnxruntime on the int8 graphs export verified still runs, as before probes
    assert SpeechToFace(old, device="cpu", precision="int8").engines["voice_encoder"] == "onnxruntime int8"


def test_an_edited_probe_is_one_line(bundle, tmp_path):
    edited = copy_bundle(bundle, tmp_path)
    (edited / PROBE).write_bytes(b"PK\x03\x04 not a zip")
    rewrite_manifest_to_match(edited, PROBE)
    with pytest.raises(InputError, match=r"probe.npz: unreadable probe"):
        SpeechToFace(edited, device="cpu", backend="openvino", precision="int8")
    arrays = dict(np.load(bundle / PROBE))
    arrays["face_decoder/texture"] = arrays["face_decoder/texture"][:1]
    np.savez(edited / PROBE, **arrays)
    rewrite_manifest_to_match(edited, PROBE)
    with pytest.raises(InputError, match=r"the probe holds \[1, 3, 224, 224\]: the probe does not belong"):
        SpeechToFace(edited, device="cpu", backend="openvino", precision="int8")


def test_compiled_models_are_cached_per_graph_content(bundle, tmp_path, monkeypatch):
    cache = tmp_path / "compiled"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    SpeechToFace(bundle, device="cpu", backend="openvino")
    first = sorted(p.relative_to(cache) for p in cache.rglob("*.blob"))
    assert len(first) == 1  # speech2face.onnx, compiled once
    SpeechToFace(bundle, device="cpu", backend="openvino")
    assert sorted(p.relative_to(cache) for p in cache.rglob("*.blob")) == first  # the second start compiled nothing
    SpeechToFace(bundle, device="cpu", backend="openvino", precision="int8")
    assert len(list(cache.rglob("*.blob"))) == 3  # the int8 encoder and decoder, in folders of their own


def test_directory_mode_and_serve_on_openvino(bundle, voice, tmp_path):
    voices = tmp_path / "voices"
    voices.mkdir()
    for index, f0 in enumerate((120.0, 180.0, 240.0)):
        soundfile.write(voices / f"{index}.wav", speech_clip(2.5, 16000, f0=f0), 16000)
    done = subprocess.run([*RUNTIME, "speech2face", voices, "-o", tmp_path / "out", "--bundle", bundle,
                           "--device", "cpu", "--backend", "openvino", "--batch-size", "2"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "3 of 3 files" in done.stdout, done.stderr
    from PIL import Image

    reference = SpeechToFace(bundle, device="cpu")
    for index in range(3):
        expected = reference.generate_from_file(voices / f"{index}.wav").image
        assert levels(np.asarray(Image.open(tmp_path / "out" / f"{index}.png")), expected) <= 1
    server = Server(bundle, "--backend", "auto")
    try:
        status, _, body = server.request("GET", "/readyz")
        engines = json.loads(body)["engines"]
        assert status == 200 and set(engines) == {"speech2face", "face2face"}
        assert set(engines["speech2face"]) == {"speech2face"} and "gate" in engines["speech2face"]["speech2face"]
        status, _, face = server.request("POST", "/v1/speech2face", (voices / "0.wav").read_bytes(),
                                         {"Content-Type": "audio/wav"})
        assert status == 200 and np.asarray(Image.open(__import__("io").BytesIO(face))).std() > 1.0
    finally:
        server.stop()


def test_openvino_extra_alone_without_torch(bundle, voice, built_wheel, tmp_path_factory, tmp_path):
    bin_dir = fresh_venv(tmp_path_factory.mktemp("openvino_env") / "venv", f"{built_wheel}[openvino]")
    assert run_isolated([bin_dir / "python", "-c", "import torch"]).returncode != 0
    out = tmp_path / "face.png"
    done = run_isolated([bin_dir / "s2f-runtime", "speech2face", voice, "-o", out, "--bundle", bundle,
                         "--backend", "openvino"])
    assert done.returncode == 0, done.stderr
    from PIL import Image

    expected = SpeechToFace(bundle, device="cpu").generate_from_file(voice).image
    assert levels(np.asarray(Image.open(out)), expected) <= 1
