"""``s2f data synth``: a synthetic Speech2Face corpus in the original's raw layout, so the
whole system trains and is tested without downloading VoxCeleb.

    OUT/<identity>/audios/clipNN.wav              16 kHz 16-bit speech-like clips
    OUT/<identity>/images/imgNN.png               224x224 faces
    OUT/<identity>/images/imgNN_landmarks.npy     their exact 72 landmarks (preprocess --landmarks given)
    OUT/identities.csv                            every identity's latent traits and attributes
    OUT/synth.json                                the settings, to refuse mixing corpora

Everything is a pure function of (seed, identity index, clip or image index): reruns and
resumed runs give identical files, and identity k is the same in a corpus of any size.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from s2f.core.atomic import atomic_output
from s2f.core.progress import progress_bar
from s2f.data.jobs import process_map, save_array
from s2f.data.landmarks import to_72
from s2f.data.layout import AUDIO_DIR, IMAGE_DIR, LANDMARKS_SUFFIX
from s2f.data.settings import claim_settings
from s2f.data.synth_face import draw_face
from s2f.data.synth_identity import Identity
from s2f.data.synth_voice import synthesize_voice

IDENTITIES_CSV = "identities.csv"
SETTINGS_FILE = "synth.json"


@dataclass(frozen=True)
class SynthConfig:
    """The synthetic corpus; deterministic from its fields.

    Args:
        identities: identities to draw.
        clips: clips per identity.
        images: images per identity.
        seconds: mean clip length (each varies 0.6-1.2x).
        image_size: face image side in pixels.
        sample_rate: clips' sample rate in Hz.
        seed: what draws the identities, their clips and their faces.
    """

    identities: int = 100
    clips: int = 4
    images: int = 3
    seconds: float = 6.0
    image_size: int = 224
    sample_rate: int = 16000
    seed: int = 0


def _write_identity(args: tuple[SynthConfig, int]) -> dict[str, object]:
    config, index = args
    identity = Identity.draw(config.seed, index)
    folder = Path(config_out_dir[0]) / identity.name
    audio_dir, image_dir = folder / AUDIO_DIR, folder / IMAGE_DIR
    audio_dir.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    for clip in range(config.clips):
        path = audio_dir / f"clip{clip:02d}.wav"
        if path.is_file():
            continue
        rng = np.random.default_rng([config.seed, index, 1, clip])
        seconds = config.seconds * rng.uniform(0.6, 1.2)  # short clips loop, long ones crop
        _write_wav(path, synthesize_voice(identity, seconds, config.sample_rate, rng), config.sample_rate)
    for image_index in range(config.images):
        path = image_dir / f"img{image_index:02d}.png"
        landmarks_path = image_dir / f"img{image_index:02d}{LANDMARKS_SUFFIX}"
        if path.is_file() and landmarks_path.is_file():
            continue
        rng = np.random.default_rng([config.seed, index, 2, image_index])
        image, points = draw_face(identity, config.image_size, rng)
        save_array(landmarks_path, to_72(points).reshape(-1))
        with atomic_output(path, "wb", durable=False) as handle:
            Image.fromarray(image).save(handle, format="PNG")
    return {"identity": identity.name, **identity.attributes()}


def _write_wav(path: Path, waveform: np.ndarray, sample_rate: int) -> None:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sample_rate, subtype="PCM_16", format="WAV")
    with atomic_output(path, "wb", durable=False) as handle:
        handle.write(buffer.getvalue())


config_out_dir: list[str] = [""]  # set in each worker; Pool initialisers cannot return


def _init(out_dir: str) -> None:
    config_out_dir[0] = out_dir


def synthesize_corpus(out_dir: str | Path, config: SynthConfig, workers: int = 1) -> Path:
    """Write (or complete) the corpus; returns the path of identities.csv."""
    out_dir = Path(out_dir)
    if config.identities < 1 or config.clips < 1 or config.images < 1:
        raise ValueError("identities, clips and images must each be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    # the identity count is left out: growing a corpus keeps every existing identity as is
    settings = {key: value for key, value in asdict(config).items() if key != "identities"}
    claim_settings(out_dir / SETTINGS_FILE, {"kind": "synthetic_corpus", **settings})
    tasks = [(config, index) for index in range(config.identities)]
    progress = dict(desc="synthetic identities", unit="id", total=len(tasks))
    if workers <= 1:
        _init(str(out_dir))
        rows = [_write_identity(task) for task in progress_bar(tasks, **progress)]
    else:
        rows = list(progress_bar(process_map(_write_identity, tasks, workers, _init, (str(out_dir),), chunksize=2),
                         **progress))
    csv_path = out_dir / IDENTITIES_CSV
    with atomic_output(csv_path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return csv_path
