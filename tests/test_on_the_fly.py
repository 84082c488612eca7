"""Voice features computed on the training device (``s2f train voice --features on-the-fly``):
the torch features equal the numpy ones within a float32 step, the workers' windows are what
preprocessing reads, training on the fly is the precomputed training without a random crop,
and a random crop draws a new window each epoch, the same again on resume."""

from __future__ import annotations

import csv
import json
import logging
import shutil

import numpy as np
import pytest
import torch
from support.helpers import run_s2f

from s2f.runtime.preprocess.voice_input import VoiceInputSpec
from s2f.train.device_features import DeviceFeatures

SPECS = {
    "ve_conv paper": VoiceInputSpec(encoder="ve_conv", seconds=2.0),
    "ve_conv original": VoiceInputSpec(encoder="ve_conv", variant="original", seconds=2.0),
    "ast": VoiceInputSpec(encoder="ast", seconds=2.0, mean=-3.5, std=4.0),
}


def speech_like(samples: int, seed: int) -> np.ndarray:
    """Harmonics with a moving pitch, noise, and a stretch of digital silence (whose phase is
    where a careless port goes wrong)."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    pitch = 110 + 40 * seed + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t))
    wave = 0.2 * wave + 0.01 * rng.standard_normal(samples)
    wave[samples // 3: samples // 3 + 2400] = 0.0
    return wave.astype(np.float32)


@pytest.mark.parametrize("name", SPECS)
def test_device_features_are_the_numpy_features_within_one_float32_step(name):
    """Both sides compute in float64 and round once to float32, so each lands within one
    float32 step of the other; a batch keeps its rows in order (three different clips, one
    shorter than the window and looped)."""
    spec = SPECS[name]
    clips = [speech_like(spec.samples, 0), speech_like(spec.samples + 9000, 1), speech_like(spec.samples // 3, 2)]
    windows = np.stack([spec.model_waveform(clip) for clip in clips])
    expected = np.stack([spec.encoder_input(window) for window in windows])
    got = DeviceFeatures(spec)(torch.from_numpy(windows)).numpy()
    assert got.shape == expected.shape == (3, *spec.shape)
    assert got.dtype == np.float32
    step = np.spacing(np.abs(expected))
    assert (np.abs(got - expected) <= step).all(), float(np.max(np.abs(got - expected) / step))
    assert np.abs(expected[0] - expected[1]).max() > 0.1  # the rows are different clips


def test_device_features_ignore_autocast():
    spec = SPECS["ast"]
    window = torch.from_numpy(spec.model_waveform(speech_like(spec.samples, 3)))[None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = DeviceFeatures(spec)(window)
    assert mixed.dtype == torch.float32
    assert torch.equal(mixed, DeviceFeatures(spec)(window))


def test_a_random_crop_window_is_its_own_loudness_and_the_first_window_is_the_precomputed_one():
    spec = VoiceInputSpec(encoder="ve_conv", seconds=1.0)
    clip = speech_like(3 * spec.samples, 4)
    clip[: spec.samples] *= 0.1  # a quiet start: its loudness is not the whole clip's
    assert np.array_equal(spec.model_waveform(clip[: spec.samples]), spec.model_waveform(clip, 0))
    later = spec.model_waveform(clip, spec.samples)
    assert later.shape == (spec.samples,)
    rms = float(np.sqrt(np.mean(later.astype(np.float64) ** 2)))
    assert 20 * np.log10(rms) == pytest.approx(spec.target_dbfs, abs=0.01)
    assert np.array_equal(spec.features(clip[: spec.samples]), spec.encoder_input(spec.model_waveform(clip, 0)))


# ------------------------------------------------------------------------------------------
# on a small synthetic corpus

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from s2f.data.jobs import ONE_PROCESS
    from s2f.data.preprocess_audio import preprocess_audio
    from s2f.data.preprocess_faces import FacePreprocessing, preprocess_faces
    from s2f.data.synth import SynthConfig, synthesize_corpus
    from s2f.models.face_encoder import build_face_encoder
    from s2f.models.face_encoder_config import FaceEncoderConfig

    root = tmp_path_factory.mktemp("otf")
    torch.manual_seed(0)
    build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-resnet50", include_top=False)).save_pretrained(
        root / "encoder")
    synthesize_corpus(root / "raw", SynthConfig(identities=6, clips=2, images=2, seconds=4.0), 1)
    preprocess_faces(FacePreprocessing(data_dir=root / "raw", out_dir=root / "pre", face_encoder=root / "encoder",
                                       landmarks="given", device="cpu", jobs=ONE_PROCESS))
    preprocess_audio(root / "raw", root / "pre", VoiceInputSpec(encoder="ve_conv", seconds=3.0))
    return root


def _clip_pairs(corpus, **options):
    from s2f.data.voice_clips import VoiceClipPairs

    spec = VoiceInputSpec(encoder="ve_conv", seconds=3.0)
    return VoiceClipPairs(corpus / "pre", corpus / "raw", spec, "all_to_one", **options)


@pytest.mark.slow
def test_worker_windows_give_the_precomputed_features(corpus):
    from s2f.data.pairs import VoiceFacePairs

    clips, arrays = _clip_pairs(corpus), VoiceFacePairs(corpus / "pre", "all_to_one")
    assert len(clips) == len(arrays) == 12
    features = DeviceFeatures(clips.spec)
    for index in (0, 5, 11):
        window, embedding, identity = clips[index]
        stored, stored_embedding, stored_identity = arrays[index]
        assert clips.pair(index).clip.suffix == ".wav" and arrays.pair(index).clip.suffix == ".npy"
        assert clips.pair(index).clip.stem == arrays.pair(index).clip.stem
        assert np.array_equal(clips.spec.encoder_input(window), stored)  # the very window preprocessing read
        computed = features(torch.from_numpy(window)[None])[0].numpy()
        assert (np.abs(computed - stored) <= np.spacing(np.abs(stored))).all()
        assert np.array_equal(embedding, stored_embedding) and identity == stored_identity


@pytest.mark.slow
def test_random_crops_change_with_the_epoch_and_repeat_with_the_seed(corpus):
    first, cropped, again = _clip_pairs(corpus), _clip_pairs(corpus, random_crop=True), \
        _clip_pairs(corpus, random_crop=True)
    lengths = [sf_frames(path) for path in first.clips]
    long_clip = next(i for i, n in enumerate(lengths) if n > first.spec.samples + 1600)
    epochs = []
    for epoch in range(3):
        cropped.set_epoch(epoch)
        again.set_epoch(epoch)
        epochs.append(cropped[long_clip][0])
        assert np.array_equal(epochs[-1], again[long_clip][0])  # the same (seed, epoch, clip): the same window
    assert not np.array_equal(epochs[0], epochs[1]) or not np.array_equal(epochs[1], epochs[2])
    assert all(window.shape == (first.spec.samples,) for window in epochs)
    other_seed = _clip_pairs(corpus, random_crop=True, seed=7)
    assert any(not np.array_equal(other_seed[long_clip][0], window) for window in epochs[:1])
    short = [i for i, n in enumerate(lengths) if n <= first.spec.samples]
    for index in short[:1]:  # nothing to crop: the looped clip, as without the crop
        assert np.array_equal(cropped[index][0], first[index][0])


def sf_frames(path) -> int:
    import soundfile

    return soundfile.info(str(path)).frames


@pytest.mark.slow
def test_an_undecodable_clip_is_said_and_replaced_by_its_identitys_next(corpus, tmp_path, caplog):
    shutil.copytree(corpus / "raw", tmp_path / "raw")
    pairs = _clip_pairs(corpus)
    broken = tmp_path / "raw" / pairs.clips.name(0)
    broken.write_bytes(b"not audio at all")
    from s2f.data.voice_clips import VoiceClipPairs

    damaged = VoiceClipPairs(corpus / "pre", tmp_path / "raw", pairs.spec, "all_to_one")
    with caplog.at_level(logging.WARNING):
        window, _, identity = damaged[0]
    assert broken.name in caplog.text and "next clip" in caplog.text
    assert np.array_equal(window, pairs[1][0]) and identity == pairs[1][2] == 0


def _train(corpus, out, **extra):
    from s2f.train.options import TrainConfig
    from s2f.train.runs import VoiceTraining, train_voice

    epochs = extra.pop("epochs", 2)
    train_voice(VoiceTraining(data=corpus / "pre", out=out, encoder="ve_conv", size="tiny", resume=True,
                              train=TrainConfig(epochs=epochs, batch_size=4, tensorboard=False), **extra))
    return [row["train_loss"] for row in csv.DictReader(open(out / "metrics.csv"))]


@pytest.mark.slow
def test_training_on_the_fly_is_the_precomputed_training_and_random_crops_resume_exactly(corpus, tmp_path):
    on_the_fly = {"features": "on-the-fly", "voices": corpus / "raw", "seconds": 3.0}
    precomputed = _train(corpus, tmp_path / "pre")
    # the same training: its features differ from the arrays by at most a float32 step (two
    # FFT implementations), which two epochs carry into the losses' last digits at most
    same = _train(corpus, tmp_path / "otf", **on_the_fly)
    assert np.allclose(np.array(same, float), np.array(precomputed, float), rtol=1e-4, atol=0)
    cropped = _train(corpus, tmp_path / "crop", random_crop=True, **on_the_fly)
    assert cropped != precomputed and all(np.isfinite(float(loss)) for loss in cropped)
    # one epoch, then resumed to two: the second epoch draws the same crops as a straight run
    _train(corpus, tmp_path / "resumed", random_crop=True, epochs=1, **on_the_fly)
    assert _train(corpus, tmp_path / "resumed", random_crop=True, **on_the_fly) == cropped


@pytest.mark.slow
def test_train_voice_says_which_path_it_takes_and_refuses_mixed_flags(corpus, tmp_path):
    done = run_s2f("train", "voice", corpus / "pre", "-o", tmp_path / "run", "--encoder", "ve_conv", "--size",
                   "tiny", "--epochs", "1", "--batch-size", "4", "--features", "on-the-fly", "--voices",
                   corpus / "raw", "--seconds", "3", "--random-crop", "--no-tensorboard")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "computed on the training device from 12 clips" in done.stderr and "random crop" in done.stderr
    settings = (tmp_path / "run").glob("checkpoints/*/config.json")
    assert any('"seconds": 3.0' in path.read_text() for path in settings)  # the window travels with the model
    # scored from the clips as it was trained (no arrays needed), or from arrays: the same scores
    reports = {}
    for name, extra in (("clips", ("--voices", corpus / "raw")), ("arrays", ())):
        done = run_s2f("evaluate", tmp_path / "run", corpus / "pre", "--candidates", "3", "-o",
                       tmp_path / f"{name}.json", *extra)
        assert done.returncode == 0, done.stderr[-2000:]
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert reports["clips"]["queries"] == reports["arrays"]["queries"] == 12
    assert reports["clips"]["recall@1"] == reports["arrays"]["recall@1"]
    assert reports["clips"]["cosine_to_true_face"] == pytest.approx(reports["arrays"]["cosine_to_true_face"],
                                                                    rel=1e-5)
    for flags, message in ((("--features", "on-the-fly"), "needs --voices"),
                           (("--random-crop",), "add --features on-the-fly")):
        wrong = run_s2f("train", "voice", corpus / "pre", "-o", tmp_path / "bad", "--encoder", "ve_conv",
                        "--size", "tiny", *flags)
        assert wrong.returncode == 2 and message in wrong.stderr, wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
