"""Shared fixtures. Keras reference files are built once per session from the upstream
packages with random weights (nothing can be downloaded) and cached in a temp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
from s2f.assets import SAMPLE_FACE  # noqa: E402

FACES = SAMPLE_FACE.parent  # a directory of face images (the one sample)


@pytest.fixture(scope="session", autouse=True)
def private_verify_cache(tmp_path_factory):
    """The runtime remembers verified bundle files per user; tests (and the commands they
    start, which inherit the environment) keep that record in a temp dir, not in ~/.cache."""
    os.environ["S2F_CACHE_DIR"] = str(tmp_path_factory.mktemp("s2f-cache"))


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


def run_s2f(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "s2f", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory):
    """The project's wheel, built once from this checkout as a user's pip would build it."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("speech2face-*.whl")
    return wheel


def fresh_venv(root: Path, requirement: str) -> Path:
    """A new virtual environment at ``root`` with ``requirement`` installed; returns its bin/."""
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    done = subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", requirement],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "bin"


def run_isolated(command: list, **kwargs) -> subprocess.CompletedProcess:
    """Run a command of a fresh venv without this checkout on its path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, env=env, **kwargs)


def small_models(seed: int = 0, embedding_dim: int = 2048):
    """A tiny VE_conv, a tiny decoder and a random ResNet50 face encoder (2048-D, the smallest
    real one) that fit together: what bundle and serving tests export."""
    import torch

    from s2f.models.face_encoder import build_face_encoder, he_normal_init_
    from s2f.models.face_encoder_config import FaceEncoderConfig
    from s2f.models.registry import MODELS

    torch.manual_seed(seed)
    voice = MODELS["ve_conv"].build("tiny", embedding_dim=embedding_dim).eval()
    decoder = MODELS["face_decoder"].build("tiny", embedding_dim=embedding_dim).eval()
    face = he_normal_init_(build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-resnet50", False)), seed)
    return voice, decoder, face


def mean_face_landmarks(points: int = 72) -> list[float]:
    """A plausible mean face's landmarks at 224x224 (a synthetic person's, dlib order; 72 in
    the original's order): what a warping decoder's ``mean_landmarks`` holds."""
    import numpy as np

    from s2f.data.landmarks import to_72
    from s2f.data.synth_face import face_landmarks
    from s2f.data.synth_identity import Identity

    shape, _ = face_landmarks(Identity("mean", 0.0, 0.0, 0.0, 0.0), 224, np.random.default_rng(0))
    return [float(v) for v in (to_72(shape) if points == 72 else shape).reshape(-1)]


def warping_decoder(embedding_dim: int = 2048, seed: int = 0):
    """A tiny warping decoder with a random (non-zero) texture base."""
    import torch

    from s2f.models.registry import MODELS

    torch.manual_seed(seed)
    decoder = MODELS["face_decoder"].build("tiny", embedding_dim=embedding_dim, warp=True, texture_base=True,
                                           mean_landmarks=mean_face_landmarks())
    with torch.no_grad():
        decoder.texture_base.normal_(0, 1)
        decoder.landmark_out.weight.mul_(0.05)  # landmarks near the mean face, as a trained decoder's are
    return decoder.eval()
