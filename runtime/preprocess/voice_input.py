"""From an audio file (or waveform) to exactly the array a voice encoder takes.

One function chain, used by ``s2f preprocess audio`` for training and by the torch-free
runtime for serving: load (16 kHz mono) -> RMS loudness to -23 dBFS -> loop or crop to the
model's clip length -> features. The settings travel as a ``VoiceInputSpec`` that is written
next to preprocessed data and into exported bundles, so the two sides cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from s2f.core.errors import InputError
from s2f.runtime.preprocess.audio import (
    SILENCE_RMS,
    AudioSource,
    fit_duration,
    load_audio,
    normalize_loudness,
    to_pcm16,
)
from s2f.runtime.preprocess.features import AUDIOSET_MEAN, AUDIOSET_STD, ast_fbank, ve_spectrogram

ENCODERS = ("ve_conv", "ast")
AUDIO_STEPS = ("speech2face", "original")
VE_VARIANTS = ("paper", "original")
# clip lengths that give the models' native input sizes: 598/601 STFT frames, 1024 fbank frames
DEFAULT_SECONDS = {"ve_conv": 6.0, "ast": 10.26}


@dataclass(frozen=True)
class VoiceInputSpec:
    """Args:
        encoder: ``ve_conv`` (STFT spectrogram) or ``ast`` (Kaldi fbank).
        variant: VE_conv spectrogram framing, ``paper`` or ``original`` (ignored for AST).
        seconds: clip length the model sees; shorter clips loop, longer ones are cropped.
        sample_rate: every clip is resampled to this rate first.
        target_dbfs: RMS loudness the clip is normalised to (the original used -23).
        mean, std: AST fbank normalisation; AudioSet's by default (the original project
            re-estimated -5.460994 / 3.1129124 on its data).
        audio_steps: ``speech2face`` (loudness measured on the clip the model sees) or
            ``original``: the original project's steps, for the models it trained. There ffmpeg
            wrote a 16-bit PCM WAV, ffmpeg-normalize measured the RMS over the whole file and
            wrote another PCM16 WAV at -23 dB, and only then was the clip cut. Its models learned
            from those roundings: in the phase channel of quiet STFT bins the rounding is the
            signal, so serving them without it changes their input visibly. The whole file is
            then decoded (one hour of audio is 230 MB at 16 kHz).
    """

    encoder: str = "ve_conv"
    variant: str = "paper"
    seconds: float | None = None
    sample_rate: int = 16000
    target_dbfs: float = -23.0
    mean: float = AUDIOSET_MEAN
    std: float = AUDIOSET_STD
    audio_steps: str = "speech2face"

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown voice encoder {self.encoder!r}; expected one of {ENCODERS}")
        if self.variant not in VE_VARIANTS:
            raise ValueError(f"unknown spectrogram variant {self.variant!r}; expected one of {VE_VARIANTS}")
        if self.audio_steps not in AUDIO_STEPS:
            raise ValueError(f"unknown audio steps {self.audio_steps!r}; expected one of {AUDIO_STEPS}")
        if self.seconds is None:
            object.__setattr__(self, "seconds", DEFAULT_SECONDS[self.encoder])
        if not self.seconds > 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one clip's features."""
        return tuple(self.features(np.zeros(int(round(self.seconds * self.sample_rate)), np.float32)).shape)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VoiceInputSpec:
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    @property
    def samples(self) -> int:
        """Samples in the window the model sees."""
        return int(round(self.seconds * self.sample_rate))

    def model_waveform(self, waveform: np.ndarray, start: int | None = None) -> np.ndarray:
        """The audio steps before the spectral transform: loudness, then the window of
        ``samples`` (looped where the clip is shorter). Without ``start`` the loudness is that
        of ``waveform`` as given (serving and ``s2f preprocess audio`` decode only the first
        window) and the window is its beginning; with ``start`` (a random crop in training) the
        window from ``start`` is cut first and its own loudness is fixed. The original's audio
        steps measure the whole file either way. Split from ``features`` so that training can
        compute the spectral part on its own device (``s2f.train.device_features``)."""
        waveform = np.asarray(waveform, np.float32)
        if self.audio_steps == "original":  # loudness of the whole file, then the cut
            waveform = to_pcm16(normalize_loudness(to_pcm16(waveform), self.target_dbfs))
            return fit_duration(waveform[start or 0:], self.sample_rate, self.seconds)
        if start is not None:
            waveform = waveform[start:start + self.samples]
        return fit_duration(normalize_loudness(waveform, self.target_dbfs), self.sample_rate, self.seconds)

    def encoder_input(self, window: np.ndarray) -> np.ndarray:
        """A ``model_waveform`` window -> the encoder's input (the spectral transform alone)."""
        if self.encoder == "ve_conv":
            return ve_spectrogram(window, self.sample_rate, self.variant)
        return ast_fbank(window, self.sample_rate, mean=self.mean, std=self.std)

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """A waveform at ``sample_rate`` -> the encoder's input (loudness and length fixed here)."""
        return self.encoder_input(self.model_waveform(waveform))

    def waveform_from_file(self, source: AudioSource, name: str | None = None, whole: bool = False) -> np.ndarray:
        """The first ``seconds`` of ``source`` (a path or an open file; the whole file with the
        original's audio steps, or with ``whole`` for a random crop), decoded at ``sample_rate``;
        silent clips are refused (no voice to encode)."""
        whole_file = whole or self.audio_steps == "original"  # the original measures loudness on the whole file
        waveform = load_audio(source, self.sample_rate, max_seconds=None if whole_file else self.seconds, name=name)
        peak = float(np.max(np.abs(waveform)))
        if peak < SILENCE_RMS:
            label = name or (source if isinstance(source, str | Path) else getattr(source, "name", "the upload"))
            raise InputError(label, "audio is silent (peak below -120 dBFS): no voice to encode")
        return waveform

    def features_from_file(self, source: AudioSource, name: str | None = None) -> np.ndarray:
        return self.features(self.waveform_from_file(source, name))
