"""The original Speech-to-Face project as its users run it, rebuilt for tests and benches from
its source (shared/reference/original-project, MIT): its module layouts (``VE_conv``,
``FaceDecoder``, the AST with ``nn.Sequential(head, ReLU)``), its ``ModelSaver`` file format,
and its inference recipe (``inference/inference_speech_to_face_{ve,ast}.py``: PCM16 at
16 kHz, RMS to -23 dB, loop to the clip length, librosa STFT or ``ASTFeatureExtractor``,
the models, ``(texture * 255).to(uint8)``). Widths are parameters so tests can build thin
models of the same layout; the defaults are the original's full size.

Written from the reference for comparison, not imported by speech2face itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

VE_FULL = [64, 64, 128, 128, 128, 256, 512, 512, 512]
ORIGINAL_AST_MEAN, ORIGINAL_AST_STD = -5.460994, 3.1129124


class OriginalVEConv(nn.Module):
    """``models/voice_encoder.py``: layer1 ... layer11; layer9 is conv, avg-pool over time, ReLU, BN."""

    def __init__(self, channels: list[int] = VE_FULL, hidden: int = 4096, embedding: int = 4096) -> None:
        super().__init__()
        blocks, cin = [], 2
        for index, cout in enumerate(channels, start=1):
            stride = 2 if index in (8, 9) else 1
            conv = nn.Conv2d(cin, cout, kernel_size=4, stride=stride)
            if index == 9:
                block = [conv, nn.AdaptiveAvgPool2d((None, 1)), nn.ReLU(), nn.BatchNorm2d(cout)]
            else:
                block = [conv, nn.ReLU(), nn.BatchNorm2d(cout)]
                if index in (3, 4, 5, 6):
                    block.append(nn.MaxPool2d(kernel_size=(1, 2), stride=(1, 2)))
            blocks.append(nn.Sequential(*block))
            cin = cout
        for index, block in enumerate(blocks, start=1):
            setattr(self, f"layer{index}", block)
        self.layer10 = nn.Sequential(nn.Flatten(), nn.Linear(cin * 57, hidden), nn.ReLU())
        self.layer11 = nn.Sequential(nn.Linear(hidden, embedding), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index in range(1, 12):
            x = getattr(self, f"layer{index}")(x)
        return x


class OriginalFaceDecoder(nn.Module):
    """``models/face_decoder.py`` (pre/landmark/texture layers), with its sigmoid (since
    2023-12-21) or without (``sigmoid=False``, older copies)."""

    def __init__(self, embedding: int = 4096, shared: tuple[int, int] = (3072, 2048),
                 landmark: tuple[int, ...] = (1024, 512, 256), texture: tuple[int, ...] = (256, 128, 64, 32, 32),
                 sigmoid: bool = True) -> None:
        super().__init__()

        def fc_bn(a, b):
            return nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU())

        def deconv(a, b):
            return nn.ConvTranspose2d(a, b, kernel_size=5, stride=2, padding=2, output_padding=1)

        dims = [embedding, *shared]
        self.pre_layers = nn.ModuleList(fc_bn(a, b) for a, b in zip(dims, dims[1:], strict=False))
        dims = [shared[-1], *landmark]
        self.landmark_layers = nn.ModuleList([*(fc_bn(a, b) for a, b in zip(dims, dims[1:], strict=False)),
                                              nn.Sequential(nn.Linear(landmark[-1], 144))])
        texture_layers = [nn.Sequential(nn.Linear(shared[-1], texture[0] * 14 * 14), nn.ReLU()),
                          nn.Sequential(nn.Unflatten(1, (texture[0], 14, 14)), deconv(texture[0], texture[1]),
                                        nn.ReLU())]
        texture_layers += [nn.Sequential(deconv(a, b), nn.ReLU()) for a, b in zip(texture[1:], texture[2:],
                                                                                   strict=False)]
        last = [nn.Conv2d(texture[-1], 3, kernel_size=1)] + ([nn.Sigmoid()] if sigmoid else [])
        self.texture_layers = nn.ModuleList([*texture_layers, nn.Sequential(*last)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.pre_layers:
            x = layer(x)
        landmarks, texture = x, x
        for layer in self.landmark_layers:
            landmarks = layer(landmarks)
        for layer in self.texture_layers:
            texture = layer(texture)
        return landmarks, texture


def original_ast(hidden: int = 768, layers: int = 12, heads: int = 12, intermediate: int = 3072,
                 embedding: int = 4096, relu_head: bool = True) -> nn.Module:
    """``ASTForAudioClassification`` with ``num_labels=embedding``; since 2024-04-08 the original
    wraps its head as ``nn.Sequential(head, nn.ReLU())`` (``relu_head``)."""
    from transformers import ASTConfig, ASTForAudioClassification

    model = ASTForAudioClassification(ASTConfig(hidden_size=hidden, num_hidden_layers=layers,
                                                num_attention_heads=heads, intermediate_size=intermediate,
                                                num_labels=embedding))
    if relu_head:
        model.classifier = nn.Sequential(model.classifier, nn.ReLU())
    return model


def randomise_batchnorm(model: nn.Module, example: torch.Tensor, seed: int = 0) -> nn.Module:
    """BatchNorm statistics measured on ``example`` (as training would leave them: without
    them a deep random net forgets its input), then random affine parameters and a small
    random shift of the statistics, so a swapped or skipped BatchNorm shows."""
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # a cumulative average over the calibration pass
    model.train()
    with torch.no_grad():
        model(example)
    for module in norms:
        count = module.num_features
        module.momentum = 0.1
        module.running_mean.add_(0.1 * module.running_var.sqrt() * torch.randn(count, generator=generator))
        module.weight.data.copy_(1 + 0.2 * torch.randn(count, generator=generator))
        module.bias.data.copy_(0.1 * torch.randn(count, generator=generator))
    return model.eval()


def save_like_model_saver(model: nn.Module, path: Path, state_names=None) -> Path:
    """``train/model_saver.py``'s file: the state dict beside an Adam state (after one step)
    and a training history, as ``torch.save`` writes it."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-4)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()  # fills exp_avg / exp_avg_sq (zero gradients: the weights do not move)
    optimizer.zero_grad()
    state = model.state_dict() if state_names is None else state_names(model.state_dict())
    torch.save({"epoch": 3, "loss": 0.25, "best_loss": 0.25, "model_state_dict": state,
                "optimizer_state_dict": optimizer.state_dict(),
                "history": [{"epoch": 0, "train_loss": 1.0, "val_sum_loss": 0.5}], "fine_tune_epoch_start": -1}, path)
    return path


def original_waveform(waveform: np.ndarray, seconds: float) -> np.ndarray:
    """The original's audio path for 16 kHz input, in FFmpeg's arithmetic: PCM16 (ffmpeg:
    ``lrintf(x * 32768)`` in float32), RMS to -23 dB (ffmpeg-normalize: the gain applied by
    FFmpeg's ``volume`` filter in float32, written as PCM16 again; the gain here is the exact
    RMS one, where ffmpeg-normalize reads volumedetect's 0.1 dB figure), read back as
    ``librosa.load`` does (int16 / 32768), then ``stretch_audio``: loop, crop to ``seconds``."""
    def pcm16(x: np.ndarray) -> np.ndarray:
        return (np.clip(np.rint(x.astype(np.float32) * np.float32(32768)), -32768, 32767) / 32768).astype(np.float32)

    pcm = pcm16(waveform)
    gain = 10 ** (-23 / 20) / np.sqrt(np.mean(pcm.astype(np.float64) ** 2))
    pcm = pcm16(pcm * np.float32(gain))
    target = int(seconds * 16000)
    looped = pcm
    while looped.shape[0] < target:
        looped = np.concatenate([looped, pcm[:target - looped.shape[0]]])
    return looped[:target]


def original_ve_features(waveform: np.ndarray) -> np.ndarray:
    """``audio_spectrograms.py``: librosa STFT (centred, n_fft 512, hop 160, win 400, hann),
    magnitude and phase each ``sign * |x| ** 0.3``: 2 x 257 x 601 for 6 s."""
    import librosa

    spectrum = librosa.stft(original_waveform(waveform, 6), n_fft=512, hop_length=160, win_length=400, window="hann")
    magnitude, phase = np.abs(spectrum), np.angle(spectrum)
    return np.stack([np.sign(magnitude) * np.abs(magnitude) ** 0.3, np.sign(phase) * np.abs(phase) ** 0.3])


def original_ast_features(waveform: np.ndarray) -> np.ndarray:
    """``ASTFeatureExtractor(sampling_rate=16000, mean=-5.460994, std=3.1129124)`` on 10.26 s."""
    from transformers import ASTFeatureExtractor

    extractor = ASTFeatureExtractor(sampling_rate=16000, mean=ORIGINAL_AST_MEAN, std=ORIGINAL_AST_STD)
    values = extractor(original_waveform(waveform, 10.26), sampling_rate=16000, padding="max_length",
                       return_tensors="np").input_values
    return values[0]


def original_inference(encoder: nn.Module, decoder: nn.Module, features: np.ndarray, ast: bool = False):
    """The inference scripts' model calls: (image HxWx3 uint8, landmarks 72x2, embedding)."""
    with torch.no_grad():
        x = torch.tensor(features).unsqueeze(0)
        embedding = encoder(x).logits if ast else encoder(x)
        landmarks, texture = decoder(embedding)
    image = (texture[0] * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return image, landmarks[0].view(72, 2).numpy(), embedding[0].numpy()
