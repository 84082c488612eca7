"""The command line: real help text, and the runtime layer stays torch-free."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO, run_s2f


@pytest.mark.parametrize("command", [[], ["convert"], ["parity"], ["demo"], ["weights"], ["weights", "fetch"]])
def test_help(command):
    done = run_s2f(*command, "--help")
    assert done.returncode == 0
    assert "usage: s2f" in done.stdout and len(done.stdout) > 200


def test_weights_list():
    done = run_s2f("weights", "list")
    assert done.returncode == 0 and "rcmalli-senet50-notop" in done.stdout


def test_runtime_and_converter_never_import_torch():
    """runtime/ must run without torch; converting a Keras file does not need it either."""
    code = ("import sys, runtime.face_preprocess, runtime.atomic, runtime.audio, runtime.features, runtime.image,"
            " runtime.voice_input, runtime.grid, runtime.bundle, runtime.verify_cache, runtime.providers,"
            " runtime.pipeline, runtime.cli,"
            " converters.vggface, converters.convert;"
            "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules, 'heavy import'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
