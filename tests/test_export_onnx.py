"""ONNX export of every model: onnxruntime matches PyTorch within float32 rounding (the
rounding rule against float64) at any batch size, names and preprocessing travel in the
metadata, and a graph that does not match is never written."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from support.helpers import run_s2f

from s2f.core.agreement import RoundingRule, compare
from s2f.core.errors import InputError
from s2f.export.graph_metadata import read_metadata
from s2f.export.onnx_export import export_onnx


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _tiny_models():
    from s2f.models.ast_encoder import ASTVoiceEncoder, ASTVoiceEncoderConfig
    from s2f.models.registry import MODELS

    ast = ASTVoiceEncoderConfig(ast={**ASTVoiceEncoderConfig().ast, "hidden_size": 32, "num_hidden_layers": 1,
                                     "num_attention_heads": 2, "intermediate_size": 64}, embedding_dim=48)
    return {
        "face_decoder": lambda: MODELS["face_decoder"].build("tiny", embedding_dim=48),
        "ve_conv_paper": lambda: MODELS["ve_conv"].build("tiny", variant="paper", embedding_dim=48),
        "ve_conv_original": lambda: MODELS["ve_conv"].build("tiny", variant="original", embedding_dim=48),
        "ast": lambda: ASTVoiceEncoder(ast),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_tiny_models()))
def test_models_export_and_match(name, tmp_path):
    torch.manual_seed(0)
    model = _tiny_models()[name]().eval()
    path = tmp_path / f"{name}.onnx"
    report = export_onnx(model, path)
    assert all(verdict.passed for verdict in report.float32.values()), report
    metadata = read_metadata(path)
    assert metadata["model_type"] == model.model_type and metadata["opset"] == 18
    session = _session(path)
    (input_meta,) = session.get_inputs()
    x = np.random.default_rng(1).standard_normal((5, *metadata["inputs"][input_meta.name][1:])).astype(np.float32)
    outputs = session.run(None, {input_meta.name: x})  # batch 5: never seen during export
    with torch.no_grad():
        single = model(torch.from_numpy(x))
        exact = copy.deepcopy(model).double()(torch.from_numpy(x).double())
    single = single if isinstance(single, tuple) else (single,)
    exact = exact if isinstance(exact, tuple) else (exact,)
    for ours, theirs, truth in zip(outputs, single, exact, strict=True):
        verdict = RoundingRule().judge(compare(truth.numpy(), ours).max_relative,
                                       compare(truth.numpy(), theirs.numpy()).max_relative)
        assert verdict.passed, verdict
    if name == "face_decoder":  # transposed convolutions run as convolution + depth-to-space
        import onnx

        ops = {node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node}
        assert "ConvTranspose" not in ops and "DepthToSpace" in ops
        assert metadata["rewrites"]["transposed_convolution_as_subpixel"] == len(model.texture_deconvs)
        assert metadata["rewrites"]["depth_to_space_after_rgb"] == 1
        graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.value_info}
        last = [node for node in graph.node if node.op_type == "DepthToSpace"][-1]
        assert shapes[last.input[0]][1] == 3 * 4  # the last shuffle moves the RGB phases only
    if name == "ast":  # attention runs as onnxruntime's fused kernel, not MatMul/Softmax/IsNaN
        import onnx

        ops = {node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node}
        assert metadata["onnxruntime_fusions"].get("Attention", 0) >= 1, metadata["onnxruntime_fusions"]
        assert "Attention" in ops and "Softmax" not in ops and "IsNaN" not in ops
    if name.startswith("ve_conv"):
        assert metadata["preprocessing"]["variant"] == name.split("_")[-1]
        assert input_meta.name == "spectrogram" and metadata["inputs"]["spectrogram"][1:] == [2, 257,
                                                                                              598 if "paper" in name
                                                                                              else 601]


@pytest.mark.slow
def test_portable_export_has_only_standard_operators(tmp_path):
    import onnx

    torch.manual_seed(0)
    report = export_onnx(_tiny_models()["ast"]().eval(), tmp_path / "ast.onnx", portable=True)
    graph = onnx.load(str(tmp_path / "ast.onnx"), load_external_data=False)
    assert report.fusions == {} and read_metadata(tmp_path / "ast.onnx")["onnxruntime_fusions"] == {}
    assert {node.domain for node in graph.graph.node} <= {"", "ai.onnx"}
    for written in tmp_path.iterdir():  # readable by whoever serves the bundle, as any other output
        assert written.stat().st_mode & 0o777 == 0o644, written


@pytest.mark.slow
def test_face_encoder_export_with_real_face(tmp_path):
    from support.helpers import SAMPLE_FACE

    from s2f.models.face_encoder import build_face_encoder, he_normal_init_
    from s2f.models.face_encoder_config import FaceEncoderConfig
    from s2f.runtime.preprocess.faces import preprocess
    from s2f.runtime.preprocess.images import load_face

    encoder = he_normal_init_(build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-resnet50", True)), 0)
    face = preprocess(load_face(SAMPLE_FACE), "keras-vggface-v2")
    report = export_onnx(encoder, tmp_path / "resnet50.onnx", real_inputs=[face])
    assert report.inputs_checked == 3 and set(report.max_relative_error) == {"embedding", "probabilities"}
    metadata = read_metadata(tmp_path / "resnet50.onnx")
    assert metadata["preprocessing"]["channel_order"] == "BGR" and metadata["config"]["arch"] == "rcmalli-resnet50"
    embedding, probabilities = _session(tmp_path / "resnet50.onnx").run(None, {"image": face})
    assert embedding.shape == (1, 2048) and probabilities.sum() == pytest.approx(1.0, abs=1e-4)


def test_mismatch_is_refused_and_nothing_written(tmp_path):
    """A rule no float32 graph can meet (exactly float64) refuses the export, and nothing is
    written (tests/test_gates.py refuses real broken graphs under the default rule)."""
    from s2f.models.registry import MODELS

    with pytest.raises(InputError, match="export refused: onnxruntime computes something else"):
        export_onnx(MODELS["face_decoder"].build("tiny", embedding_dim=16).eval(), tmp_path / "d.onnx",
                    rule=RoundingRule(factor=0.0, floor=0.0))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_export_command(tmp_path):
    from s2f.models.registry import MODELS

    MODELS["face_decoder"].build("tiny", embedding_dim=16).save_pretrained(tmp_path / "decoder")
    done = run_s2f("export", "model", tmp_path / "decoder", "-o", tmp_path / "decoder.onnx")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "face_decoder, opset 18" in done.stdout and (tmp_path / "decoder.onnx").is_file()
    from support.helpers import SAMPLE_FACE

    wrong = run_s2f("export", "model", tmp_path / "decoder", "-o", tmp_path / "d2.onnx", "--verify-with",
                    SAMPLE_FACE)
    assert wrong.returncode == 2 and "none of the --verify-with files is an input of a face_decoder" in wrong.stderr
    assert "Traceback" not in wrong.stderr and not (tmp_path / "d2.onnx").exists()
    missing = run_s2f("export", "model", tmp_path / "nothing", "-o", tmp_path / "x.onnx")
    assert missing.returncode == 2 and "nothing: not found" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_fp16_graph_is_float16_inside_float32_outside_and_its_error_is_measured(tmp_path):
    import onnx

    torch.manual_seed(0)
    model = _tiny_models()["ve_conv_paper"]().eval()
    report = export_onnx(model, tmp_path / "voice.onnx", fp16=True)
    half = tmp_path / "voice.fp16.onnx"
    assert half.is_file() and (tmp_path / "voice.fp16.onnx.data").is_file()
    graph = onnx.load(str(half))
    weights = [init for init in graph.graph.initializer if init.dims and np.prod(init.dims) > 16]
    assert weights and all(init.data_type == onnx.TensorProto.FLOAT16 for init in weights)
    (inp,), (out,) = graph.graph.input, graph.graph.output
    assert inp.type.tensor_type.elem_type == out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    error = report.fp16_max_relative_error["embedding"]
    assert 1e-6 < error <= 1e-2  # float16 rounding shows, and stays within the bar
    assert read_metadata(half)["fp16_max_relative_error"] == report.fp16_max_relative_error
    assert read_metadata(half)["precision"] == "fp16" and read_metadata(tmp_path / "voice.onnx")["precision"] == "fp32"
    x = np.random.default_rng(3).standard_normal((2, *read_metadata(half)["inputs"]["spectrogram"][1:]))
    (ours,) = _session(half).run(None, {"spectrogram": x.astype(np.float32)})
    with torch.no_grad():
        theirs = model(torch.from_numpy(x.astype(np.float32))).numpy()
    assert np.abs(ours - theirs).max() <= 1e-2 * np.abs(theirs).max()


@pytest.mark.slow
def test_int8_graph_quantises_matmuls_measures_its_cosine_and_is_refused_below_the_bar(tmp_path):
    import onnx

    from s2f.models.registry import MODELS

    torch.manual_seed(0)
    model = MODELS["ast_voice_encoder"].build("tiny").eval()
    report = export_onnx(model, tmp_path / "ast.onnx", int8=True)
    quantized = tmp_path / "ast.int8.onnx"
    graph = onnx.load(str(quantized))
    operators = {node.op_type for node in graph.graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= operators or "DynamicQuantizeMatMul" in operators
    # unsigned weights (U8U8): exact integer sums on x86 CPUs without VNNI too (see precisions.py)
    weights = [t for t in graph.graph.initializer if t.name.endswith("_quantized")]
    assert weights and all(t.data_type == onnx.TensorProto.UINT8 for t in weights)
    cosine = report.int8_min_cosine["embedding"]
    assert 0.999 <= cosine < 1.0  # int8 rounding shows, and stays above the bar
    metadata = read_metadata(quantized)
    assert metadata["precision"] == "int8" and metadata["int8_min_cosine"] == report.int8_min_cosine
    x = np.random.default_rng(5).standard_normal((2, 1024, 128)).astype(np.float32)
    (ours,) = _session(quantized).run(None, {"fbank": x})
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    assert ((ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)).min() >= 0.998
    with pytest.raises(InputError, match="int8 graph's cosine to PyTorch float64"):
        export_onnx(model, tmp_path / "strict.onnx", int8=True, int8_min_cosine=0.9999999)
    assert not list(tmp_path.glob("strict*"))  # nothing written, not even the float32 graph


def test_the_private_fusion_hook_is_used_only_on_checked_onnxscript_versions(monkeypatch, caplog):
    """int8 graphs need attention fused without packing Q, K and V, which onnxscript offers
    only privately: the swap is made on the checked versions, undone after, and any other
    version falls back to the public fusion with a warning."""
    from onnxscript.rewriter.ort_fusions import _core

    from s2f.export import ort_fusions

    original = _core.fuse_attention
    low, high = ort_fusions.CHECKED_ONNXSCRIPT
    assert low <= ort_fusions.onnxscript_version() <= high, "installed onnxscript: re-check _core.fuse_attention"
    with ort_fusions._skip_qkv_packing() as skipped:
        assert skipped and _core.fuse_attention is not original and _core.fuse_attention(None) == 0
    assert _core.fuse_attention is original
    monkeypatch.setattr(ort_fusions, "onnxscript_version", lambda: (high[0], high[1] + 1))
    with caplog.at_level("WARNING", logger="s2f.export.ort_fusions"):
        with ort_fusions._skip_qkv_packing() as skipped:
            assert not skipped and _core.fuse_attention is original
    assert "is not one this export was checked with" in caplog.text
