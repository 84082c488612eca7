"""Export's own care for what is already there: --overwrite replaces only bundles, with no
moment where none exists; and the face encoder must fit the decoder, at export and when the
bundle opens. (Tampered and hostile bundles: test_tampering.)"""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest
import torch

from s2f.core.errors import InputError
from s2f.export.bundle import export_bundle
from s2f.models.face_encoder import build_face_encoder
from s2f.models.face_encoder_config import FaceEncoderConfig
from s2f.models.registry import MODELS
from s2f.runtime.bundle.reader import open_bundle

EMBEDDING = 2048


@pytest.fixture(scope="module")
def small_bundle(shared_bundle, tmp_path_factory):
    return shared_bundle(tmp_path_factory.mktemp("integrity") / "bundle", embedding_dim=EMBEDDING)


@pytest.mark.slow
def test_overwrite_replaces_only_a_bundle(small_bundle, tmp_path):
    victim = tmp_path / "my_photos"
    victim.mkdir()
    (victim / "holiday.jpg").write_bytes(b"precious")
    voice = MODELS["ve_conv"].build("tiny", embedding_dim=EMBEDDING).eval()
    decoder = MODELS["face_decoder"].build("tiny", embedding_dim=EMBEDDING).eval()
    with pytest.raises(InputError, match="not a speech2face bundle"):
        export_bundle(victim, voice, decoder, overwrite=True)
    assert (victim / "holiday.jpg").read_bytes() == b"precious"


@pytest.mark.slow
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
