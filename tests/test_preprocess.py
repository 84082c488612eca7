"""``s2f preprocess audio|faces`` end to end on real files: exact outputs, mirrored tree,
bad files reported and skipped, resume, settings guard, parallel workers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile
from PIL import Image
from support.helpers import SAMPLE_FACE, run_s2f

from s2f.core.errors import InputError
from s2f.data.synth import SynthConfig, synthesize_corpus
from s2f.data.synth_voice import speech_clip
from s2f.runtime.preprocess.faces import decoder_target, preprocess
from s2f.runtime.preprocess.images import load_face
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

GOOD_CLIPS = ("alice/audios/a.wav", "alice/audios/session2/b.flac", "bob/audios/8bit.wav", "bob/audios/stereo48k.wav")


@pytest.fixture(scope="module")
def audio_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw_audio")
    voice = speech_clip(4.0, f0=140.0)
    for relative in GOOD_CLIPS:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(root / GOOD_CLIPS[0], voice, 16000)
    soundfile.write(root / GOOD_CLIPS[1], speech_clip(9.0, f0=200.0, seed=1), 16000, format="FLAC")
    soundfile.write(root / GOOD_CLIPS[2], voice, 16000, subtype="PCM_U8")
    stereo48 = np.stack([speech_clip(3.0, 48000, f0=110.0), speech_clip(3.0, 48000, f0=111.0, seed=2)], axis=1)
    soundfile.write(root / GOOD_CLIPS[3], stereo48, 48000)
    with soundfile.SoundFile(root / "bob/audios/hour.wav", "w", 8000, 1, subtype="PCM_16") as handle:
        block = (speech_clip(6.0, 8000) * 32767).astype(np.int16)
        for _ in range(600):  # an hour at 8 kHz: 57 MB, of which 6 s are read
            handle.write(block)
    bad = root / "carol" / "audios"
    bad.mkdir(parents=True)
    (bad / "empty.wav").touch()
    soundfile.write(bad / "zero.wav", np.zeros(0, np.float32), 16000)
    soundfile.write(bad / "silent.wav", np.zeros(16000, np.float32), 16000)
    nan = voice.copy()
    nan[500] = np.nan
    soundfile.write(bad / "nan.wav", nan, 16000, subtype="FLOAT")
    (bad / "notes.mp3").write_text("not audio at all\n" * 50)
    soundfile.write(bad / "cut.ogg", voice, 16000, format="OGG", subtype="VORBIS")
    (bad / "cut.ogg").write_bytes((bad / "cut.ogg").read_bytes()[:300])
    (root / "carol" / "readme.txt").write_text("ignored: not audio by name")
    return root


def _failures(report_path) -> dict[str, str]:
    """file name -> error of every failed file in a run report."""
    report = json.loads(report_path.read_text())
    return {entry["file"].rsplit("/", 1)[1]: entry["error"] for entry in report["failed"]}


BAD_CLIPS = {"empty.wav": "empty", "zero.wav": "no audio samples", "silent.wav": "silent",
             "nan.wav": "NaN", "notes.mp3": "not a readable audio file", "cut.ogg": ""}


@pytest.mark.slow
def test_preprocess_audio_end_to_end(audio_tree, tmp_path):
    out = tmp_path / "features"
    done = run_s2f("preprocess", "audio", audio_tree, out, "--encoder", "ve_conv", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "5 written, 0 already done, 6 failed" in done.stdout
    spec = VoiceInputSpec("ve_conv", "paper")
    for relative in (*GOOD_CLIPS, "bob/audios/hour.wav"):
        features = np.load((out / relative).with_suffix(".npy"))
        assert features.shape == (2, 257, 598) and features.dtype == np.float32
        np.testing.assert_array_equal(features, spec.features_from_file(audio_tree / relative))  # bit-exact
    failed = _failures(out / "report_audio.json")
    assert set(failed) == set(BAD_CLIPS)
    for name, fragment in BAD_CLIPS.items():
        assert fragment in failed[name] and "\n" not in failed[name]
        assert not (out / "carol" / "audios" / name).with_suffix(".npy").exists()
    assert not list(out.rglob("*.partial"))
    assert json.loads((out / "audio_features.json").read_text())["shape"] == [2, 257, 598]

    again = run_s2f("preprocess", "audio", audio_tree, out, "--encoder", "ve_conv", "--workers", "1")
    assert again.returncode == 0 and "0 written, 5 already done, 6 failed" in again.stdout

    other = run_s2f("preprocess", "audio", audio_tree, out, "--encoder", "ve_conv", "--variant", "original")
    assert other.returncode == 2 and other.stderr.count("\n") == 1
    assert "other settings (shape, variant differ)" in other.stderr


def test_resume_redoes_only_missing_files(audio_tree, tmp_path):
    from s2f.data.preprocess_audio import preprocess_audio

    out = tmp_path / "ast"
    spec = VoiceInputSpec("ast")
    first = preprocess_audio(audio_tree, out, spec)
    assert first.written == 5
    victim = out / "alice" / "audios" / "a.npy"
    kept = (out / "bob" / "audios" / "8bit.npy").stat().st_mtime_ns
    victim.unlink()
    second = preprocess_audio(audio_tree, out, spec)
    assert (second.written, second.already_done) == (1, 4)
    assert (out / "bob" / "audios" / "8bit.npy").stat().st_mtime_ns == kept
    assert np.load(victim).shape == (1024, 128)


def test_voice_input_shapes_and_silence(tmp_path):
    assert VoiceInputSpec("ve_conv", "paper").shape == (2, 257, 598)
    assert VoiceInputSpec("ve_conv", "original").shape == (2, 257, 601)
    assert VoiceInputSpec("ast").shape == (1024, 128)
    with pytest.raises(ValueError, match="unknown voice encoder"):
        VoiceInputSpec("wav2vec")
    quiet = tmp_path / "quiet.wav"
    soundfile.write(quiet, np.full(16000, 1e-9, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="silent"):
        VoiceInputSpec().features_from_file(quiet)


def test_missing_or_empty_data_dir(tmp_path):
    gone = run_s2f("preprocess", "audio", tmp_path / "nope", tmp_path / "out", "--encoder", "ast")
    assert gone.returncode == 2 and "nope: directory not found" in gone.stderr and "Traceback" not in gone.stderr
    (tmp_path / "empty").mkdir()
    none = run_s2f("preprocess", "audio", tmp_path / "empty", tmp_path / "out", "--encoder", "ast")
    assert none.returncode == 2 and "no audio files found" in none.stderr
    assert not (tmp_path / "out").exists()


# --- faces ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def face_encoder(tmp_path_factory):
    """A random-weight ResNet50 face encoder in the layout 's2f convert' writes."""
    import torch

    from s2f.models.face_encoder import build_face_encoder
    from s2f.models.face_encoder_config import FaceEncoderConfig

    torch.manual_seed(0)
    model = build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-resnet50", include_top=False))
    return model.save_pretrained(tmp_path_factory.mktemp("encoder") / "resnet50")


@pytest.fixture(scope="module")
def face_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw_faces")
    synthesize_corpus(root, SynthConfig(identities=3, clips=1, images=2, seconds=1.0))
    shutil.copy(SAMPLE_FACE, root / "id00000" / "images" / "real.jpg")
    bad = root / "id00001" / "images"
    (bad / "cut.jpg").write_bytes((SAMPLE_FACE).read_bytes()[:3000])
    Image.new("1", (9000, 8000)).save(bad / "bomb.png")
    (bad / "text.png").write_text("not an image")
    return root


@pytest.mark.slow
def test_preprocess_faces_given_landmarks(face_tree, face_encoder, tmp_path):
    import torch

    from s2f.models.face_encoder import load_face_encoder

    out = tmp_path / "faces"
    done = run_s2f("preprocess", "faces", face_tree, out, "--face-encoder", face_encoder, "--landmarks", "given",
                   "--workers", "2", "--batch-size", "4")
    assert done.returncode == 0, done.stderr
    # real.jpg has no ground-truth landmarks next to it: reported, like the three bad files
    assert "6 written, 0 already done, 4 failed" in done.stdout
    failed = _failures(out / "report_faces.json")
    assert "decompression bomb" in failed["bomb.png"] and "cannot decode" in failed["cut.jpg"]
    assert "real_landmarks.npy is missing" in failed["real.jpg"] and "not an image" in failed["text.png"]

    model = load_face_encoder(face_encoder)
    source = face_tree / "id00002" / "images" / "img01.png"
    stem = out / "id00002" / "images" / "img01"
    image = load_face(source)
    with torch.inference_mode():
        expected = model.embed(torch.from_numpy(preprocess(image, "keras-vggface-v2"))).numpy()[0]
    # batched (4) vs alone: same values up to float32 summation order
    np.testing.assert_allclose(np.load(f"{stem}_embedding.npy"), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.load(f"{stem}_target.npy"), decoder_target(image))
    np.testing.assert_array_equal(np.load(f"{stem}_landmarks.npy"),
                                  np.load(source.with_name("img01_landmarks.npy")))  # 224x224 source: same frame


@pytest.mark.slow
def test_dlib_landmarks_match_the_drawn_geometry(face_tree, face_encoder, tmp_path):
    """dlib's 68 points, reordered to the original's 72, land on the synthetic faces' exact
    landmarks: this checks the 72-point order point by point, not just the count."""
    from s2f.data.jobs import ONE_PROCESS
    from s2f.data.preprocess_faces import FacePreprocessing, preprocess_faces

    out = tmp_path / "dlib"
    report = preprocess_faces(FacePreprocessing(data_dir=face_tree, out_dir=out, face_encoder=face_encoder,
                                                landmarks="dlib72", device="cpu", jobs=ONE_PROCESS))
    failed = {entry["file"].rsplit("/", 1)[1] for entry in report.failed}
    assert {"cut.jpg", "bomb.png", "text.png"} <= failed
    real = np.load(out / "id00000" / "images" / "real_landmarks.npy")
    assert real.shape == (144,) and real.min() >= 0 and real.max() < 224
    compared = 0
    for found in out.rglob("img*_landmarks.npy"):
        truth = np.load(face_tree / found.relative_to(out))
        error = np.linalg.norm((found_points := np.load(found).reshape(72, 2)) - truth.reshape(72, 2), axis=1)
        assert found_points.shape == (72, 2) and np.median(error) < 8.0, error
        compared += 1
    assert compared >= 2  # the HOG detector finds most synthetic faces


@pytest.mark.slow
def test_dlib68_landmarks_train_a_68_point_decoder(face_tree, face_encoder, tmp_path):
    """--landmarks dlib68 goes end to end: 68 points preprocessed, a decoder that predicts 68."""
    import torch

    from s2f.models.loading import load_model

    out = tmp_path / "dlib68"
    done = run_s2f("preprocess", "faces", face_tree, out, "--face-encoder", face_encoder, "--landmarks", "dlib68",
                   "--workers", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    found = sorted(out.rglob("*_landmarks.npy"))
    assert found and all(np.load(path).shape == (136,) for path in found)
    run = tmp_path / "decoder"
    done = run_s2f("train", "decoder", out, "-o", run, "--size", "tiny", "--epochs", "1", "--batch-size", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    decoder = load_model(run).eval()
    assert decoder.config.num_landmarks == 68
    landmarks, texture, aligned = decoder(torch.from_numpy(np.load(next(out.rglob("*_embedding.npy"))))[None])
    assert landmarks.shape == (1, 136) and texture.shape == aligned.shape == (1, 3, 224, 224)  # warping by default


def test_landmarks_none_is_refused_with_the_reason(face_tree, face_encoder, tmp_path):
    done = run_s2f("preprocess", "faces", face_tree, tmp_path / "none", "--face-encoder", face_encoder,
                   "--landmarks", "none")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--landmarks none: the face decoder learns from landmarks" in done.stderr
    assert not (tmp_path / "none").exists()
