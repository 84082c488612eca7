"""load_audio over real codecs and every kind of bad file: clear per-file errors, bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile
from support.helpers import write_m4a

from s2f.core.errors import InputError
from s2f.data.synth_voice import speech_clip
from s2f.runtime.preprocess.audio import fit_duration, load_audio, normalize_loudness, rms_dbfs


def _tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def _peak_hz(waveform: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.argmax(spectrum) * rate / len(waveform))


def test_wav_roundtrip(tmp_path):
    voice = speech_clip(2.0)
    path = tmp_path / "v.wav"
    soundfile.write(path, voice, 16000, subtype="PCM_16")
    loaded = load_audio(path)
    assert loaded.dtype == np.float32 and loaded.shape == voice.shape
    assert np.abs(loaded - voice).max() <= 1 / 32768 + 1e-7


def test_48k_stereo_is_mixed_and_resampled(tmp_path):
    path = tmp_path / "stereo48k.wav"
    stereo = _tone(3.0, 48000, channels=2)
    stereo[:, 1] *= 0.5  # unequal channels: mono is their mean
    soundfile.write(path, stereo, 48000, subtype="FLOAT")
    loaded = load_audio(path)
    assert loaded.shape == (48000,)
    expected = 0.75 * _tone(3.0, 16000)
    np.testing.assert_allclose(loaded[1000:-1000], expected[1000:-1000], atol=2e-3)


@pytest.mark.parametrize("fmt,subtype", [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III"),
                                         ("WAV", "PCM_U8")], ids=["flac", "ogg", "mp3", "wav-8bit"])
def test_codecs_through_libsndfile(tmp_path, fmt, subtype):
    path = tmp_path / f"tone.{fmt.lower()}"
    soundfile.write(path, _tone(2.0, 22050), 22050, format=fmt, subtype=subtype)
    loaded = load_audio(path)
    assert abs(len(loaded) - 32000) < 1200  # lossy codecs add priming samples
    assert abs(_peak_hz(loaded) - 440) < 2
    assert np.abs(loaded).max() <= 1.0


def test_m4a_through_pyav(tmp_path):
    path = tmp_path / "voxceleb2_style.m4a"
    write_m4a(path, _tone(2.0, 16000), 16000)
    loaded = load_audio(path)
    assert abs(len(loaded) - 32000) < 2100
    assert abs(_peak_hz(loaded) - 440) < 2


def test_only_what_is_needed_is_read_from_an_hour(tmp_path):
    path = tmp_path / "hour.wav"
    rate, block = 16000, np.int16(1000) * np.ones(16000 * 60, np.int16)
    with soundfile.SoundFile(path, "w", rate, 1, subtype="PCM_16") as handle:
        for _ in range(60):
            handle.write(block)
    tracemalloc.start()
    loaded = load_audio(path, max_seconds=6.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert loaded.shape == (96000,)
    assert peak < 8 * 1024 * 1024  # the file holds 115 MB of samples


def test_max_seconds_with_resampling(tmp_path):
    path = tmp_path / "long44k.flac"
    soundfile.write(path, _tone(20.0, 44100), 44100)
    assert load_audio(path, max_seconds=6.0).shape == (96000,)


@pytest.mark.parametrize("case", ["empty", "zero-length", "text", "nan", "truncated-ogg", "directory"])
def test_bad_files(tmp_path, case):
    path = tmp_path / f"{case}.wav"
    if case == "empty":
        path.touch()
        match = "empty"
    elif case == "zero-length":
        soundfile.write(path, np.zeros(0), 16000)
        match = "no audio samples"
    elif case == "text":
        path.write_text("this is not audio\n" * 100)
        match = "not a readable audio file"
    elif case == "nan":
        data = _tone(1.0, 16000)
        data[100] = np.nan
        soundfile.write(path, data, 16000, subtype="FLOAT")
        match = "NaN"
    elif case == "truncated-ogg":
        path = tmp_path / "cut.ogg"
        soundfile.write(path, _tone(3.0, 16000), 16000, format="OGG", subtype="VORBIS")
        path.write_bytes(path.read_bytes()[:300])
        match = str(path)
    else:
        path = tmp_path / "folder.wav"
        path.mkdir()
        match = "not a regular file"
    with pytest.raises(InputError, match=match) as caught:
        load_audio(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_loudness_normalisation():
    voice = speech_clip(2.0) * 0.01
    normalised = normalize_loudness(voice, -23.0)
    assert abs(rms_dbfs(normalised) - (-23.0)) < 0.01
    silent = np.zeros(16000, np.float32)
    assert np.array_equal(normalize_loudness(silent), silent)  # no NaN, no amplified noise
    spiky = np.zeros(16000, np.float32)
    spiky[10] = 0.9
    assert np.abs(normalize_loudness(spiky)).max() <= 1.0  # never clips


def test_fit_duration():
    clip = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fit_duration(clip, 10, 2.5), np.concatenate([clip, clip, clip[:5]]))
    np.testing.assert_array_equal(fit_duration(clip, 10, 0.5), clip[:5])
