"""The voice encoders' inputs computed in PyTorch, batched, on the training device.

Training on the fly hands 16 kHz windows (``VoiceInputSpec.model_waveform``: loudness fixed,
looped or cropped, in DataLoader workers) to the training step, which turns them into the
encoder's input here: the STFT spectrogram (``paper`` or ``original`` framing) or the Kaldi
fbank, the same definitions as ``s2f.runtime.preprocess.features`` in numpy.

Everything runs in float64, as the numpy features do, and is cast to float32 at the end. In
float32 the two would differ far more than a float32 rounding where it matters: the
``original`` variant's phase channel (``sgn(phi)|phi|^0.3``) of a quiet bin is the angle of a
small complex number, and an FFT's error is relative to the whole frame, not to that bin. In
float64 both sides land within one float32 step of the exact value (tests check that against
a float64 reference). The cost is small next to the model: a batch of 32 six-second clips is
about 20 thousand 512-point FFTs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from s2f.runtime.preprocess.features import FLOAT32_EPS, POWER_LAW, VE_FFT, VE_FRAME, VE_HOP, kaldi_mel_banks
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

PREEMPHASIS = 0.97
AST_FRAMES = 1024
AST_MEL_BINS = 128


def _hann(length: int, periodic: bool) -> torch.Tensor:
    denominator = length if periodic else length - 1
    return 0.5 - 0.5 * torch.cos(2.0 * torch.pi * torch.arange(length, dtype=torch.float64) / denominator)


def _compress(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * x.abs() ** POWER_LAW


def _real_spectrum(frames: torch.Tensor, n: int) -> torch.Tensor:
    """``rfft`` with zeros as numpy's pocketfft gives them, for the phase channel's sake: the
    DC and Nyquist bins' imaginary parts are exactly +0 (mathematically 0; another FFT may
    leave -0.0 or 1e-17, and the angle of a negative real number flips between pi and -pi),
    and no zero is signed (``x + 0.0`` turns -0.0 into +0.0: a silent frame's bins have angle
    0, not pi)."""
    spectrum = torch.fft.rfft(frames, n=n, dim=-1)
    imag = spectrum.imag.clone()
    imag[..., 0] = 0.0
    if n % 2 == 0:
        imag[..., -1] = 0.0
    return torch.complex(spectrum.real + 0.0, imag + 0.0)


class DeviceFeatures(nn.Module):
    """N x samples float32 windows -> N x 2 x 257 x T (ve_conv) or N x 1024 x 128 (ast) float32.

    Its buffers (windows, mel filters) follow ``.to(device)``; it has no parameters, and
    autocast is switched off inside so that mixed precision never reaches the features.
    """

    def __init__(self, spec: VoiceInputSpec) -> None:
        super().__init__()
        if spec.sample_rate != 16000:
            raise ValueError(f"features are defined at 16000 Hz, got {spec.sample_rate}")
        self.spec = spec
        if spec.encoder == "ve_conv" and spec.variant == "original":
            window = torch.zeros(VE_FFT, dtype=torch.float64)
            left = (VE_FFT - VE_FRAME) // 2
            window[left:left + VE_FRAME] = _hann(VE_FRAME, True)
        else:
            window = _hann(VE_FRAME, spec.encoder == "ve_conv")  # Kaldi's "hanning" is symmetric
        self.register_buffer("window", window, persistent=False)
        banks = kaldi_mel_banks(AST_MEL_BINS, VE_FFT, spec.sample_rate) if spec.encoder == "ast" else np.zeros((1, 1))
        self.register_buffer("mel_banks", torch.from_numpy(banks), persistent=False)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        with torch.autocast(windows.device.type, enabled=False):
            signal = windows.to(torch.float64)
            if self.spec.encoder == "ast":
                return self._fbank(signal)
            return self._spectrogram(signal)

    def _spectrogram(self, signal: torch.Tensor) -> torch.Tensor:
        if self.spec.variant == "paper":
            frames = signal.unfold(-1, VE_FRAME, VE_HOP) * self.window
            spectrum = _real_spectrum(frames, VE_FFT)  # zero-padded at the end to 512
            channels = (_compress(spectrum.real), _compress(spectrum.imag))
        else:
            padded = nn.functional.pad(signal, (VE_FFT // 2, VE_FFT // 2))
            spectrum = _real_spectrum(padded.unfold(-1, VE_FFT, VE_HOP) * self.window, VE_FFT)
            channels = (spectrum.abs() ** POWER_LAW, _compress(torch.angle(spectrum)))
        # N x T x 257 each -> N x 2 x 257 x T
        return torch.stack([c.transpose(-1, -2) for c in channels], dim=1).to(torch.float32)

    def _fbank(self, signal: torch.Tensor) -> torch.Tensor:
        frames = signal.unfold(-1, VE_FRAME, VE_HOP)
        frames = frames - frames.mean(dim=-1, keepdim=True)  # DC removal
        emphasised = torch.cat([frames[..., :1] * (1.0 - PREEMPHASIS),
                                frames[..., 1:] - PREEMPHASIS * frames[..., :-1]], dim=-1)
        power = torch.fft.rfft(emphasised * self.window, n=VE_FFT, dim=-1).abs() ** 2
        fbank = torch.log(torch.clamp(power @ self.mel_banks, min=FLOAT32_EPS))[:, :AST_FRAMES]
        if fbank.shape[1] < AST_FRAMES:
            fbank = nn.functional.pad(fbank, (0, 0, 0, AST_FRAMES - fbank.shape[1]))
        return ((fbank - self.spec.mean) / (self.spec.std * 2)).to(torch.float32)
