"""Every architecture, top and notop, save_weights and whole-model files: convert with
``s2f convert`` and prove parity against the upstream Keras model, layer by layer."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open
from support.helpers import FACES, run_s2f

from s2f.converters.parity import run_parity

pytestmark = pytest.mark.slow  # end-to-end: models, processes or servers built per module

CASES = [
    # (arch, include_top, whole_model); the two full-size VGG files are covered with top
    ("serengil", True, False),
    ("serengil", False, True),
    ("rcmalli-vgg16", True, False),
    ("rcmalli-vgg16", False, True),
    ("rcmalli-vgg16", False, False),
    ("rcmalli-resnet50", True, False),
    ("rcmalli-resnet50", False, True),
    ("rcmalli-senet50", True, True),
    ("rcmalli-senet50", False, False),
]


@pytest.mark.parametrize("arch,include_top,whole_model", CASES,
                         ids=[f"{a}-{'top' if t else 'notop'}-{'model' if w else 'weights'}" for a, t, w in CASES])
def test_convert_then_parity(keras_file, tmp_path, arch, include_top, whole_model):
    source = keras_file(arch, include_top, whole_model)
    output = tmp_path / "converted.safetensors"
    done = run_s2f("convert", source, "-o", output)
    assert done.returncode == 0, done.stderr
    assert f"architecture: {arch} ({'with' if include_top else 'without'} top; detected" in done.stdout

    with safe_open(str(output), framework="np") as handle:
        meta = handle.metadata()
    assert meta["arch"] == arch and meta["include_top"] == str(include_top).lower()
    import hashlib
    import json

    record = json.loads(meta["source"])  # the one provenance record, as every import writes it
    assert record["file"] == source.name
    assert record["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()  # filled in after the write
    assert record["format"] == ("keras-h5-whole-model" if whole_model else "keras-h5-weights")
    from s2f.models.face_encoder import load_face_encoder

    assert load_face_encoder(output).source == record  # and the loaded model carries it into a bundle

    report = run_parity(source, images=[FACES], converted=output)
    assert report.passed, report.to_dict()["verdict"]
    verdict = report.verdict  # Keras within float32 rounding of the port's float64 result
    assert verdict.error <= verdict.allowed and verdict.reference_error > 0
    assert report.inputs[-1] == "sample_face.jpg"  # the real face went through
    assert len(report.layers) >= 13
    # every layer agrees in direction (a layer with another kernel layout or padding would not)
    assert min(c.min_cosine for c in report.layers) > 0.9999


def test_parity_command_writes_json_and_detects_a_wrong_port(keras_file, tmp_path):
    """The gate must fail on a broken port: flip fc6's rows back to Keras order (the
    original project's bug) and parity has to say so with exit 1."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    source = keras_file("rcmalli-vgg16", True, False)
    good = tmp_path / "good.safetensors"
    assert run_s2f("convert", source, "-o", good).returncode == 0
    report_path = tmp_path / "report.json"
    done = run_s2f("parity", source, "--converted", good, "--images", FACES, "--report", report_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["passed"] and report["gate"] == "embedding"
    assert {o["name"] for o in report["outputs"]} == {"output", "embedding"}

    with safe_open(str(good), framework="np") as handle:
        meta = handle.metadata()
    tensors = load_file(str(good))
    fc6 = tensors["fc6.weight"]  # (4096, C*H*W) -> back to the H*W*C order Keras uses
    tensors["fc6.weight"] = np.ascontiguousarray(fc6.reshape(4096, 512, 7, 7).transpose(0, 2, 3, 1).reshape(4096, -1))
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    done = run_s2f("parity", source, "--converted", bad)
    assert done.returncode == 1
    assert "FAIL" in done.stdout
