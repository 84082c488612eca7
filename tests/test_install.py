"""The package as users install it: one top-level import package in the wheel, and each
extra working on its own in a fresh virtual environment (``[convert]`` without torch here;
``[runtime]`` without torch in test_runtime.py)."""

from __future__ import annotations

import sys
import zipfile

import pytest
from support.helpers import fresh_venv, run_isolated

pytestmark = pytest.mark.slow  # end-to-end: models, processes or servers built per module


def test_the_wheel_installs_only_the_s2f_package(built_wheel):
    names = zipfile.ZipFile(built_wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"s2f"}
    for module in ("s2f/runtime/pipeline.py", "s2f/converters/vggface.py", "s2f/export/bundle.py",
                   "s2f/weights/registry.py", "s2f/models/registry.py", "s2f/assets/sample_face.jpg",
                   "s2f/runtime/serve/web/index.html"):
        assert module in names, module
    (top_level_txt,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert zipfile.ZipFile(built_wheel).read(top_level_txt).decode().split() == ["s2f"]


def test_convert_extra_alone_converts_without_torch(built_wheel, keras_file, tmp_path_factory, tmp_path):
    from safetensors.numpy import load_file

    bin_dir = fresh_venv(tmp_path_factory.mktemp("convert_env") / "venv", f"{built_wheel}[convert]")
    probe = run_isolated([bin_dir / "python", "-c", "import h5py, torch"])
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    for command in ([bin_dir / "s2f", "--help"], [bin_dir / "s2f-runtime", "--help"],
                    [bin_dir / "s2f", "weights", "list"]):
        done = run_isolated(command)
        assert done.returncode == 0 and done.stdout, (command, done.stderr)

    source = keras_file("rcmalli-resnet50", include_top=False)
    done = run_isolated([bin_dir / "s2f", "convert", source, "-o", tmp_path / "torch_free.safetensors"])
    assert done.returncode == 0, done.stderr
    assert "architecture: rcmalli-resnet50 (without top" in done.stdout
    here = run_isolated([sys.executable, "-m", "s2f", "convert", source, "-o", tmp_path / "reference.safetensors"],
                        cwd=tmp_path)
    ours, reference = (load_file(tmp_path / name) for name in ("torch_free.safetensors", "reference.safetensors"))
    assert here.returncode == 0 and list(ours) == list(reference) and len(ours) > 200
    assert all((ours[key] == reference[key]).all() for key in reference)

    expected = {
        ("train", "decoder", tmp_path, "-o", tmp_path / "run"): "train needs PyTorch: pip install 'speech2face[train]'",
        ("parity", source): "parity needs TensorFlow: pip install 'speech2face[parity]'",
        ("export", "model", tmp_path, "-o", tmp_path / "m.onnx"): "export needs PyTorch: pip install "
                                                                  "'speech2face[export]'",
        ("demo",): "demo needs TensorFlow: pip install 'speech2face[parity]'",
    }
    for arguments, message in expected.items():
        done = run_isolated([bin_dir / "s2f", *arguments])
        assert done.returncode == 2 and done.stderr.strip() == f"s2f: error: {message}", (arguments, done.stderr)
    done = run_isolated([bin_dir / "s2f-runtime", "speech2face", source, "-o", tmp_path / "x.png",
                         "--bundle", tmp_path])
    assert done.returncode == 2 and done.stderr.strip() == \
        "s2f-runtime: error: speech2face needs onnxruntime: pip install 'speech2face[runtime]'"
