"""The end-to-end graphs (``speech2face.onnx``, ``face2face.onnx``): their preprocessing
matches the numpy code, they reuse the per-model weights instead of copying them, export
refuses a graph that disagrees with the two-stage path, the runtime uses them with the same
results, and Node.js runs ``speech2face.onnx`` with onnxruntime-node alone.

.ci/run installs Node.js and npm when missing; elsewhere the Node tests are skipped without them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper
from PIL import Image
from support.helpers import SAMPLE_FACE, small_models
from support.node_runtime import deviation, install_onnxruntime_node, run_speech2face_in_node

import s2f.export.end_to_end as end_to_end
from s2f.core.errors import InputError
from s2f.data.synth_voice import speech_clip
from s2f.export.bundle import export_bundle
from s2f.export.end_to_end import (
    export_speech_to_face,
    face_verification_images,
    features_model,
    speech_verification_clips,
)
from s2f.export.face_graph import face_input
from s2f.export.onnx_builder import FLOAT, UINT8, GraphBuilder, tensor_info
from s2f.export.speech_graph import fit_duration, normalize_loudness
from s2f.runtime.pipeline import FaceToFace, SpeechToFace
from s2f.runtime.preprocess.audio import fit_duration as numpy_fit_duration
from s2f.runtime.preprocess.audio import normalize_loudness as numpy_normalize_loudness
from s2f.runtime.preprocess.faces import FACE_PREPROCESSING, preprocess
from s2f.runtime.preprocess.images import load_face
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

NODE = shutil.which("node")
NPM = shutil.which("npm")
needs_node = pytest.mark.skipif((NODE is None or NPM is None) and not os.environ.get("CI"),
                                reason="Node.js and npm are not installed (.ci/run installs them)")


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _model(g: GraphBuilder, inputs, outputs) -> onnx.ModelProto:
    return helper.make_model(g.graph("test", inputs, outputs), opset_imports=[helper.make_opsetid("", 18)],
                             ir_version=10)


# preprocessing graphs against numpy -------------------------------------------------------

@pytest.mark.parametrize("spec", [VoiceInputSpec("ve_conv", "paper"), VoiceInputSpec("ve_conv", "original"),
                                  VoiceInputSpec("ast"), VoiceInputSpec("ast", seconds=3.0, mean=-5.46, std=3.11),
                                  VoiceInputSpec("ve_conv", "paper", seconds=2.5, target_dbfs=-30.0)],
                         ids=["paper", "original", "ast", "ast-3s-own-stats", "paper-2.5s"])
def test_feature_graph_matches_numpy(spec):
    session = _session(features_model(spec))
    clips = speech_verification_clips(spec) + [speech_clip(4.2, seed=7)]
    for clip in clips:
        (got,) = session.run(None, {"waveform": clip[None]})
        expected = spec.features(clip)
        assert got.shape == (1, *expected.shape) and got.dtype == np.float32
        assert np.abs(got[0] - expected).max() <= 1e-4 * np.abs(expected).max()
    # a batch: each row is its own clip's features, in order
    batch = np.stack([speech_clip(1.7, seed=seed) for seed in (1, 2, 3)])
    (got,) = session.run(None, {"waveform": batch})
    for row, clip in zip(got, batch, strict=True):
        expected = spec.features(clip)
        assert np.abs(row - expected).max() <= 1e-4 * np.abs(expected).max()
    assert np.abs(got[0] - got[1]).max() > 0.1 * np.abs(got[0]).max()  # different clips, different rows


def test_loudness_and_looping_graph_is_the_numpy_code():
    g = GraphBuilder("t")
    g.op("Identity", fit_duration(g, normalize_loudness(g, "waveform", -23.0), 16000), output="clip")
    session = _session(_model(g, [tensor_info("waveform", FLOAT, ["batch", "samples"])],
                              [tensor_info("clip", FLOAT, ["batch", 16000])]))
    loud = speech_clip(0.3, seed=4) / np.float32(0.3) * np.float32(0.999)  # the peak limits the gain
    for clip in (speech_clip(0.7, seed=1), speech_clip(2.0, seed=2), loud, np.zeros(999, np.float32),
                 np.array([0.25], np.float32)):
        (got,) = session.run(None, {"waveform": clip[None]})
        np.testing.assert_array_equal(got[0], numpy_fit_duration(numpy_normalize_loudness(clip), 16000, 1.0))
        assert np.abs(got).max() <= 1.0
    (silent,) = session.run(None, {"waveform": np.zeros((1, 500), np.float32)})
    assert not silent.any()  # silence is left alone, not amplified into noise


def _face_session(spec) -> ort.InferenceSession:
    g = GraphBuilder("t")
    g.op("Identity", face_input(g, "photo", spec), output="x")
    return _session(_model(g, [tensor_info("photo", UINT8, ["height", "width", 3])],
                           [tensor_info("x", FLOAT, [1, 3, 224, 224])]))


def test_face_graph_nearest_stretch_is_bit_exact():
    rng = np.random.default_rng(0)
    for name in ("keras-vggface-v1", "keras-vggface-v2"):
        session = _face_session(FACE_PREPROCESSING[name])
        for shape in ((480, 640), (640, 480), (97, 131), (1, 1), (2000, 30), (224, 224), (448, 320)):
            photo = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            (got,) = session.run(None, {"photo": photo})
            np.testing.assert_array_equal(got, preprocess(photo, name))  # PIL's accumulated rounding included


def test_face_graph_letterbox_within_one_level_of_opencv():
    spec = FACE_PREPROCESSING["deepface-base"]
    session = _face_session(spec)
    for photo in face_verification_images() + [load_face(SAMPLE_FACE)]:
        (got,) = session.run(None, {"photo": photo})
        levels = np.abs(got - preprocess(photo, spec)) * 255.0
        assert levels.max() <= 1.0 + 1e-4  # float bilinear against OpenCV's 11-bit fixed point
        assert (levels < 1e-3).mean() > 0.8
        assert got[0, :, 0, :].any() or got[0, :, :, 0].any() or got.std() > 0.05  # not a blank frame


# bundles ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("e2e") / "bundle"
    clip = tmp_path_factory.mktemp("clips") / "voice.wav"
    import soundfile

    soundfile.write(clip, speech_clip(3.3, 22050, seed=5), 22050)
    export_bundle(path, *small_models(seed=1), verify_with=[clip, SAMPLE_FACE], int8=True)
    return path


@pytest.mark.slow
def test_end_to_end_graphs_reuse_the_weights_files(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    for graph, encoder in (("speech2face.onnx", "voice_encoder"), ("face2face.onnx", "face_encoder")):
        entry = manifest["files"][graph]
        assert entry["role"] == graph.removesuffix(".onnx") and entry["outputs"] == ["image", "landmarks", "embedding"]
        model = onnx.load(str(bundle / graph), load_external_data=False)
        external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        locations = {e.value for t in external for e in t.external_data if e.key == "location"}
        assert locations == {f"{encoder}.onnx.data", "face_decoder.onnx.data"} == set(entry["weights"])
        inline = sum(len(t.raw_data) for t in model.graph.initializer)
        weights = sum((bundle / name).stat().st_size for name in entry["weights"])
        assert inline < 0.25 * weights and (bundle / graph).stat().st_size < 4_000_000  # tables, not weights
        # every weight of the two per-model graphs is read from where they read it
        for part, prefix in ((f"{encoder}.onnx", "encoder/"), ("face_decoder.onnx", "decoder/")):
            own = onnx.load(str(bundle / part), load_external_data=False)
            ours = {t.name: t for t in external}
            for tensor in own.graph.initializer:
                if tensor.data_location == onnx.TensorProto.EXTERNAL and prefix + tensor.name in ours:
                    assert ours[prefix + tensor.name].external_data == tensor.external_data
    verification = manifest["verification_end_to_end"]
    speech = verification["speech2face"]
    assert speech["image_levels"] <= 1
    for name in ("features", "embedding", "landmarks"):  # the rounding rule, each with its float32 yardstick
        assert speech[f"{name}_rule"]["error"] <= speech[f"{name}_rule"]["allowed"], name
    assert verification["face2face"]["embedding_cosine"] >= 0.9999


@pytest.mark.slow
def test_runtime_uses_end_to_end_graphs_with_the_same_results(bundle):
    fused, staged = SpeechToFace(bundle, device="cpu"), SpeechToFace(bundle, device="cpu", end_to_end=False)
    assert fused.end_to_end and not staged.end_to_end and not hasattr(fused, "encoder")
    clips = [speech_clip(2.0, seed=1), speech_clip(8.0, seed=2), speech_clip(2.0, seed=3), speech_clip(1.1, seed=4)]
    faces = fused.generate_batch([fused.prepare(c, 16000) for c in clips])  # lengths 2, 8, 2, 1.1 s: grouped
    expected = staged.generate_batch([staged.prepare(c, 16000) for c in clips])
    for face, reference in zip(faces, expected, strict=True):
        assert face.image.dtype == np.uint8 and face.image.shape == (224, 224, 3)
        assert np.abs(face.image.astype(int) - reference.image).max() <= 1
        np.testing.assert_allclose(face.embedding, reference.embedding, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(face.landmarks, reference.landmarks, rtol=1e-4, atol=1e-3)
    for index, face in enumerate(faces):  # grouped by length and put back in order: each is nearest its own
        distances = [np.abs(face.embedding - reference.embedding).sum() for reference in expected]
        assert int(np.argmin(distances)) == index and sorted(distances)[1] > 0
    photo = load_face(SAMPLE_FACE)
    fused_face, staged_face = FaceToFace(bundle, device="cpu"), FaceToFace(bundle, device="cpu", end_to_end=False)
    a, b = fused_face.generate(photo), staged_face.generate(photo)
    assert a.embedding @ b.embedding / (np.linalg.norm(a.embedding) * np.linalg.norm(b.embedding)) >= 0.9999
    assert np.abs(a.image.astype(int) - b.image).max() <= 2 and a.image.std() > 1


@pytest.mark.slow
def test_int8_graphs_run_two_stage_with_a_measured_cosine(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["files"]["voice_encoder.int8.onnx"]["precision"] == "int8"
    assert all(cosine >= 0.999 for role in manifest["verification_int8_cosine"].values() for cosine in role.values())
    quantized, exact = SpeechToFace(bundle, device="cpu", precision="int8"), SpeechToFace(bundle, device="cpu")
    assert not quantized.end_to_end and exact.end_to_end  # the end-to-end graphs are float32
    clip = speech_clip(2.5, seed=8)
    a, b = quantized.generate(clip, 16000), exact.generate(clip, 16000)
    assert a.embedding @ b.embedding / (np.linalg.norm(a.embedding) * np.linalg.norm(b.embedding)) >= 0.999
    with pytest.raises(InputError, match="end-to-end graphs are float32 .run them at fp32 or bf16."):
        SpeechToFace(bundle, device="cpu", precision="int8", end_to_end=True)


@pytest.mark.slow
def test_export_refuses_an_end_to_end_graph_that_disagrees(bundle, tmp_path, monkeypatch):
    copy = tmp_path / "bundle"
    copy.mkdir()
    for name in ("voice_encoder.onnx", "voice_encoder.onnx.data", "face_decoder.onnx", "face_decoder.onnx.data"):
        shutil.copy(bundle / name, copy / name)

    def features_without_loudness(g, waveform, spec):  # the numpy path normalises, this graph does not
        return original(g, g.op("Mul", waveform, g.scalar(3.0, np.float32)), spec)

    original = end_to_end.speech_features
    monkeypatch.setattr(end_to_end, "speech_features", features_without_loudness)
    with pytest.raises(InputError, match="export refused"):
        export_speech_to_face(copy, "voice_encoder.onnx", "face_decoder.onnx", VoiceInputSpec())
    assert sorted(p.name for p in copy.iterdir()) == sorted(
        ["voice_encoder.onnx", "voice_encoder.onnx.data", "face_decoder.onnx", "face_decoder.onnx.data"])


@pytest.mark.slow
def test_bundles_without_end_to_end_graphs_still_run(bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for name in ("speech2face.onnx", "face2face.onnx"):
        del manifest["files"][name]
        (copy / name).unlink()
    manifest["format"] = 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    model = SpeechToFace(copy, device="cpu")
    assert not model.end_to_end
    assert model.generate(speech_clip(2.0), 16000).image.std() > 1
    with pytest.raises(InputError, match="no speech2face.onnx"):
        SpeechToFace(copy, device="cpu", end_to_end=True)


# Node.js --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnxruntime_node() -> Path:
    assert NODE and NPM, "node and npm are missing although CI is set: .ci/run installs them"
    return install_onnxruntime_node()


def _node_matches_python(bundle: Path, node_dir: Path, tmp_path: Path) -> dict[str, float]:
    clip = speech_clip(4.5, seed=3)  # shorter than the model's clip: the graph loops it
    node = run_speech2face_in_node(node_dir, bundle / "speech2face.onnx", clip, tmp_path)
    assert node["shapes"]["image"] == {"dims": [1, 224, 224, 3], "type": "uint8"}
    python = SpeechToFace(bundle, device="cpu").generate(clip, 16000)  # the Python runtime, from the same samples
    measured = deviation(node, python)
    assert measured["image_levels"] <= 1 and measured["embedding"] <= 1e-4 and measured["landmarks"] <= 1e-4
    assert node["image"].std() > 1  # a face, not a blank frame
    Image.fromarray(node["image"]).save(tmp_path / "node.png")
    print(f"Node vs Python ({bundle.name}): {measured}")
    return measured


@pytest.mark.slow
@needs_node
def test_node_runs_speech2face_like_python(bundle, onnxruntime_node, tmp_path):
    _node_matches_python(bundle, onnxruntime_node, tmp_path)


@pytest.mark.slow
@needs_node
def test_node_runs_a_portable_ast_bundle(onnxruntime_node, tmp_path):
    import torch

    from s2f.models.registry import MODELS

    torch.manual_seed(0)
    voice = MODELS["ast_voice_encoder"].build("tiny", embedding_dim=256).eval()
    decoder = MODELS["face_decoder"].build("tiny", embedding_dim=256).eval()
    path = tmp_path / "portable"
    export_bundle(path, voice, decoder, portable=True)
    model = onnx.load(str(path / "speech2face.onnx"), load_external_data=False)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}  # standard operators only
    _node_matches_python(path, onnxruntime_node, tmp_path)


@pytest.mark.slow
@needs_node
def test_a_warping_decoder_bundle_in_node_python_and_the_server(onnxruntime_node, tmp_path):
    """Cole et al.'s warp in every graph: standard operators, Node.js as Python, the aligned
    texture from the end-to-end and two-stage paths alike, and in the server's JSON."""
    import base64

    from support.helpers import warping_decoder
    from support.serving import Server, png_pixels

    voice, _, face = small_models(seed=2)
    path = tmp_path / "warping"
    export_bundle(path, voice, warping_decoder(seed=2), face, portable=True)
    for graph in ("face_decoder.onnx", "speech2face.onnx", "face2face.onnx"):
        model = onnx.load(str(path / graph), load_external_data=False)
        assert "GridSample" in {node.op_type for node in model.graph.node}
        assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    manifest = json.loads((path / "manifest.json").read_text())
    assert "aligned" in manifest["files"]["speech2face.onnx"]["outputs"]
    _node_matches_python(path, onnxruntime_node, tmp_path)
    clip = speech_clip(3.1, seed=9)
    whole = SpeechToFace(path, device="cpu").generate(clip, 16000)
    staged = SpeechToFace(path, device="cpu", end_to_end=False).generate(clip, 16000)
    assert whole.aligned.shape == (224, 224, 3) and whole.aligned.dtype == np.uint8
    assert np.abs(whole.aligned.astype(int) - staged.aligned).max() <= 1
    assert np.abs(whole.image.astype(int) - staged.image).max() <= 1
    assert np.abs(whole.aligned.astype(int) - whole.image).mean() > 1  # the warp moved the texture
    wav = tmp_path / "voice.wav"
    import soundfile

    soundfile.write(wav, clip, 16000)
    server = Server(path)
    try:
        status, _, data = server.request("POST", "/v1/speech2face", wav.read_bytes(),
                                         {"Content-Type": "audio/wav", "Accept": "application/json"})
    finally:
        server.stop()
    answer = json.loads(data)
    assert status == 200
    for key, expected in (("aligned_png_base64", whole.aligned), ("image_png_base64", whole.image)):
        served = png_pixels(base64.b64decode(answer[key])).astype(int)  # another session: rounding may differ
        assert np.abs(served - expected).max() <= 1 and (served != expected).mean() < 1e-3
