"""Bundles made by someone else: the manifest agrees with every file (rewritten to match), so
the sha256 checks pass; each hostile graph must still be refused with one line, exit code 2 and
no output, from the command line and from the Python API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import soundfile
from helpers import rewrite_manifest_to_match, small_models

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
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
    return "reads weights from 'extra.data', which the manifest does not list"


def parent_location(bundle, outside):
    shutil.copy(bundle / "face_decoder.onnx.data", outside / "weights.data")
    _relocate(bundle, "speech2face.onnx", "face_decoder.onnx.data", "../outside/weights.data")
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
    return "reads weights from '../outside/weights.data': only a file name inside the bundle"


def absolute_location(bundle, outside):
    shutil.copy(bundle / "face_decoder.onnx.data", outside / "weights.data")
    _relocate(bundle, "speech2face.onnx", "face_decoder.onnx.data", str(outside / "weights.data"))
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
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
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
    return "speech2face.onnx: "


def future_opset(bundle, outside):
    model = onnx.load(str(bundle / "speech2face.onnx"), load_external_data=False)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 99
    (bundle / "speech2face.onnx").write_bytes(model.SerializeToString())
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
    return "onnxruntime cannot load this graph"


def unknown_operator(bundle, outside):
    model = onnx.load(str(bundle / "speech2face.onnx"), load_external_data=False)
    model.graph.node[0].domain = "com.example.evil"
    model.opset_import.append(onnx.helper.make_opsetid("com.example.evil", 1))
    (bundle / "speech2face.onnx").write_bytes(model.SerializeToString())
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
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
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
    return "output 'image' is float32, expected uint8"


def huge_allocation(bundle, outside):
    """A graph whose first run asks for 4 TB (4 * 2**40 bytes of zeros times the batch)."""
    from onnx import TensorProto, helper

    waveform = helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("image", "landmarks",
                                                                                          "embedding")]
    huge = helper.make_tensor("huge", TensorProto.INT64, [1], [1 << 40])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    nodes = [helper.make_node("Shape", ["waveform"], ["shape"], end=1),
             helper.make_node("Mul", ["shape", "huge"], ["elements"]),
             helper.make_node("ConstantOfShape", ["elements"], ["zeros"], value=zero)]
    nodes += [helper.make_node("Identity", ["zeros"], [name]) for name in ("image", "landmarks", "embedding")]
    graph = helper.make_graph(nodes, "huge", [waveform], outputs, [huge])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    (bundle / "speech2face.onnx").write_bytes(model.SerializeToString())
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
    return "Failed to allocate memory"


def _overcommits_always() -> bool:
    try:
        with open("/proc/sys/vm/overcommit_memory") as handle:
            return handle.read().strip() == "1"
    except OSError:
        return False


CASES = [unlisted_weights, parent_location, absolute_location, symlinked_weights, hard_linked_weights, random_bytes,
         future_opset, unknown_operator, wrong_outputs, huge_allocation]


@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_hostile_bundle_is_one_line_exit_2_and_no_output(make, clean_bundle, clip, tmp_path):
    if make is huge_allocation and _overcommits_always():
        pytest.skip("vm.overcommit_memory=1: a 4 TB allocation succeeds and zeroing it would meet the OOM killer")
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
    from s2f.runtime.bundle.onnx_refs import check_weight_locations, external_locations

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
