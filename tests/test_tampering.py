"""Every way a bundle can be tampered with, in one place: files flipped, truncated, deleted or
swapped (the sha256 checks), a manifest edited field by field (one line naming the field), and
bundles made by someone else whose manifest agrees with every file (rewritten to match), so the
sha256 checks pass: each hostile graph must still be refused with one line, exit code 2 and no
output, from the command line, the Python API and the server. (A signed bundle's tampering is
in test_signing, beside the keys it needs.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import soundfile
from support.helpers import rewrite_manifest_to_match, small_models

from s2f.core.errors import InputError
from s2f.data.synth_voice import speech_clip
from s2f.runtime.bundle.reader import open_bundle
from s2f.runtime.pipeline import FaceToFace, SpeechToFace


@pytest.fixture(scope="module")
def bundle(shared_bundle, tmp_path_factory):
    """A complete bundle (both end-to-end graphs, a face encoder) to damage copies of."""
    return shared_bundle(tmp_path_factory.mktemp("tampering") / "bundle", embedding_dim=2048, with_face_encoder=True)


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


def _end_to_end_interface():
    """speech2face.onnx's input and its three outputs, as a forged graph declares them."""
    from onnx import TensorProto, helper

    waveform = helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])
    return waveform, [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                      for name in ("image", "landmarks", "embedding")]


def wrong_outputs(bundle, outside):
    """A graph with the right names whose image is float32 of the wrong shape."""
    from onnx import helper

    waveform, outputs = _end_to_end_interface()
    nodes = [helper.make_node("Identity", ["waveform"], [name]) for name in ("image", "landmarks", "embedding")]
    graph = helper.make_graph(nodes, "wrong", [waveform], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    (bundle / "speech2face.onnx").write_bytes(model.SerializeToString())
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
    return "output 'image' is float32, expected uint8"


def huge_allocation(bundle, outside):
    """A graph whose first run asks for 4 TB (4 * 2**40 bytes of zeros times the batch)."""
    from onnx import TensorProto, helper

    waveform, outputs = _end_to_end_interface()
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_serve_refuses_a_hostile_bundle_in_one_line_before_listening(clean_bundle, tmp_path):
    bundle, outside = tmp_path / "bundle", tmp_path / "outside"
    shutil.copytree(clean_bundle, bundle)
    outside.mkdir()
    expected = unlisted_weights(bundle, outside)
    done = subprocess.run([sys.executable, "-m", "s2f.runtime.cli", "serve", "--bundle", str(bundle), "--port", "0",
                           "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and expected in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "serving" not in done.stdout


# Files flipped, truncated, deleted or swapped ---------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("damage", ["flip-byte", "truncate", "delete", "no-manifest", "edit-manifest"])
def test_tampered_bundle_is_refused(bundle, tmp_path, damage):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    target = copy / "face_decoder.onnx.data"  # read by the end-to-end graph and the decoder graph alike
    if damage == "flip-byte":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 1
        target.write_bytes(bytes(data))
        match = "sha256 does not match"
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-10])
        match = "truncated or replaced"
    elif damage == "delete":
        target.unlink()
        match = "missing: incomplete bundle"
    elif damage == "no-manifest":
        (copy / "manifest.json").unlink()
        match = "not a speech2face bundle"
    else:
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["files"]["../evil.onnx"] = manifest["files"].pop("face_decoder.onnx")
        (copy / "manifest.json").write_text(json.dumps(manifest))
        match = "outside the bundle"
    with pytest.raises(InputError, match=match):
        open_bundle(copy)
    with pytest.raises(InputError, match=match):  # the runtime checks what it loads, before loading it
        SpeechToFace(copy, device="cpu")


@pytest.mark.slow
def test_tampered_weights_file_is_refused_when_used(bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    weights = copy / "face_encoder.onnx.data"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    SpeechToFace(copy, device="cpu")  # speech -> face does not use the face encoder: not even read
    with pytest.raises(InputError, match="face_encoder.onnx.data: sha256 does not match"):
        FaceToFace(copy, device="cpu")


@pytest.mark.slow
def test_tampered_end_to_end_graph_is_refused(bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / "speech2face.onnx").read_bytes())
    data[-10] ^= 1
    (copy / "speech2face.onnx").write_bytes(bytes(data))
    with pytest.raises(InputError, match="speech2face.onnx.*sha256"):
        SpeechToFace(open_bundle(copy, verify=False, cache=False), device="cpu")
    assert not SpeechToFace(open_bundle(copy, verify=False, cache=False), device="cpu", end_to_end=False).end_to_end


# A manifest edited field by field -------------------------------------------------------------

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


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_malformed_manifest_is_one_line_naming_the_field(bundle, tmp_path, case):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
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
