"""What several test modules share: the repository, the sample face, the command line as a
user runs it, fresh virtual environments and small models that fit together. Fixtures stay in
``conftest.py``; plain functions live here so that test modules import them by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from s2f.assets import SAMPLE_FACE

REPO = Path(__file__).resolve().parents[2]
FACES = SAMPLE_FACE.parent  # a directory of face images (the one sample)
# The demo's models on unseen identities, gated on the worst of the learning tests' corpus seeds
# (test_learning: seed 0, test_decoder_seeds: another); bench/decoder_seeds.py measures 20.
DECODER_GATE = 0.65  # the decoder's texture L1 / the mean training face's
FACE_TO_FACE_GATE = 3.0  # SF2F face->face recall@5 / chance: the generated faces are recognisable
SPEECH_TO_FACE_GATE = 2.0  # SF2F speech->face recall@5 / chance
# skin ΔE (CIELAB) of face->face / how far the real identities' skin lies from their average:
# answering the average colour scores about 1 (the spread), so at most 0.5 is half of the
# difference between people recovered; a colour cast (olive skin for pale) scores above 1
SKIN_GATE = 0.5


def assert_colour_learned(colour: dict) -> None:
    """Face->face skin colour within ``SKIN_GATE`` of the real identities' own spread."""
    errors = colour["face_to_face"]
    assert errors["delta_e"]["skin"] <= SKIN_GATE * errors["real_spread_delta_e"]["skin"], errors


def run_s2f(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "s2f", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


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


def rewrite_manifest_to_match(bundle: Path, *names: str) -> None:
    """Rewrite a bundle's manifest so its sha256 and sizes match the files as they now are, as
    whoever hands out a hostile bundle would."""
    import hashlib
    import json

    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in names:
        entry = manifest["files"][name]
        entry["sha256"] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
        entry["bytes"] = (bundle / name).stat().st_size
    (bundle / "manifest.json").write_text(json.dumps(manifest))


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


def random_decoder_faces(root: Path, people: int = 4, faces: int = 3, embedding_dim: int = 16, seed: int = 0) -> Path:
    """A preprocessed decoder tree of ``people`` x ``faces`` random targets, embeddings and
    72-point landmarks, laid out as ``s2f preprocess faces`` writes it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for person in range(people):
        images = Path(root) / f"p{person}" / "images"
        images.mkdir(parents=True)
        for k in range(faces):
            np.save(images / f"f{k}_target.npy", rng.integers(0, 255, (224, 224, 3), dtype=np.uint8))
            np.save(images / f"f{k}_embedding.npy", rng.random(embedding_dim, dtype=np.float32))
            np.save(images / f"f{k}_landmarks.npy", rng.uniform(0, 224, 144).astype(np.float32))
    return Path(root)


def write_m4a(path, samples, rate: int) -> None:
    """AAC in an MP4 container, as VoxCeleb2 ships its clips (PyAV's encoder)."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame_size = 1024
        pts = 0
        for start in range(0, len(samples), frame_size):
            chunk = samples[start:start + frame_size].astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, pts
            pts += chunk.shape[1]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
