"""Shared fixtures. Keras reference files are built once per session from the upstream
packages with random weights (nothing can be downloaded) and cached in a temp dir.

Tiers go by what a test does, not by module: ``@pytest.mark.slow`` marks a test that exports
full bundles, trains, installs or starts many processes; everything else (pure functions, and
pipelines, engines and a server on the micro bundle below) runs in ``make test-fast``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402
from support.helpers import REPO  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def private_verify_cache(tmp_path_factory):
    """The runtime remembers verified bundle files per user; tests (and the commands they
    start, which inherit the environment) keep that record in a temp dir, not in ~/.cache."""
    os.environ["S2F_CACHE"] = str(tmp_path_factory.mktemp("s2f-cache"))


@pytest.fixture(scope="session")
def micro(tmp_path_factory):
    """Micro models, every precision of their graphs and a bundle (``support.isa_micro``), built
    once in a native process: small enough for the fast tier's pipeline, engine and server tests."""
    from support.isa_micro import build_in_a_native_process

    return build_in_a_native_process(tmp_path_factory.mktemp("micro"))


@pytest.fixture(scope="session")
def keras_file(tmp_path_factory):
    """keras_file(arch, include_top, whole_model) -> path of an upstream Keras .h5 file."""
    from s2f.converters.keras_reference import write_random_keras_file

    root = tmp_path_factory.mktemp("keras")
    cache: dict[tuple, Path] = {}

    def make(arch: str, include_top: bool = True, whole_model: bool = False) -> Path:
        key = (arch, include_top, whole_model)
        if key not in cache:
            name = f"{arch}-{'top' if include_top else 'notop'}-{'model' if whole_model else 'weights'}.h5"
            cache[key] = write_random_keras_file(root / name, arch, include_top, whole_model, seed=len(cache))
        return cache[key]

    return make


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory):
    """The project's wheel, built once from this checkout as a user's pip would build it."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("speech2face-*.whl")
    return wheel



@pytest.fixture(scope="session")
def shared_bundle(tmp_path_factory):
    """shared_bundle(target, seed, embedding_dim, with_face_encoder) -> a copy at ``target`` of
    ``export_bundle`` of ``helpers.small_models(seed, embedding_dim)``. Several modules need the
    very same bundle and an export takes 10-25 s on 2 cores, so each combination is exported
    once per session; every caller gets its own copy, to read or to damage."""
    import shutil

    from support.helpers import small_models

    from s2f.export.bundle import export_bundle

    exported: dict[tuple[int, int, bool], Path] = {}

    def copy_of(target: Path, seed: int = 0, embedding_dim: int = 2048, with_face_encoder: bool = False) -> Path:
        key = (seed, embedding_dim, with_face_encoder)
        if key not in exported:
            voice, decoder, face = small_models(seed, embedding_dim)
            exported[key] = tmp_path_factory.mktemp("shared_bundle") / "bundle"
            export_bundle(exported[key], voice, decoder, face if with_face_encoder else None)
        shutil.copytree(exported[key], target)
        return target

    return copy_of
