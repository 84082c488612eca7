"""Bundles made by someone else: the manifest agrees with every file (rewritten to match), so
the sha256 checks pass; each hostile graph must still be refused with one line, exit code 2 and
no output, from the command line and from the Python API."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import soundfile
from helpers import small_models

from s2f.core.errors import InputError
from s2f.data.synth_voice import speech_clip

pytestmark = pytest.mark.slow  # exports a bundle


@pytest.fixture(scope="module")
def clean_bundle(tmp_path_factory):
    from s2f.export.bundle import export_bundle

    voice, decoder, _ = small_models(embedding_dim=64)
    root = tmp_path_factory.mktemp("hostile") / "bundle"
    export_bundle(root, voice, decoder)
    return root


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "voice.wav"
    soundfile.write(path, speech_clip(2.0), 16000)
    return path


def _agree(bundle, *names):
    """Rewrite the manifest so its sha256 and sizes match the files as they now are."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in names:
        entry = manifest["files"][name]
        entry["sha256"] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
        entry["bytes"] = (bundle / name).stat().st_size
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _relocate(bundle, graph: str, old: str, new: str) -> None:
    model = onnx.load(str(bundle / graph), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location" and entry.value == old:
                entry.value = new
    (bundle / graph).write_bytes(model.SerializeToString())


def unlisted_weights(bundle, outside):
    shutil.copy(bundle / "face_decoder.onnx.data", bundle / "extra.data")
    _relocate(bundle, "speech2face.onnx", "face_decoder.onnx.data", "extra.data")
    _agree(bundle, "speech2face.onnx")
    return "reads weights from 'extra.data', which the manifest does not list"


def parent_location(bundle, outside):
    shutil.copy(bundle / "face_decoder.onnx.data", outside / "weights.data")
    _relocate(bundle, "speech2face.onnx", "face_decoder.onnx.data", "../outside/weights.data")
    _agree(bundle, "speech2face.onnx")
    return "reads weights from '../outside/weights.data': only a file name inside the bundle"


def absolute_location(bundle, outside):
    shutil.copy(bundle / "face_decoder.onnx.data", outside / "weights.data")
    _relocate(bundle, "speech2face.onnx", "face_decoder.onnx.data", str(outside / "weights.data"))
    _agree(bundle, "speech2face.onnx")
    return "only a file name inside the bundle"


def symlinked_weights(bundle, outside):
    shutil.move(bundle / "face_decoder.onnx.data", outside / "weights.data")
    os.symlink(outside / "weights.data", bundle / "face_decoder.onnx.data")
    return "face_decoder.onnx.data: is a symbolic link"


def hard_linked_weights(bundle, outside):
    os.link(bundle / "face_decoder.onnx.data", outside / "weights.data")
    return "has 2 hard links"


def random_bytes(bundle, outside):
    (bundle / "speech2face.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    _agree(bundle, "speech2face.onnx")
    return "speech2face.onnx: "


def future_opset(bundle, outside):
    model = onnx.load(str(bundle / "speech2face.onnx"), load_external_data=False)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 99
    (bundle / "speech2face.onnx").write_bytes(model.SerializeToString())
    _agree(bundle, "speech2face.onnx")
    return "onnxruntime cannot load this graph"


def unknown_operator(bundle, outside):
    model = onnx.load(str(bundle / "speech2face.onnx"), load_external_data=False)
    model.graph.node[0].domain = "com.example.evil"
    model.opset_import.append(onnx.helper.make_opsetid("com.example.evil", 1))
    (bundle / "speech2face.onnx").write_bytes(model.SerializeToString())
    _agree(bundle, "speech2face.onnx")
    return "onnxruntime cannot load this graph"


def wrong_outputs(bundle, outside):
    """A graph with the right names whose image is float32 of the wrong shape."""
    from onnx import TensorProto, helper

    waveform = helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("image", "landmarks",
                                                                                          "embedding")]
    nodes = [helper.make_node("Identity", ["waveform"], [name]) for name in ("image", "landmarks", "embedding")]
    graph = helper.make_graph(nodes, "wrong", [waveform], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    (bundle / "speech2face.onnx").write_bytes(model.SerializeToString())
    _agree(bundle, "speech2face.onnx")
    return "output 'image' is float32, expected uint8"


CASES = [unlisted_weights, parent_location, absolute_location, symlinked_weights, hard_linked_weights, random_bytes,
         future_opset, unknown_operator, wrong_outputs]


@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_hostile_bundle_is_one_line_exit_2_and_no_output(make, clean_bundle, clip, tmp_path):
    bundle, outside = tmp_path / "bundle", tmp_path / "outside"
    shutil.copytree(clean_bundle, bundle)
    outside.mkdir()
    expected = make(bundle, outside)
    output = tmp_path / "face.png"
    done = subprocess.run([sys.executable, "-m", "s2f.runtime.cli", "speech2face", str(clip), "--bundle",
                           str(bundle), "-o", str(output), "--device", "cpu"], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert expected in done.stderr and done.stderr.startswith("s2f-runtime: error: "), done.stderr
    assert not output.exists() and not list(tmp_path.glob("*.png*"))

    from s2f.runtime.pipeline import SpeechToFace

    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        SpeechToFace(bundle, device="cpu").generate(speech_clip(1.0), 16000)


def test_the_clean_bundle_still_runs(clean_bundle, clip, tmp_path):
    from s2f.runtime.pipeline import SpeechToFace

    face = SpeechToFace(clean_bundle, device="cpu").generate(speech_clip(1.0), 16000)
    assert face.image.shape == (224, 224, 3) and face.image.std() > 1


def test_weight_locations_are_read_off_the_protobuf(tmp_path):
    from s2f.runtime.onnx_refs import check_weight_locations, external_locations

    data = np.arange(4, dtype=np.float32)
    (tmp_path / "w.data").write_bytes(data.tobytes())
    tensor = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[4])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "w.data"), ("offset", "0"), ("length", "16")):
        tensor.external_data.add(key=key, value=value)
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["w"], ["y"])], "g", [],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])], [tensor])
    path = tmp_path / "g.onnx"
    path.write_bytes(onnx.helper.make_model(graph).SerializeToString())
    assert external_locations(path) == ["w.data"]
    check_weight_locations(path, ["w.data"])
    with pytest.raises(InputError, match="which the manifest does not list"):
        check_weight_locations(path, ["other.data"])


def test_serve_refuses_a_hostile_bundle_in_one_line_before_listening(clean_bundle, tmp_path):
    bundle, outside = tmp_path / "bundle", tmp_path / "outside"
    shutil.copytree(clean_bundle, bundle)
    outside.mkdir()
    expected = unlisted_weights(bundle, outside)
    done = subprocess.run([sys.executable, "-m", "s2f.runtime.cli", "serve", "--bundle", str(bundle), "--port", "0",
                           "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and expected in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "serving" not in done.stdout
