"""Worker pools end at once, with one line, when their workers die, instead of respawning
them forever."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from s2f.core.errors import InputError
from s2f.data.jobs import process_map


def test_workers_that_die_on_start_fail_fast():
    started = time.perf_counter()
    with pytest.raises(InputError, match="a worker process died"):
        list(process_map(abs, [1, -2, 3], workers=2, initializer=os._exit, initargs=(3,)))
    assert time.perf_counter() - started < 60  # a hang guard (respawning forever), not a speed figure


def test_results_come_back_in_order():
    assert list(process_map(abs, [-3, 1, -2, 5], workers=2)) == [3, 1, 2, 5]


def test_a_script_without_main_guard_fails_instead_of_hanging(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(
        "from pathlib import Path\n"
        "from s2f.data.synth import SynthConfig, synthesize_corpus\n"
        f"synthesize_corpus(Path({str(tmp_path / 'corpus')!r}), SynthConfig(identities=4, clips=1, images=1, "
        "seconds=0.5), workers=2)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    assert "a worker process died" in done.stderr and "__main__" in done.stderr
