"""The verification gates judge a graph by its distance to the exact (float64) result, so they
pass a correct graph on any CPU and refuse a wrong one on every CPU: export's (float32, fp16,
int8), the end-to-end graph's, the runtime's probe and ``--backend auto``'s choice.

Marked ``isa``: ``make test-avx2`` runs this file again on an emulated AVX2 CPU (qemu), where
float32 rounds differently and int8 kernels have no VNNI. So everything CPU-dependent runs
in this process on micro models (``isa_micro``): the graphs and the bundle are built once in
a separate process (on the real CPU even under qemu; what they are does not depend on it),
then judged here.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil

import numpy as np
import pytest
import torch
from support.isa_micro import EMBEDDING, broken_voice_encoders

from s2f.core.agreement import RoundingRule, compare
from s2f.core.cpu import int8_class
from s2f.core.errors import InputError
from s2f.export.onnx_export import export_onnx, verify_graph

pytestmark = [pytest.mark.slow, pytest.mark.isa]


def _model(micro, name):
    from s2f.models.loading import load_model

    return load_model(micro / "models" / name).eval()


def test_the_emulated_cpu_is_the_one_asked_for():
    """make test-avx2 must not quietly run on the host's AVX-512."""
    wanted = os.environ.get("S2F_EXPECT_CPU")
    if wanted is None:
        pytest.skip("not an emulated run (make test-avx2 sets S2F_EXPECT_CPU)")
    assert int8_class() == wanted
    assert torch.backends.cpu.get_cpu_capability() == wanted.upper()


@pytest.mark.parametrize("name", ["ve_conv", "ast", "face_decoder", "warping_decoder"])
def test_each_float32_graph_passes_here(micro, name):
    if name == "warping_decoder" and os.environ.get("S2F_EXPECT_CPU"):
        pytest.skip("qemu 7.2 segfaults inside PyTorch's AVX2 grid_sample kernel (the emulator's fault: the "
                    "same kernel runs on AVX2 hardware); the native run checks this graph")
    model = _model(micro, name)
    verdicts = verify_graph(micro / "graphs" / f"{name}.onnx", model)
    for output, verdict in verdicts.items():
        assert verdict.passed and verdict.allowed == RoundingRule().allowed(verdict.reference_error), (output, verdict)
    if name == "warping_decoder":  # float32 sampling coordinates: PyTorch float32 itself is far from float64
        assert verdicts["texture"].reference_error > verdicts["landmarks"].reference_error


@pytest.mark.parametrize("bug", ["transposed kernel", "swapped layers", "Keras epsilon"])
def test_a_broken_graph_is_refused_here(micro, bug):
    voice = _model(micro, "ve_conv")
    with pytest.raises(InputError, match="computes something else than PyTorch: embedding is"):
        verify_graph(micro / "broken" / bug / "voice_encoder.onnx", voice)
    # and not by a hair: the bug moves the result by over 10x what the rule allows (a wrong
    # epsilon keeps the cosine at 0.999999+, so no cosine gate would see it)
    broken = broken_voice_encoders(voice)[bug]
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 2, 257, 198)).astype(np.float32))
    with torch.no_grad():
        exact = copy.deepcopy(voice).double()(x.double()).numpy()
        wrong, right = broken(x).numpy(), voice(x).numpy()
    assert compare(exact, wrong).max_relative > 10 * RoundingRule().allowed(compare(exact, right).max_relative)


@pytest.mark.parametrize("name", ["ve_conv", "ast"])
@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_reduced_precision_graphs_exported_elsewhere_pass_here(micro, name, precision):
    """Exported (and verified) in the build process, on the real CPU; judged again here: an
    int8 graph made on a VNNI CPU must be right on an AVX2 one, and the other way round."""
    verdicts = verify_graph(micro / "graphs" / f"{name}.{precision}.onnx", _model(micro, name), precision=precision)
    for value in verdicts.values():
        assert (0.999 <= value <= 1.0) if precision == "int8" else (0 < value <= 1e-2)


def test_an_int8_export_here_writes_the_same_graph(micro, tmp_path):
    """Exporting on this CPU (its gates run here) writes the same int8 graph as the build
    process did, weights byte for byte: quantisation depends on the weights, not on the CPU.
    Only the metadata differs where the CPUs differ: the cosine each measured."""
    import onnx

    model = _model(micro, "ast")
    export_onnx(model, tmp_path / "ast.onnx", int8=True)
    ours, theirs = (hashlib.sha256((root / "ast.int8.onnx.data").read_bytes()).hexdigest()
                    for root in (tmp_path, micro / "graphs"))
    assert ours == theirs
    graphs = [onnx.load(str(root / "ast.int8.onnx"), load_external_data=False) for root in (tmp_path, micro / "graphs")]
    for graph in graphs:
        del graph.metadata_props[:]
    assert graphs[0].SerializeToString() == graphs[1].SerializeToString()


def test_the_end_to_end_gate_passes_here(micro, tmp_path):
    from s2f.export.end_to_end import export_speech_to_face
    from s2f.runtime.bundle.reader import open_bundle
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    bundle = tmp_path / "bundle"
    shutil.copytree(micro / "bundle", bundle)
    (bundle / "speech2face.onnx").unlink()
    spec = VoiceInputSpec.from_dict(open_bundle(micro / "bundle").manifest.voice_input)
    report = export_speech_to_face(bundle, "voice_encoder.onnx", "face_decoder.onnx", spec)
    assert report.verdicts["features"].reference_error > 0  # float32 features move: the yardstick exists
    assert all(verdict.passed for verdict in report.verdicts.values()) and report.errors["image_levels"] <= 1
    assert (bundle / "speech2face.onnx").is_file()


def _engines():
    from s2f.runtime.engines.backends import Engine, backend_available

    engines = [Engine("onnxruntime", "fp32"), Engine("onnxruntime", "int8")]
    if backend_available("openvino"):
        engines += [Engine("openvino", "fp32"), Engine("openvino", "int8")]
    return engines


@pytest.mark.parametrize("role", ["voice_encoder", "face_decoder", "speech2face"])
def test_the_probe_passes_every_engine_of_a_correct_bundle_here(micro, role):
    from s2f.runtime.bundle.reader import open_bundle
    from s2f.runtime.engines.choice import _open
    from s2f.runtime.engines.options import RunOptions
    from s2f.runtime.engines.probe import load_probe

    bundle = open_bundle(micro / "bundle")
    probe = load_probe(bundle)
    for engine in _engines():
        if not bundle.has(role, engine.graph_precision):
            continue
        session = _open(bundle, role, engine, RunOptions(backend=engine.backend, precision=engine.precision))
        result = probe.check(session, role, precision=engine.precision)
        assert result.passed, (str(engine), str(result))


def test_the_probe_refuses_a_float32_engine_that_computes_something_else(micro, tmp_path):
    """A float32 voice encoder with Keras's epsilon: its embedding keeps a cosine of 0.999999+,
    which a cosine gate passes; the rounding rule does not."""
    from support.helpers import rewrite_manifest_to_match

    from s2f.runtime.bundle.reader import open_bundle
    from s2f.runtime.engines.choice import _open
    from s2f.runtime.engines.options import RunOptions
    from s2f.runtime.engines.probe import load_probe

    broken = tmp_path / "bundle"
    shutil.copytree(micro / "bundle", broken)
    for name in ("voice_encoder.onnx", "voice_encoder.onnx.data"):
        shutil.copy(micro / "broken" / "Keras epsilon" / name, broken / name)
    rewrite_manifest_to_match(broken, "voice_encoder.onnx", "voice_encoder.onnx.data")
    bundle = open_bundle(broken)
    from s2f.runtime.engines.backends import Engine

    engine = Engine("onnxruntime", "fp32")
    session = _open(bundle, "voice_encoder", engine, RunOptions(backend="onnxruntime"))
    result = load_probe(bundle).check(session, "voice_encoder", precision="fp32")
    assert not result.passed and "from float64" in str(result)


def test_auto_picks_passing_engines_and_gives_the_float32_face(micro):
    from s2f.export.end_to_end import synthetic_speech
    from s2f.runtime.pipeline import SpeechToFace

    clip = synthetic_speech(2.5, seed=7)
    reference = SpeechToFace(micro / "bundle", device="cpu").generate(clip, 16000).image
    auto = SpeechToFace(micro / "bundle", device="cpu", backend="auto")
    assert auto.engines and all("misses" not in what for what in auto.engines.values())
    image = auto.generate(clip, 16000).image
    assert image.shape == reference.shape == (224, 224, 3) and image.std() > 1  # a face, not a blank
    assert int(np.abs(image.astype(int) - reference.astype(int)).max()) <= 1


def test_micro_models_fit_together(micro):
    voice, decoder = _model(micro, "ve_conv"), _model(micro, "face_decoder")
    assert voice.config.embedding_dim == decoder.config.embedding_dim == EMBEDDING
