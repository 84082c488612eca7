"""Model inputs computed from a waveform, in numpy, once for training and serving alike.

* ``ve_spectrogram``: the Speech2Face voice encoder's input (25 ms Hann window, 10 ms hop,
  512-point FFT, power-law compression), 2 x 257 x T, in two named variants:

  - ``paper`` (Oh et al. 2019, TensorFlow ``tf.signal.stft``): 400-sample frames, no
    centring, each windowed by a periodic Hann and zero-padded at the end to 512; channels
    are the compressed real and imaginary parts, ``sgn(x)|x|^0.3``. 598 frames for 6 s.
  - ``original`` (the original PyTorch project, ``librosa.stft(center=True)``): the
    400-sample periodic Hann centred in 512-sample frames, the signal zero-padded by 256 at
    both ends; channels are the compressed magnitude ``|S|^0.3`` and the compressed phase
    ``sgn(phi)|phi|^0.3``. 601 frames for 6 s.

* ``ast_fbank``: the Audio Spectrogram Transformer's input, Kaldi-compatible log-mel
  filterbanks (``torchaudio.compliance.kaldi.fbank`` as transformers' ``ASTFeatureExtractor``
  calls it: 25 ms symmetric "hanning" window, 10 ms hop, DC removal, pre-emphasis 0.97, no
  dither, snip_edges, 512-point power spectrum, 128 triangular mel bins on Kaldi's mel scale
  from 20 Hz to Nyquist, natural log floored at float32 epsilon), padded or cut to 1024
  frames, then normalised as ``(x - mean) / (2 * std)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

VE_FRAME = 400  # 25 ms at 16 kHz
VE_HOP = 160  # 10 ms
VE_FFT = 512
POWER_LAW = 0.3
AUDIOSET_MEAN, AUDIOSET_STD = -4.2677393, 4.5689974
FLOAT32_EPS = 1.192092955078125e-07


def _frames(signal: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Non-overlapping-copy view of the frames of ``signal`` (snip_edges)."""
    count = 1 + (signal.shape[0] - length) // hop
    if count <= 0:
        raise ValueError(f"signal of {signal.shape[0]} samples is shorter than one {length}-sample frame")
    return np.lib.stride_tricks.as_strided(
        signal, shape=(count, length), strides=(signal.strides[0] * hop, signal.strides[0]), writeable=False)


@lru_cache(maxsize=8)
def _hann(length: int, periodic: bool) -> np.ndarray:
    denominator = length if periodic else length - 1
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / denominator)


def _compress(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.abs(x) ** POWER_LAW


def _check_waveform(waveform: np.ndarray, sample_rate: int, expected_rate: int = 16000) -> np.ndarray:
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise ValueError(f"expected a mono waveform (1-D), got shape {waveform.shape}")
    if sample_rate != expected_rate:
        raise ValueError(f"features are defined at {expected_rate} Hz, got {sample_rate} Hz; "
                         "resample first (runtime.preprocess.audio.load_audio does)")
    return waveform.astype(np.float64)


def ve_spectrogram(waveform: np.ndarray, sample_rate: int = 16000, variant: str = "paper") -> np.ndarray:
    """2 x 257 x T float32 voice-encoder input (channels x frequency x time)."""
    signal = _check_waveform(waveform, sample_rate)
    if variant == "paper":
        frames = _frames(signal, VE_FRAME, VE_HOP) * _hann(VE_FRAME, True)
        spectrum = np.fft.rfft(frames, n=VE_FFT, axis=1)  # zero-padded at the end to 512
        channels = (_compress(spectrum.real), _compress(spectrum.imag))
    elif variant == "original":
        window = np.zeros(VE_FFT)
        left = (VE_FFT - VE_FRAME) // 2
        window[left:left + VE_FRAME] = _hann(VE_FRAME, True)
        padded = np.pad(signal, VE_FFT // 2, mode="constant")
        # "+ 0.0" removes negative zeros: the angle of a silent bin is 0, not pi by the sign
        # of a zero that one FFT implementation leaves and another does not
        spectrum = np.fft.rfft(_frames(padded, VE_FFT, VE_HOP) * window, axis=1) + 0.0
        channels = (np.abs(spectrum) ** POWER_LAW, _compress(np.angle(spectrum)))
    else:
        raise ValueError(f"unknown spectrogram variant {variant!r}; use 'paper' or 'original'")
    return np.stack([c.T for c in channels]).astype(np.float32)


@lru_cache(maxsize=4)
def kaldi_mel_banks(num_bins: int, fft_length: int = 512, sample_rate: int = 16000,
                    low_freq: float = 20.0, high_freq: float = 0.0) -> np.ndarray:
    """Kaldi's triangular mel filters (triangles in mel space), (fft_length//2 + 1) x bins.

    As in Kaldi, the Nyquist bin gets no weight; ``high_freq <= 0`` counts from Nyquist.
    """
    nyquist = sample_rate / 2
    high = high_freq if high_freq > 0 else nyquist + high_freq

    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    mel_low, mel_high = mel(low_freq), mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    centers = mel_low + delta * np.arange(num_bins + 2)
    left, center, right = centers[:-2, None], centers[1:-1, None], centers[2:, None]
    fft_mels = mel(np.arange(fft_length // 2) * sample_rate / fft_length)[None, :]
    up = (fft_mels - left) / (center - left)
    down = (right - fft_mels) / (right - center)
    weights = np.maximum(0.0, np.minimum(up, down))  # (bins, fft_length // 2)
    return np.concatenate([weights, np.zeros((num_bins, 1))], axis=1).T


def kaldi_fbank(waveform: np.ndarray, sample_rate: int = 16000, num_mel_bins: int = 128) -> np.ndarray:
    """Kaldi log-mel filterbank energies, frames x bins, float64 (no padding, no norm)."""
    signal = _check_waveform(waveform, sample_rate)
    frames = np.array(_frames(signal, VE_FRAME, VE_HOP))
    frames -= frames.mean(axis=1, keepdims=True)  # DC removal
    frames[:, 1:] -= 0.97 * frames[:, :-1].copy()  # pre-emphasis, Kaldi style
    frames[:, 0] *= 1.0 - 0.97
    frames *= _hann(VE_FRAME, False)  # Kaldi "hanning" is the symmetric window
    power = np.abs(np.fft.rfft(frames, n=VE_FFT, axis=1)) ** 2
    energies = power @ kaldi_mel_banks(num_mel_bins, VE_FFT, sample_rate)
    return np.log(np.maximum(energies, FLOAT32_EPS))


def ast_fbank(waveform: np.ndarray, sample_rate: int = 16000, mean: float = AUDIOSET_MEAN,
              std: float = AUDIOSET_STD, num_mel_bins: int = 128, max_length: int = 1024) -> np.ndarray:
    """max_length x num_mel_bins float32 AST input, exactly as ``ASTFeatureExtractor``
    prepares it for the same ``mean``/``std``: zero-padded (before normalisation) or cut."""
    fbank = kaldi_fbank(waveform, sample_rate, num_mel_bins)[:max_length]
    if fbank.shape[0] < max_length:
        fbank = np.pad(fbank, ((0, max_length - fbank.shape[0]), (0, 0)))
    return ((fbank - mean) / (std * 2)).astype(np.float32)
