"""Existing PyTorch ports are imported safely and, where the original was wrong, repaired."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from support.helpers import FACES, run_s2f

from s2f.converters.parity import run_parity
from s2f.converters.torch_ports import _original_key_map
from s2f.models.face_encoder import load_face_encoder


def _keras_kernels(path):
    """Arrays of an upstream .h5 in Keras layout, by weighted-layer order."""
    from s2f.converters.keras_h5 import KerasWeightsFile

    with KerasWeightsFile(path) as kfile:
        return [(layer.weight("kernel").dataset[()], layer.weight("bias").dataset[()])
                for layer in kfile.weighted_layers]


def _original_state_dict(path, fc_as_conv: bool) -> dict:
    """What the original Speech-to-Face conversion scripts saved: Keras kernels transposed
    to OIHW / (out, in), *without* fc6's row permutation, under layerN.i names."""
    ours_to_original = {v: k for k, v in _original_key_map(fc_as_conv).items()}
    names = [f"conv{b}_{i}" for b, n in enumerate((2, 2, 3, 3, 3), 1) for i in range(1, n + 1)]
    state = {}
    for name, (kernel, bias) in zip(names + ["fc6", "fc7", "fc8"], _keras_kernels(path), strict=True):
        weight = torch.from_numpy(kernel)
        weight = weight.permute(3, 2, 0, 1) if weight.ndim == 4 else weight.T
        state[ours_to_original[f"{name}.weight"]] = weight.contiguous()
        state[ours_to_original[f"{name}.bias"]] = torch.from_numpy(bias)
    return state


@pytest.mark.slow
def test_original_rcmalli_port_gets_fc6_repaired(keras_file, tmp_path):
    source = keras_file("rcmalli-vgg16", True, False)
    pth = tmp_path / "VGGFace16_rcmalli.pth"
    torch.save(_original_state_dict(source, fc_as_conv=False), pth)
    out = tmp_path / "fixed.safetensors"
    done = run_s2f("convert", pth, "-o", out)
    assert done.returncode == 0, done.stderr
    assert "rcmalli-vgg16" in done.stdout and "fc6 input rows permuted" in done.stdout
    report = run_parity(source, images=[FACES], converted=out)
    assert report.passed and report.gated.min_cosine > 0.999999


@pytest.mark.slow
def test_original_serengil_port(keras_file, tmp_path):
    source = keras_file("serengil", True, False)
    pth = tmp_path / "VGGFace_serengil.pth"
    torch.save(_original_state_dict(source, fc_as_conv=True), pth)
    out = tmp_path / "serengil.safetensors"
    assert run_s2f("convert", pth, "-o", out, "--arch", "serengil").returncode == 0
    assert run_parity(source, converted=out).passed


@pytest.mark.slow
def test_deepface_pth_layout(keras_file, tmp_path):
    """deepface's own PyTorch model class defines the .pth layout; load ours into it."""
    from deepface.models.facial_recognition.pytorch.VGGFace import VggFaceBaseModel

    source = keras_file("serengil", True, False)
    converted = tmp_path / "from-h5.safetensors"
    assert run_s2f("convert", source, "-o", converted).returncode == 0
    theirs = VggFaceBaseModel()
    theirs.load_state_dict(load_face_encoder(converted).state_dict())
    pth = tmp_path / "vgg_face_weights.pth"
    torch.save(theirs.state_dict(), pth)
    out = tmp_path / "from-pth.safetensors"
    done = run_s2f("convert", pth, "-o", out)
    assert done.returncode == 0 and "serengil" in done.stdout
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(load_face_encoder(out).embed(x), theirs.eval().embed(x))  # float32 rounding


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused_not_run(tmp_path):
    pth = tmp_path / "evil.pth"
    torch.save({"conv1_1.weight": _Exploit()}, pth, pickle_module=pickle)
    done = run_s2f("convert", pth, "-o", tmp_path / "x.safetensors", cwd=tmp_path)
    assert done.returncode == 2
    assert "weights_only" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "x.safetensors").exists()


def test_unknown_state_dict(tmp_path):
    pth = tmp_path / "other.pth"
    torch.save({"backbone.weight": torch.zeros(2)}, pth)
    done = run_s2f("convert", pth, "-o", tmp_path / "x.safetensors")
    assert done.returncode == 2 and "unrecognised PyTorch state dict" in done.stderr


@pytest.mark.parametrize("arch", ["rcmalli-resnet50"])
def test_arch_mismatch_on_ports(tmp_path, arch):
    pth = tmp_path / "p.pth"
    torch.save({"conv1_1.weight": torch.zeros(64, 3, 3, 3)}, pth)
    done = run_s2f("convert", pth, "-o", tmp_path / "x.safetensors", "--arch", arch)
    assert done.returncode == 2
