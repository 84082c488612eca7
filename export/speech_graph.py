"""The voice encoder's input computed inside ONNX, from a raw 16 kHz waveform.

The same steps as ``VoiceInputSpec.features`` (``s2f.runtime.preprocess.voice_input``), with the same
constants (``s2f.runtime.preprocess.features``), written as standard ONNX operators:

* with the original's ``audio_steps``, 16-bit PCM rounding before and after the loudness step;
* RMS loudness to ``target_dbfs`` per clip: silence (RMS below -120 dBFS) untouched, the gain
  lowered so the peak never exceeds full scale;
* loop or crop to the model's clip length: one ``Gather`` with ``arange(T) % samples``;
* the features, in float64 like the numpy code: framing is a ``Gather`` of frame indices, and
  each frame's linear work (Kaldi's DC removal and pre-emphasis, the window, the zero-padded
  512-point DFT) is folded into one matrix, so the STFT is one ``MatMul``. The power-law
  compression ``|x|^0.3`` turns a float32 rounding error near zero into a visible one
  ((1e-7)^0.3 = 0.008), which is why the whole chain stays in double until the encoder's
  float32 input.

``np.angle`` has no ONNX operator; ``_atan2`` builds it from ``Atan`` (float32 in onnxruntime,
accurate to its last bit relative to the angle) and the quadrant rules, with negative zeros
removed first as the FFT has none.
"""

from __future__ import annotations

import numpy as np

from s2f.export.onnx_builder import DOUBLE, FLOAT, GraphBuilder
from s2f.runtime.preprocess.audio import PCM16_SCALE, SILENCE_RMS
from s2f.runtime.preprocess.features import (
    FLOAT32_EPS,
    POWER_LAW,
    VE_FFT,
    VE_FRAME,
    VE_HOP,
    _hann,
    kaldi_mel_banks,
)
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

BINS = VE_FFT // 2 + 1
PREEMPHASIS = 0.97


def clip_samples(spec: VoiceInputSpec) -> int:
    return int(round(spec.seconds * spec.sample_rate))


def speech_features(g: GraphBuilder, waveform: str, spec: VoiceInputSpec) -> str:
    """``waveform`` (float32 [batch, samples]) -> the encoder's float32 input, as ``spec.features``."""
    samples = clip_samples(spec)
    if spec.audio_steps == "original":
        waveform = to_pcm16(g, normalize_loudness(g, to_pcm16(g, waveform), spec.target_dbfs))
    else:
        waveform = normalize_loudness(g, waveform, spec.target_dbfs)
    clip = fit_duration(g, waveform, samples)
    signal = g.op("Cast", clip, to=DOUBLE)
    if spec.encoder == "ast":
        features = ast_fbank(g, signal, samples, spec.mean, spec.std)
    elif spec.variant == "paper":
        features = ve_spectrogram_paper(g, signal, samples)
    else:
        features = ve_spectrogram_original(g, signal, samples)
    return g.op("Cast", features, to=FLOAT)


def normalize_loudness(g: GraphBuilder, waveform: str, target_dbfs: float) -> str:
    """``s2f.runtime.preprocess.audio.normalize_loudness`` per row: the gain in double, applied in float32."""
    wide = g.op("Cast", waveform, to=DOUBLE)
    axis = g.ints(1)
    rms = g.op("Sqrt", g.op("ReduceMean", g.op("Mul", wide, wide), axis, keepdims=1))
    peak = g.op("ReduceMax", g.op("Abs", wide), axis, keepdims=1)
    gain = g.op("Min", g.op("Div", g.scalar(10.0 ** (target_dbfs / 20.0)), rms), g.op("Div", g.scalar(1.0), peak))
    gain = g.op("Where", g.op("Less", rms, g.scalar(SILENCE_RMS)), g.scalar(1.0), gain)
    return g.op("Mul", waveform, g.op("Cast", gain, to=FLOAT))


def to_pcm16(g: GraphBuilder, waveform: str) -> str:
    """``s2f.runtime.preprocess.audio.to_pcm16``: ``Round`` is half to even, as ``np.rint``."""
    steps = g.op("Round", g.op("Mul", waveform, g.scalar(PCM16_SCALE, np.float32)))
    steps = g.op("Min", g.op("Max", steps, g.scalar(-32768.0, np.float32)), g.scalar(32767.0, np.float32))
    return g.op("Div", steps, g.scalar(PCM16_SCALE, np.float32))


def fit_duration(g: GraphBuilder, waveform: str, samples: int) -> str:
    """Loop a short clip, crop a long one: sample ``t`` of the result is sample ``t % length``."""
    length = g.op("Shape", waveform, start=1, end=2)
    positions = g.op("Range", g.scalar(0, np.int64), g.scalar(samples, np.int64), g.scalar(1, np.int64))
    return g.op("Gather", waveform, g.op("Mod", positions, length), axis=1)


def _frames(g: GraphBuilder, signal: str, count: int, length: int, offset: int = 0) -> str:
    """[batch, count, length]: frame ``f`` holds samples ``f * hop + offset ...``."""
    starts = np.arange(count, dtype=np.int64)[:, None] * VE_HOP + offset
    index = g.op("Add", g.const(starts, np.int64), g.const(np.arange(length)[None, :], np.int64))
    return g.op("Gather", signal, index, axis=1)


def dft_basis(length: int, offset: int = 0) -> np.ndarray:
    """[length, 2 * BINS]: a frame of ``length`` samples placed at ``offset`` in a zero-padded
    512-sample buffer -> the real parts of its rfft, then the imaginary parts. The angles are
    reduced exactly (integer ``n * k mod 512``) and the sines of bins 0 and 256 are exact zeros."""
    n = np.arange(length)[:, None] + offset
    k = np.arange(BINS)[None, :]
    angle = 2.0 * np.pi * ((n * k) % VE_FFT) / VE_FFT
    sine = -np.sin(angle)
    sine[:, [0, BINS - 1]] = 0.0
    return np.concatenate([np.cos(angle), sine], axis=1)


def _compress(g: GraphBuilder, x: str) -> str:
    return g.op("Mul", g.op("Sign", x), g.op("Pow", g.op("Abs", x), g.scalar(POWER_LAW)))


def _channels_first(g: GraphBuilder, spectrum: str) -> str:
    """[batch, frames, 2 * BINS] -> [batch, 2, BINS, frames], the encoder's layout."""
    split = g.op("Reshape", spectrum, g.ints(0, 0, 2, BINS))
    return g.op("Transpose", split, perm=[0, 2, 3, 1])


def ve_spectrogram_paper(g: GraphBuilder, signal: str, samples: int) -> str:
    """tf.signal.stft framing: compressed real and imaginary parts."""
    count = 1 + (samples - VE_FRAME) // VE_HOP
    basis = _hann(VE_FRAME, True)[:, None] * dft_basis(VE_FRAME)
    spectrum = g.op("MatMul", _frames(g, signal, count, VE_FRAME), g.const(basis))
    return _channels_first(g, _compress(g, spectrum))


def ve_spectrogram_original(g: GraphBuilder, signal: str, samples: int) -> str:
    """librosa's centred STFT: compressed magnitude and phase. Only the 400 windowed samples
    of each 512-sample frame are gathered; their place in the frame is in the basis."""
    padded = g.op("Pad", signal, g.ints(0, VE_FFT // 2, 0, VE_FFT // 2))
    count = 1 + samples // VE_HOP
    left = (VE_FFT - VE_FRAME) // 2
    basis = _hann(VE_FRAME, True)[:, None] * dft_basis(VE_FRAME, offset=left)
    spectrum = g.op("MatMul", _frames(g, padded, count, VE_FRAME, offset=left), g.const(basis))
    spectrum = g.op("Add", spectrum, g.scalar(0.0))  # -0.0 -> +0.0, as the FFT gives
    real, imag = g.op("Split", spectrum, g.ints(BINS, BINS), axis=2, outputs=2)
    magnitude = g.op("Sqrt", g.op("Add", g.op("Mul", real, real), g.op("Mul", imag, imag)))
    magnitude = g.op("Pow", magnitude, g.scalar(POWER_LAW))
    phase = _compress(g, _atan2(g, imag, real))
    return _channels_first(g, g.op("Concat", magnitude, phase, axis=2))


def _atan2(g: GraphBuilder, y: str, x: str) -> str:
    """``np.arctan2(y, x)`` for float64 without negative zeros."""
    zero = g.scalar(0.0)
    angle = g.op("Cast", g.op("Atan", g.op("Cast", g.op("Div", y, x), to=FLOAT)), to=DOUBLE)
    y_negative = g.op("Less", y, zero)
    half_turn = g.op("Where", y_negative, g.scalar(-np.pi), g.scalar(np.pi))
    angle = g.op("Where", g.op("Less", x, zero), g.op("Add", angle, half_turn), angle)
    on_axis = g.op("Where", y_negative, g.scalar(-np.pi / 2),
                   g.op("Where", g.op("Greater", y, zero), g.scalar(np.pi / 2), zero))
    return g.op("Where", g.op("Equal", x, zero), on_axis, angle)


def kaldi_frame_basis() -> np.ndarray:
    """[400, 2 * BINS]: Kaldi's per-frame DC removal, pre-emphasis and symmetric Hann window,
    then the zero-padded 512-point DFT, as one linear map (``kaldi_fbank`` applies them in turn)."""
    dc_removal = np.eye(VE_FRAME) - 1.0 / VE_FRAME
    preemphasis = np.eye(VE_FRAME) - PREEMPHASIS * np.eye(VE_FRAME, k=-1)
    preemphasis[0, 0] = 1.0 - PREEMPHASIS
    frame_map = np.diag(_hann(VE_FRAME, False)) @ preemphasis @ dc_removal  # column frame -> windowed frame
    return frame_map.T @ dft_basis(VE_FRAME)


def ast_fbank(g: GraphBuilder, signal: str, samples: int, mean: float, std: float,
              num_mel_bins: int = 128, max_length: int = 1024) -> str:
    """Kaldi log-mel filterbanks, padded or cut to ``max_length`` frames, then normalised."""
    count = 1 + (samples - VE_FRAME) // VE_HOP
    spectrum = g.op("MatMul", _frames(g, signal, count, VE_FRAME), g.const(kaldi_frame_basis()))
    power = g.op("Mul", spectrum, spectrum)
    power = g.op("Add", *g.op("Split", power, g.ints(BINS, BINS), axis=2, outputs=2))
    energies = g.op("MatMul", power, g.const(kaldi_mel_banks(num_mel_bins, VE_FFT)))
    fbank = g.op("Log", g.op("Max", energies, g.scalar(FLOAT32_EPS)))
    if count > max_length:
        fbank = g.op("Slice", fbank, g.ints(0), g.ints(max_length), g.ints(1))
    elif count < max_length:
        fbank = g.op("Pad", fbank, g.ints(0, 0, 0, 0, max_length - count, 0))
    return g.op("Div", g.op("Sub", fbank, g.scalar(mean)), g.scalar(2.0 * std))
