"""A deterministic, speech-like test signal: a jittered glottal pulse train through formant
resonators, with amplitude syllables and breath noise (not white noise, not a pure tone)."""

from __future__ import annotations

import numpy as np


def speechlike(seconds: float = 6.0, sample_rate: int = 16000, f0: float = 120.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t) + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(n))
    phase = np.cumsum(pitch / sample_rate)
    source = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)  # one pulse per period
    signal = source
    for formant, bandwidth in ((700, 110), (1220, 120), (2600, 160)):
        r = np.exp(-np.pi * bandwidth / sample_rate)
        a1, a2 = -2 * r * np.cos(2 * np.pi * formant / sample_rate), r * r
        out = np.zeros(n)
        for i in range(n):  # second-order resonator
            out[i] = signal[i] - a1 * out[i - 1] - a2 * out[i - 2] if i >= 2 else signal[i]
        signal = out
    syllables = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    voice = signal * syllables + 0.01 * rng.standard_normal(n)
    return (0.3 * voice / np.max(np.abs(voice))).astype(np.float32)
