"""The command lines: real help text, instant and light (--help imports no heavy library), a
missing extra is one line naming what to install, and -v/--quiet set what is reported."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.helpers import REPO, run_s2f

HEAVY = ("torch", "tensorflow", "tf_keras", "onnx", "onnxruntime", "transformers", "h5py", "keras")


@pytest.mark.parametrize("command", [[], ["convert"], ["parity"], ["demo"], ["weights"], ["weights", "fetch"],
                                     ["train", "decoder"], ["train", "voice"], ["evaluate"], ["export", "bundle"],
                                     ["preprocess", "faces"], ["data", "split"]])
def test_help(command):
    done = run_s2f(*command, "--help")
    assert done.returncode == 0
    assert "usage: s2f" in done.stdout and len(done.stdout) > 200


@pytest.mark.parametrize("prog,module", [("s2f", "s2f.cli"), ("s2f-runtime", "s2f.runtime.cli")])
def test_help_imports_no_heavy_library(prog, module):
    code = (f"import sys; from {module} import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"usage: {prog}" in done.stdout
    # how long --help takes is measured by bench/convert_speed.py (s2f_help_s), not asserted here


def test_weights_list():
    done = run_s2f("weights", "list")
    assert done.returncode == 0 and "rcmalli-senet50-notop" in done.stdout


# a Python started with this hides the named packages, as an environment without the extra would
HIDE = ("import importlib.abc, sys\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in HIDDEN:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from s2f.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")


@pytest.mark.parametrize("hidden,arguments,message", [
    (("tf_keras", "tensorflow"), ["parity", "x.h5"], "parity needs TensorFlow: pip install 'speech2face[parity]'"),
    (("h5py",), ["convert", "x.h5", "-o", "y.safetensors"], "convert needs h5py: pip install 'speech2face[convert]'"),
    (("torch",), ["train", "decoder", ".", "-o", "run"], "train needs PyTorch: pip install 'speech2face[train]'"),
    (("onnxscript",), ["export", "model", ".", "-o", "m.onnx"],
     "export needs onnxscript: pip install 'speech2face[export]'"),
    (("soundfile",), ["preprocess", "audio", ".", "out", "--encoder", "ve_conv"],
     "preprocess audio needs soundfile: pip install 'speech2face[runtime]'"),
])
def test_missing_extra_is_one_line_naming_it(tmp_path, hidden, arguments, message):
    (tmp_path / "x.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    code = f"HIDDEN = {hidden!r}\n" + HIDE
    done = subprocess.run([sys.executable, "-c", code, *arguments], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"s2f: error: {message}"


def test_quiet_and_verbose(tmp_path):
    arguments = ["data", "synth", "--identities", "2", "--clips", "1", "--images", "1", "--seconds", "0.3",
                 "--workers", "1"]
    normal = run_s2f(*arguments, tmp_path / "a")
    quiet = run_s2f("--quiet", *arguments, tmp_path / "b")
    assert normal.returncode == quiet.returncode == 0
    assert "synthetic identities" in normal.stderr  # the progress bar
    assert quiet.stderr == "" and "wrote 2 identities" in quiet.stdout  # results still printed
    verbose = run_s2f("-v", "data", "split", tmp_path / "a", "-o", tmp_path / "split.json")
    assert verbose.returncode == 0 and "identities ->" in verbose.stdout
    both = run_s2f("-v", "-q", "weights", "list")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
