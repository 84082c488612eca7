"""A source-filter voice in numpy: a glottal harmonic series at a wandering pitch, shaped by
vowel formants that move syllable by syllable, plus breath noise.

Additive synthesis (each harmonic weighted by the formant envelope at its own frequency)
keeps it vectorised and free of IIR loops; the envelope is evaluated at a 4 ms control rate
and interpolated, which is inaudible for formant motion and far cheaper than per sample.
"""

from __future__ import annotations

import numpy as np

from s2f.data.synth_identity import Identity

# (F1, F2, F3) Hz of an adult voice for /a e i o u/; bandwidths of the three formants
VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240]],
                  np.float64)
BANDWIDTHS = np.array([90.0, 110.0, 170.0])
CONTROL_HOP = 64  # samples between envelope evaluations (4 ms at 16 kHz)
MAX_HARMONIC_HZ = 5500.0


def _smooth_steps(values: np.ndarray, lengths: np.ndarray, n: int, glide: int) -> np.ndarray:
    """Piecewise-constant per-syllable values with linear glides between syllables."""
    track = np.repeat(values, lengths, axis=0)[:n]
    if glide > 1:
        kernel = np.ones(glide) / glide
        track = np.stack([np.convolve(np.pad(track[:, i], (glide // 2, glide - 1 - glide // 2), mode="edge"),
                                      kernel, mode="valid") for i in range(track.shape[1])], axis=1)
    return track


def synthesize_voice(identity: Identity, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """float32 mono waveform in [-1, 1] of one utterance of ``identity``."""
    n = int(round(seconds * sample_rate))
    controls = n // CONTROL_HOP + 2
    control_rate = sample_rate / CONTROL_HOP
    # syllables: random vowels, lengths around the identity's rate, some pauses
    mean_len = control_rate / (identity.syllable_rate * rng.uniform(0.92, 1.08))
    lengths = np.maximum(4, rng.normal(mean_len, 0.25 * mean_len, size=int(2 * controls / mean_len) + 8)).astype(int)
    vowels = rng.integers(0, len(VOWELS), size=len(lengths))
    voiced = rng.random(len(lengths)) > 0.12
    formants = _smooth_steps(VOWELS[vowels] * identity.formant_scale * rng.uniform(0.97, 1.03, 3), lengths,
                             controls, glide=max(2, int(0.03 * control_rate)))
    position = np.arange(controls)
    starts = np.concatenate([[0], np.cumsum(lengths)])[:-1]
    phase_in_syllable = (position - np.repeat(starts, lengths)[:controls]) / np.repeat(lengths, lengths)[:controls]
    loudness = np.sin(np.pi * phase_in_syllable) ** 0.6 * np.repeat(voiced, lengths)[:controls]
    # pitch: the identity's, shifted per clip, declining over phrases with per-syllable accents
    accents = np.repeat(rng.normal(0, 0.04, len(lengths)), lengths)[:controls]
    drift = -0.06 * ((position / control_rate) % 2.5) / 2.5
    f0_control = identity.pitch_hz * rng.uniform(0.95, 1.05) * np.exp(accents + drift)
    # interpolate controls to samples
    t = np.arange(n) / CONTROL_HOP
    f0 = np.interp(t, position, f0_control)
    amp = np.interp(t, position, loudness)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    max_k = int(MAX_HARMONIC_HZ / f0_control.min())
    signal = np.zeros(n)
    for k in range(1, max_k + 1):
        freq = k * f0_control  # per control step
        envelope = ((freq / 100.0) ** identity.tilt * (freq < MAX_HARMONIC_HZ)
                    * (1.0 / (1.0 + ((freq[:, None] - formants) / (BANDWIDTHS / 2)) ** 2)).sum(axis=1))
        signal += np.interp(t, position, envelope) * np.sin(k * phase)
    signal *= amp
    noise = np.diff(rng.standard_normal(n + 1))  # breath noise, tilted up
    signal += identity.breathiness * np.max(np.abs(signal)) * noise * (0.3 + amp)
    signal += 1e-4 * rng.standard_normal(n)  # room noise
    gain = rng.uniform(0.15, 0.6) / max(float(np.max(np.abs(signal))), 1e-9)  # recording levels vary
    return (signal * gain).astype(np.float32)


def speech_clip(seconds: float = 6.0, sample_rate: int = 16000, f0: float = 120.0, seed: int = 0,
                peak: float = 0.3) -> np.ndarray:
    """A deterministic speech-like clip around pitch ``f0`` with peak ``peak``: the same voice
    model as the synthetic corpus, for tests and benchmarks that need audio but no person."""
    register = float(np.log(f0 / 165.0) / 0.30)  # Identity.pitch_hz inverted at size 0
    voice = synthesize_voice(Identity("clip", register, 0.0, 0.0, 0.0), seconds, sample_rate,
                             np.random.default_rng(seed))
    return (voice * np.float32(peak / max(float(np.max(np.abs(voice))), 1e-9))).astype(np.float32)
