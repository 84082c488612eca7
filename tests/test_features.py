"""Feature implementations against their references, on a speech-like signal."""

from __future__ import annotations

import numpy as np
import pytest

from s2f.data.synth_voice import speech_clip
from s2f.runtime.preprocess.features import ast_fbank, kaldi_fbank, ve_spectrogram


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    return speech_clip(6.0, f0=130.0, seed=3)


def _compress(x):
    return np.sign(x) * np.abs(x) ** 0.3


def test_shapes(voice):
    assert ve_spectrogram(voice, variant="paper").shape == (2, 257, 598)
    assert ve_spectrogram(voice, variant="original").shape == (2, 257, 601)
    assert ast_fbank(voice).shape == (1024, 128)


def test_original_variant_matches_librosa(voice):
    import librosa

    spectrum = librosa.stft(voice.astype(np.float64), n_fft=512, hop_length=160, win_length=400,
                            window="hann", center=True)
    expected = np.stack([np.abs(spectrum) ** 0.3, _compress(np.angle(spectrum))])
    np.testing.assert_allclose(ve_spectrogram(voice, variant="original"), expected, atol=1e-5)


def test_paper_variant_matches_torch_stft(voice):
    import torch

    window = torch.zeros(512, dtype=torch.float64)
    window[:400] = torch.hann_window(400, periodic=True, dtype=torch.float64)
    # 512-sample torch frames whose last 112 samples meet zero window = 400-sample frames
    # zero-padded to 512; pad the signal so torch sees the last frame too
    signal = torch.from_numpy(np.pad(voice.astype(np.float64), (0, 112)))
    spectrum = torch.stft(signal, 512, hop_length=160, win_length=512, window=window,
                          center=False, return_complex=True)[:, :598].numpy()
    expected = np.stack([_compress(spectrum.real), _compress(spectrum.imag)])
    np.testing.assert_allclose(ve_spectrogram(voice, variant="paper"), expected, atol=1e-5)


def test_paper_variant_matches_tensorflow(voice):
    """The paper's definition: tf.signal.stft(400, 160, 512, periodic Hann)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    spectrum = tf.signal.stft(tf.constant(voice.astype(np.float64)), frame_length=400, frame_step=160,
                              fft_length=512, window_fn=tf.signal.hann_window).numpy().T
    assert spectrum.shape == (257, 598)
    ours = ve_spectrogram(voice, variant="paper")
    np.testing.assert_allclose(ours, np.stack([_compress(spectrum.real), _compress(spectrum.imag)]), atol=1e-5)


def test_kaldi_fbank_matches_kaldi_native_fbank(voice):
    """kaldi-native-fbank refuses 128 bins with a 512 FFT, so compare at 80."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hanning"
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = 80
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, voice.tolist())
    fbank.input_finished()
    reference = np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])
    ours = kaldi_fbank(voice, 16000, 80)
    assert ours.shape == reference.shape == (598, 80)
    # kaldi-native-fbank computes in float32: its error shows in near-silent bins only
    assert np.abs(ours - reference).max() < 2e-3
    assert np.abs(ours - reference).mean() < 2e-5


@pytest.mark.parametrize("stats", [{}, {"mean": -5.460994, "std": 3.1129124}], ids=["audioset", "original"])
@pytest.mark.parametrize("seconds", [6.0, 12.0], ids=["padded", "cut"])
def test_ast_fbank_matches_transformers(stats, seconds):
    from transformers import ASTFeatureExtractor

    voice = speech_clip(seconds, f0=210.0, seed=5)
    extractor = ASTFeatureExtractor(**stats)
    expected = extractor(voice, sampling_rate=16000, return_tensors="np")["input_values"][0]
    ours = ast_fbank(voice, **stats)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="resample first"):
        ve_spectrogram(np.zeros(96000, np.float32), sample_rate=44100)
    with pytest.raises(ValueError, match="mono"):
        ve_spectrogram(np.zeros((2, 96000), np.float32))
    with pytest.raises(ValueError, match="variant"):
        ve_spectrogram(np.zeros(96000, np.float32), variant="mel")
    with pytest.raises(ValueError, match="shorter than one"):
        ast_fbank(np.zeros(100, np.float32))
    assert np.isfinite(ve_spectrogram(np.zeros(96000, np.float32))).all()  # silence is fine
