"""A bundle is refused with one line naming the manifest field when any field the runtime
reads is malformed; --overwrite replaces only bundles, with no moment where none exists;
and the face encoder must fit the decoder, at export and when the bundle opens."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile
import torch

from s2f.core.errors import InputError
from s2f.export.bundle import export_bundle
from s2f.models.face_encoder import build_face_encoder
from s2f.models.face_encoder_config import FaceEncoderConfig
from s2f.models.registry import MODELS
from s2f.runtime.bundle.reader import open_bundle

pytestmark = pytest.mark.slow  # end-to-end: models, processes or servers built per module

EMBEDDING = 2048


@pytest.fixture(scope="module")
def small_bundle(shared_bundle, tmp_path_factory):
    return shared_bundle(tmp_path_factory.mktemp("integrity") / "bundle", embedding_dim=EMBEDDING)


def _edit(manifest: dict, case: str) -> str:
    """Damage the manifest as ``case`` says; return the text the error must contain."""
    graph = manifest["files"]["voice_encoder.onnx"]
    edits = {
        "a list": (lambda: None, "'manifest' must be a JSON object"),
        "null": (lambda: None, "'manifest' must be a JSON object"),
        "entry without bytes": (lambda: graph.pop("bytes"), "'files.voice_encoder.onnx.bytes' is missing"),
        "entry without sha256": (lambda: graph.pop("sha256"), "'files.voice_encoder.onnx.sha256' is missing"),
        "entry without role": (lambda: graph.pop("role"), "'files.voice_encoder.onnx.role' is missing"),
        "weights not listed": (lambda: graph.update(weights="nowhere.data"), "names 'nowhere.data'"),
        "no voice_input": (lambda: manifest.pop("voice_input"), "'voice_input' is missing"),
        "sample_rate 0": (lambda: manifest["voice_input"].update(sample_rate=0),
                          "'voice_input.sample_rate' must be in"),
        "sample_rate text": (lambda: manifest["voice_input"].update(sample_rate="16k"),
                             "'voice_input.sample_rate' must be an integer"),
        "huge seconds": (lambda: manifest["voice_input"].update(seconds=1e15), "'voice_input.seconds' must be in"),
        "unknown encoder": (lambda: manifest["voice_input"].update(encoder="wav2vec"),
                            "'voice_input.encoder' must be one of"),
        "bytes as text": (lambda: graph.update(bytes="12"), "'files.voice_encoder.onnx.bytes' must be an integer"),
        "encoder does not fit decoder": (lambda: graph.update(embedding_dim=4096), "does not fit the decoder"),
        "end-to-end weights not listed": (
            lambda: manifest["files"]["speech2face.onnx"].update(weights=["voice_encoder.onnx.data", "gone.data"]),
            "'files.speech2face.onnx.weights' names 'gone.data'"),
        "end-to-end weights a number": (lambda: manifest["files"]["speech2face.onnx"].update(weights=[7]),
                                        "'files.speech2face.onnx.weights' must be a file name or a list"),
    }
    change, message = edits[case]
    change()
    return message


CASES = ["a list", "null", "entry without bytes", "entry without sha256", "entry without role", "weights not listed",
         "no voice_input", "sample_rate 0", "sample_rate text", "huge seconds", "unknown encoder", "bytes as text",
         "encoder does not fit decoder", "end-to-end weights not listed", "end-to-end weights a number"]


@pytest.mark.parametrize("case", CASES)
def test_malformed_manifest_is_one_line_naming_the_field(small_bundle, tmp_path, case):
    copy = tmp_path / "bundle"
    shutil.copytree(small_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    message = _edit(manifest, case)
    document = [manifest] if case == "a list" else None if case == "null" else manifest
    (copy / "manifest.json").write_text(json.dumps(document))
    with pytest.raises(InputError, match="manifest.json") as caught:
        open_bundle(copy, verify=False)
    assert message in str(caught.value)
    soundfile.write(tmp_path / "x.wav", np.zeros(1600, np.float32) + 0.1, 16000)
    done = subprocess.run([sys.executable, "-m", "s2f.runtime.cli", "speech2face", str(tmp_path / "x.wav"), "-o",
                           str(tmp_path / "x.png"), "--bundle", str(copy)], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_overwrite_replaces_only_a_bundle(small_bundle, tmp_path):
    victim = tmp_path / "my_photos"
    victim.mkdir()
    (victim / "holiday.jpg").write_bytes(b"precious")
    voice = MODELS["ve_conv"].build("tiny", embedding_dim=EMBEDDING).eval()
    decoder = MODELS["face_decoder"].build("tiny", embedding_dim=EMBEDDING).eval()
    with pytest.raises(InputError, match="not a speech2face bundle"):
        export_bundle(victim, voice, decoder, overwrite=True)
    assert (victim / "holiday.jpg").read_bytes() == b"precious"


def test_overwrite_swaps_without_a_moment_without_bundle(small_bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(small_bundle, target)
    old = json.loads((target / "manifest.json").read_text())
    seen_missing, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            if not (target / "manifest.json").is_file():
                seen_missing.append(True)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        torch.manual_seed(1)
        export_bundle(target, MODELS["ve_conv"].build("tiny", embedding_dim=EMBEDDING).eval(),
                      MODELS["face_decoder"].build("tiny", embedding_dim=EMBEDDING).eval(), overwrite=True)
    finally:
        stop.set()
        watcher.join()
    new = json.loads((target / "manifest.json").read_text())
    assert new["files"]["voice_encoder.onnx"]["sha256"] != old["files"]["voice_encoder.onnx"]["sha256"]
    assert not seen_missing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no staging or old copy left behind
    open_bundle(target)


def test_face_encoder_must_fit_the_decoder_at_export(tmp_path):
    voice = MODELS["ve_conv"].build("tiny", embedding_dim=EMBEDDING).eval()
    decoder = MODELS["face_decoder"].build("tiny", embedding_dim=EMBEDDING).eval()
    vgg = build_face_encoder(FaceEncoderConfig.for_arch("serengil", include_top=False))  # 4096-D
    with pytest.raises(InputError, match="do not fit"):
        export_bundle(tmp_path / "b", voice, decoder, vgg)
    assert not os.listdir(tmp_path)
