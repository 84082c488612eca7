"""The synthetic corpus: deterministic, resumable, in the raw dataset layout, and carrying a
voice -> face signal that a simple model recovers on held-out identities."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
from PIL import Image
from support.helpers import run_s2f

from s2f.data.synth import SynthConfig, synthesize_corpus
from s2f.runtime.preprocess.audio import load_audio
from s2f.runtime.preprocess.features import kaldi_fbank
from s2f.runtime.preprocess.images import load_face


def _digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_layout_and_growth(tmp_path):
    small = tmp_path / "small"
    done = run_s2f("data", "synth", small, "--identities", "3", "--clips", "2", "--images", "2", "--seconds", "1",
                   "--workers", "2")
    assert done.returncode == 0, done.stderr
    files = _digest(small)
    assert {"id00000/audios/clip00.wav", "id00002/images/img01.png", "id00002/images/img01_landmarks.npy",
            "identities.csv", "synth.json"} <= set(files)
    waveform = load_audio(small / "id00001" / "audios" / "clip01.wav")
    assert 0.5 * 16000 <= waveform.size <= 1.3 * 16000 and np.abs(waveform).max() > 0.1
    image = load_face(small / "id00001" / "images" / "img00.png")
    assert image.shape == (224, 224, 3)
    assert np.load(small / "id00001" / "images" / "img00_landmarks.npy").shape == (144,)

    # identity k is the same in a bigger corpus; a rerun completes and changes nothing made
    big = tmp_path / "big"
    synthesize_corpus(big, SynthConfig(identities=5, clips=2, images=2, seconds=1.0))
    grown = _digest(big)
    assert all(grown[name] == digest for name, digest in files.items() if name.startswith("id0"))
    (big / "id00004" / "audios" / "clip01.wav").unlink()
    synthesize_corpus(big, SynthConfig(identities=5, clips=2, images=2, seconds=1.0), workers=1)
    assert _digest(big) == grown

    other = run_s2f("data", "synth", big, "--identities", "5", "--clips", "2", "--images", "2", "--seconds", "1",
                    "--seed", "7")
    assert other.returncode == 2 and "other settings (seed differ)" in other.stderr


def _ridge(train_x, train_y, test_x, strength=1.0):
    mean, scale = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mean) / scale, (test_x - mean) / scale
    weights = np.linalg.solve(a.T @ a + strength * len(a) * np.eye(a.shape[1]), a.T @ (train_y - train_y.mean(0)))
    return b @ weights + train_y.mean(0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthesize_corpus(root, SynthConfig(identities=60, clips=2, images=1, seconds=2.0), workers=2)
    rows = list(csv.DictReader(open(root / "identities.csv")))
    voices, attributes, faces = [], [], []
    for row in rows:
        clips = []
        for clip in sorted((root / row["identity"] / "audios").glob("*.wav")):
            fbank = kaldi_fbank(load_audio(clip), 16000, 40)
            energy = fbank.mean(1)
            voiced = fbank[energy > np.median(energy)]
            clips.append(np.concatenate([voiced.mean(0), voiced.std(0)]))
        voices.append(np.mean(clips, axis=0))
        attributes.append([float(row[k]) for k in ("face_width", "jaw", "skin_r", "hair_length")])
        face = load_face(root / row["identity"] / "images" / "img00.png")[40:200, 40:184]
        faces.append(np.asarray(Image.fromarray(face).resize((12, 12), Image.BILINEAR), np.float32).ravel() / 255)
    return np.array(voices), np.array(attributes), np.array(faces)


@pytest.mark.slow
def test_voice_predicts_face_on_held_out_identities(corpus):
    """Voice statistics -> linear model -> face attributes and pixels of 15 unseen identities."""
    voices, attributes, faces = corpus
    train, test = slice(0, 45), slice(45, 60)
    predicted = _ridge(voices[train], attributes[train], voices[test])
    baseline = ((attributes[test] - attributes[train].mean(0)) ** 2).sum(0)
    r2 = 1 - ((predicted - attributes[test]) ** 2).sum(0) / baseline
    assert (r2 > 0.5).all(), r2  # face width, jaw, skin tone, hair length
    pixels = _ridge(voices[train], faces[train], voices[test])
    ratio = ((pixels - faces[test]) ** 2).mean() / ((faces[train].mean(0) - faces[test]) ** 2).mean()
    assert ratio < 0.8, ratio  # better than the mean face


def test_shuffled_voices_predict_nothing(corpus):
    """The control that makes the test above meaningful: break the voice-identity link."""
    voices, attributes, _ = corpus
    shuffled = voices[np.random.default_rng(0).permutation(len(voices))]
    predicted = _ridge(shuffled[:45], attributes[:45], shuffled[45:])
    r2 = 1 - ((predicted - attributes[45:]) ** 2).sum(0) / ((attributes[45:] - attributes[:45].mean(0)) ** 2).sum(0)
    assert (r2 < 0.3).all(), r2


@pytest.mark.slow
def test_the_synthetic_teacher_tells_people_apart():
    """What s2f.data.synth_teacher's docstring promises: two photos of one person are far more
    alike to the calibrated random VGG-Face than photos of two people."""
    import torch

    from s2f.data.synth_face import draw_face
    from s2f.data.synth_identity import Identity
    from s2f.data.synth_teacher import synthetic_face_encoder
    from s2f.runtime.preprocess.faces import preprocess

    model = synthetic_face_encoder(seed=0, calibration_faces=16)
    people = [Identity.draw(7, index) for index in range(4)]
    photos = [draw_face(person, 224, np.random.default_rng([7, index, shot]))[0]
              for index, person in enumerate(people) for shot in range(2)]
    with torch.no_grad():
        embedding = model.embed(torch.from_numpy(preprocess(photos, model.config.preprocessing)))
    unit = torch.nn.functional.normalize(embedding, dim=1)
    cosine = (unit @ unit.T).numpy()
    person = np.repeat(np.arange(4), 2)
    same = cosine[(person[:, None] == person[None, :]) & ~np.eye(8, dtype=bool)]
    other = cosine[person[:, None] != person[None, :]]
    assert same.mean() > other.mean() + 0.2 and other.mean() < 0.8, (same.mean(), other.mean())
