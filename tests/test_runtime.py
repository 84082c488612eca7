"""The pipeline bundle and the torch-free runtime: the bundle's graphs reproduce the PyTorch
pipeline (a tampered bundle: test_tampering), devices never fall back silently, and
in a fresh environment with only the runtime extra (no torch) speech->face and face->face
run from the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from support.helpers import REPO, SAMPLE_FACE, fresh_venv, run_isolated, small_models

from s2f.core.errors import InputError
from s2f.data.synth_voice import speech_clip
from s2f.export.bundle import export_bundle
from s2f.runtime.pipeline import FaceToFace, SpeechToFace
from s2f.runtime.preprocess.faces import preprocess
from s2f.runtime.preprocess.images import load_face

EMBEDDING = 2048  # ResNet50's descriptor: the face encoder, voice encoder and decoder must agree


@pytest.fixture(scope="module")
def models():
    return small_models(embedding_dim=EMBEDDING)


@pytest.fixture(scope="module")
def bundle(models, shared_bundle, tmp_path_factory):
    """The export of ``models`` (small_models is seeded: the same weights)."""
    return shared_bundle(tmp_path_factory.mktemp("bundles") / "bundle", embedding_dim=EMBEDDING,
                         with_face_encoder=True)


@pytest.fixture(scope="module")
def voice_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("voice") / "voice.wav"
    soundfile.write(path, np.stack([speech_clip(4.0, 44100, f0=150.0)] * 2, axis=1), 44100)  # stereo 44.1 kHz
    return path


@pytest.mark.slow
def test_manifest(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    graphs = {"voice_encoder.onnx", "face_decoder.onnx", "face_encoder.onnx"}
    end_to_end = {"speech2face.onnx", "face2face.onnx"}  # their weights are the graphs' .data files
    assert set(manifest["files"]) == graphs | end_to_end | {name + ".data" for name in graphs} | {"probe.npz"}
    assert manifest["files"]["probe.npz"]["role"] == "probe"
    assert manifest["files"]["speech2face.onnx"]["weights"] == ["face_decoder.onnx.data", "voice_encoder.onnx.data"]
    assert manifest["files"]["face2face.onnx"]["weights"] == ["face_decoder.onnx.data", "face_encoder.onnx.data"]
    for name, entry in manifest["files"].items():
        assert entry["bytes"] == (bundle / name).stat().st_size and len(entry["sha256"]) == 64
    assert manifest["voice_input"]["encoder"] == "ve_conv" and manifest["face_encoder_arch"] == "rcmalli-resnet50"
    verdicts = [v for outputs in manifest["verification"].values() for v in outputs.values()]
    # the two embeddings, landmarks and texture, each within the rounding rule
    assert len(verdicts) == 4 and all(0 <= v["error"] <= v["allowed"] for v in verdicts)
    assert manifest["verified_on"]["machine"] and manifest["verification_rule"]["factor"] > 1
    assert not [p for p in bundle.parent.iterdir() if p.name.endswith(".partial")]


@pytest.mark.slow
def test_speech_to_face_matches_pytorch(models, bundle, voice_file):
    voice, decoder, _ = models
    face = SpeechToFace(bundle, device="cpu").generate_from_file(voice_file)
    features = SpeechToFace(bundle, device="cpu").voice.features_from_file(voice_file)
    with torch.no_grad():
        embedding = voice(torch.from_numpy(features)[None])
        landmarks, texture = decoder(embedding)
    expected = np.clip(np.rint(texture[0].numpy().transpose(1, 2, 0) * 255), 0, 255)
    assert face.image.shape == (224, 224, 3) and face.image.dtype == np.uint8
    assert np.abs(face.image.astype(int) - expected).max() <= 1  # float32 rounding may flip one level
    np.testing.assert_allclose(face.embedding, embedding[0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(face.landmarks.reshape(-1), landmarks[0].numpy(), rtol=1e-4, atol=1e-3)
    # the waveform API resamples and mixes down like the file path does
    waveform, rate = soundfile.read(voice_file, dtype="float32")
    same = SpeechToFace(bundle, device="cpu").generate(waveform, rate)
    assert np.abs(same.image.astype(int) - face.image.astype(int)).max() <= 2


@pytest.mark.slow
def test_face_to_face_matches_pytorch(models, bundle):
    _, decoder, encoder = models
    image = load_face(SAMPLE_FACE)
    face = FaceToFace(bundle, device="cpu").generate(image)
    with torch.no_grad():
        _, texture = decoder(encoder.embed(torch.from_numpy(preprocess(image, "keras-vggface-v2"))))
    expected = np.clip(np.rint(texture[0].numpy().transpose(1, 2, 0) * 255), 0, 255)
    assert np.abs(face.image.astype(int) - expected).max() <= 1


@pytest.mark.slow
def test_verified_files_are_not_hashed_again_until_written(bundle, tmp_path, monkeypatch):
    import s2f.runtime.bundle.reader as bundle_module
    import s2f.runtime.bundle.verify_cache as verify_cache

    monkeypatch.setattr(verify_cache, "RACY_SECONDS", 0.0)  # the copy below is only milliseconds old
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    hashed, sha256 = [], bundle_module.sha256_of
    monkeypatch.setattr(bundle_module, "sha256_of", lambda path: hashed.append(path.name) or sha256(path))
    SpeechToFace(copy, device="cpu")  # the end-to-end graph and the two weight files it reads, nothing else
    assert sorted(hashed) == ["face_decoder.onnx.data", "speech2face.onnx", "voice_encoder.onnx.data"]
    hashed.clear()
    SpeechToFace(copy, device="cpu")  # reads the record from disk, as a new process does
    assert hashed == []
    SpeechToFace(copy, device="cpu", verify_cache=False)
    assert len(hashed) == 3
    target = copy / "voice_encoder.onnx.data"  # same inode, same size, mtime put back: only ctime moves
    before = target.stat()
    with open(target, "r+b") as handle:
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 1]))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_ino == before.st_ino and target.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(InputError, match="voice_encoder.onnx.data: sha256 does not match"):
        SpeechToFace(copy, device="cpu")


def test_verify_cache_skips_files_too_young_or_changed_while_hashed(tmp_path):
    from s2f.runtime.bundle.verify_cache import VerifyCache, file_identity

    cache = VerifyCache(tmp_path / "verified.json")
    young = tmp_path / "young"
    young.write_bytes(b"graph")
    cache.remember(young, "digest", file_identity(young))  # a write in this same clock tick would not show
    assert not cache.knows(young, "digest")
    old = tmp_path / "old"
    old.write_bytes(b"graph")
    identity = file_identity(old)
    identity[4] -= 10**9  # as if hashing had started before a write
    cache.remember(old, "digest", identity)
    assert not cache.knows(old, "digest") and not cache.changed


@pytest.mark.slow
def test_fp16_graphs_in_the_bundle(models, bundle, voice_file, tmp_path):
    voice, decoder, _ = models
    manifest = export_bundle(tmp_path / "half", voice, decoder, fp16=True)
    assert {entry.get("precision") for entry in manifest["files"].values() if "weights" in entry} == {"fp32", "fp16"}
    assert 0 < manifest["verification_fp16"]["voice_encoder"]["embedding"] <= 1e-2
    full = SpeechToFace(tmp_path / "half", device="cpu").generate_from_file(voice_file)
    half = SpeechToFace(tmp_path / "half", device="cpu", precision="fp16").generate_from_file(voice_file)
    difference = np.abs(full.image.astype(int) - half.image.astype(int))
    assert difference.max() <= 8 and difference.mean() < 1.0, (difference.max(), difference.mean())
    assert not np.array_equal(full.embedding, half.embedding)  # really another graph
    done = subprocess.run([sys.executable, "-m", "s2f.runtime.cli", "speech2face", str(voice_file), "-o",
                           str(tmp_path / "half.png"), "--bundle", str(tmp_path / "half"), "--precision", "fp16",
                           "--device", "cpu"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "half.png")), half.image)
    with pytest.raises(InputError, match="no fp16 face decoder .export it with --fp16"):
        SpeechToFace(bundle, device="cpu", precision="fp16")


@pytest.mark.slow
def test_bundle_verified_on_real_files(models, voice_file, tmp_path, monkeypatch):
    import s2f.export.bundle as bundle_module

    voice, decoder, _ = models
    checked = {}
    export_onnx = bundle_module.export_onnx

    def spy(model, path, real_inputs=None, **kwargs):
        checked[path.name] = [x.shape for x in real_inputs or []]
        return export_onnx(model, path, real_inputs=real_inputs, **kwargs)

    monkeypatch.setattr(bundle_module, "export_onnx", spy)
    manifest = export_bundle(tmp_path / "real", voice, decoder, verify_with=[voice_file])
    assert manifest["verified_with"] == ["voice.wav"]
    assert checked == {"voice_encoder.onnx": [(1, 2, 257, 598)], "face_decoder.onnx": [(1, EMBEDDING)]}
    photo = SAMPLE_FACE
    with pytest.raises(InputError, match="--verify-with needs voice clips"):
        export_bundle(tmp_path / "faces-only", voice, decoder, verify_with=[photo])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="notes.txt: neither audio"):
        export_bundle(tmp_path / "text", voice, decoder, verify_with=[tmp_path / "notes.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "real"]  # nothing half-written


@pytest.mark.slow
def test_explicit_gpu_never_falls_back(bundle):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a CUDA build of onnxruntime is installed here")
    with pytest.raises(InputError, match="--device cuda: CUDAExecutionProvider is not in this onnxruntime build"):
        SpeechToFace(bundle, device="cuda")


@pytest.mark.slow
def test_torch_free_environment(bundle, voice_file, built_wheel, tmp_path_factory, tmp_path):
    """A fresh venv with only the runtime extra (numpy, onnxruntime, PIL, the audio readers)."""
    bin_dir = fresh_venv(tmp_path_factory.mktemp("runtime_env") / "venv", f"{built_wheel}[runtime]")
    python, command = bin_dir / "python", bin_dir / "s2f-runtime"
    probe = run_isolated([python, "-c", "import torch"])
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    for help_command in ([command, "--help"], [bin_dir / "s2f", "--help"]):
        done = run_isolated(help_command)
        assert done.returncode == 0 and "usage:" in done.stdout, done.stderr
    missing = run_isolated([bin_dir / "s2f", "convert", voice_file, "-o", tmp_path / "x.safetensors"])
    assert missing.returncode == 2 and missing.stderr.strip() == \
        "s2f: error: convert needs h5py: pip install 'speech2face[convert]'"
    no_server = run_isolated([command, "serve", "--bundle", bundle])
    assert no_server.returncode == 2 and no_server.stderr.strip() == \
        "s2f-runtime: error: serve needs Starlette: pip install 'speech2face[serve]'"
    no_signing = run_isolated([command, "speech2face", voice_file, "-o", tmp_path / "x.png", "--bundle", bundle,
                               "--trust-key", tmp_path / "key.pub"])
    assert no_signing.returncode == 2 and no_signing.stderr.strip() == (
        f"s2f-runtime: error: checking a bundle signature ({tmp_path / 'key.pub'}) needs model-signing: "
        "pip install 'speech2face[signing]'")
    no_openvino = run_isolated([command, "speech2face", voice_file, "-o", tmp_path / "x.png", "--bundle", bundle,
                                "--backend", "openvino"])
    assert no_openvino.returncode == 2 and no_openvino.stderr.strip() == \
        "s2f-runtime: error: --backend openvino needs OpenVINO: pip install 'speech2face[openvino]'"
    assert not (tmp_path / "x.png").exists()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    voices = tmp_path / "voices"
    (voices / "sub").mkdir(parents=True)
    shutil.copy(voice_file, voices / "a.wav")
    shutil.copy(voice_file, voices / "sub" / "b.wav")
    (voices / "broken.wav").write_text("not audio")
    runs = [
        [command, "speech2face", voice_file, "-o", tmp_path / "s2f.png", "--bundle", bundle],
        [command, "face2face", SAMPLE_FACE, "-o", tmp_path / "f2f.png", "--bundle", bundle],
        [command, "speech2face", voices, "-o", tmp_path / "out", "--bundle", bundle, "--threads", "1"],
        [command, "grid", "--bundle", bundle, "--faces", SAMPLE_FACE, "--voices", voice_file,
         "-o", tmp_path / "grid.png"],
    ]
    outputs = []
    for run in runs:
        done = subprocess.run([str(part) for part in run], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert done.returncode == 0, (run[1], done.stderr[-2000:])
        outputs.append(done)
    assert "2 of 3 files" in outputs[2].stdout and "1 failed" in outputs[2].stdout
    assert "broken.wav" in outputs[2].stderr
    for png in ("s2f.png", "f2f.png", "grid.png", "out/a.png", "out/sub/b.png"):
        assert (tmp_path / png).is_file(), png
    assert not (tmp_path / "out" / "broken.png").exists()
    bad = subprocess.run([str(command), "speech2face", voice_file, "-o", tmp_path / "x.png", "--bundle",
                          tmp_path], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "not a speech2face bundle" in bad.stderr and "Traceback" not in bad.stderr
