"""Voice encoders and face decoder: shapes, sizes, save/load, and the original's checkpoints."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from s2f.models.ast_encoder import ASTVoiceEncoder, ASTVoiceEncoderConfig, load_original_ast
from s2f.models.face_decoder import FaceDecoder, FaceDecoderConfig, load_original_face_decoder
from s2f.models.voice_encoder import VEConv, VEConvConfig
from s2f.runtime.errors import InputError

TINY_AST = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                max_length=128, num_mel_bins=128)


@pytest.mark.parametrize("variant,frames", [("paper", 598), ("original", 601)])
def test_ve_conv_full_size(variant, frames):
    model = VEConv(VEConvConfig(variant=variant)).eval()
    parameters = sum(p.numel() for p in model.parameters())
    print(f"VEConv ({variant}): {parameters:,} parameters")
    assert parameters == 148_062_976  # 136 M of them in the two FC layers
    assert model.fc1.in_features == 512 * 57
    with torch.no_grad():
        out = model(torch.randn(2, 2, 257, frames))
    assert out.shape == (2, 4096) and (out >= 0).all()


def test_ve_conv_roundtrip(tmp_path):
    config = VEConvConfig(channels=[4] * 9, hidden_dim=16, embedding_dim=8)
    model = VEConv(config).eval()
    x = torch.randn(3, 2, 257, 598)
    model.save_pretrained(tmp_path / "ve")
    again = VEConv.from_pretrained(tmp_path / "ve")
    assert again.config == config
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    with pytest.raises(InputError, match="holds a 've_conv' model"):
        FaceDecoder.from_pretrained(tmp_path / "ve")


def test_face_decoder_outputs():
    model = FaceDecoder().eval()
    print(f"FaceDecoder: {sum(p.numel() for p in model.parameters()):,} parameters")
    with torch.no_grad():
        landmarks, texture = model(torch.rand(2, 4096))
    assert landmarks.shape == (2, 144) and texture.shape == (2, 3, 224, 224)
    assert texture.min() >= 0 and texture.max() <= 1
    assert model.shared_features(torch.rand(2, 4096)).shape == (2, 2048)


class _OriginalFaceDecoder(nn.Module):
    """The original project's module layout (pre/landmark/texture Sequentials), to check
    that its checkpoints map onto ours tensor for tensor."""

    def __init__(self) -> None:
        super().__init__()

        def fc_bn(a, b):
            return nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU())

        def deconv(a, b):
            return nn.ConvTranspose2d(a, b, 5, stride=2, padding=2, output_padding=1)

        self.pre_layers = nn.ModuleList([fc_bn(4096, 3072), fc_bn(3072, 2048)])
        self.landmark_layers = nn.ModuleList([fc_bn(2048, 1024), fc_bn(1024, 512), fc_bn(512, 256),
                                              nn.Sequential(nn.Linear(256, 144))])
        self.texture_layers = nn.ModuleList([
            nn.Sequential(nn.Linear(2048, 256 * 14 * 14), nn.ReLU()),
            nn.Sequential(nn.Unflatten(1, (256, 14, 14)), deconv(256, 128), nn.ReLU()),
            nn.Sequential(deconv(128, 64), nn.ReLU()), nn.Sequential(deconv(64, 32), nn.ReLU()),
            nn.Sequential(deconv(32, 32), nn.ReLU()), nn.Sequential(nn.Conv2d(32, 3, 1))])

    def forward(self, x):
        for layer in self.pre_layers:
            x = layer(x)
        landmarks, texture = x, x
        for layer in self.landmark_layers:
            landmarks = layer(landmarks)
        for layer in self.texture_layers:
            texture = layer(texture)
        return landmarks, texture


def test_original_face_decoder_checkpoint(tmp_path):
    torch.manual_seed(0)
    original = _OriginalFaceDecoder()
    for module in original.modules():
        if isinstance(module, nn.BatchNorm1d):  # non-trivial statistics
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    original.eval()
    path = tmp_path / "best_model.pt"
    torch.save({"model_state_dict": original.state_dict(), "optimizer_state_dict": {}, "epoch": 7,
                "best_loss": 0.5, "history": [{"epoch": 0, "val_sum_loss": 1.0}]}, path)
    ours = load_original_face_decoder(path)
    x = torch.rand(2, 4096)
    with torch.no_grad():
        for got, expected in zip(ours(x), original(x), strict=True):
            torch.testing.assert_close(got, expected, rtol=0, atol=0)


def _to_transformers4_names(state: dict) -> dict:
    """Parameter names as transformers 4.x (the original's) saved them."""
    rules = [(r"\.layers\.", ".encoder.layer."), (r"attention\.q_proj", "attention.attention.query"),
             (r"attention\.k_proj", "attention.attention.key"), (r"attention\.v_proj", "attention.attention.value"),
             (r"attention\.o_proj", "attention.output.dense"), (r"mlp\.fc1", "intermediate.dense"),
             (r"mlp\.fc2", "output.dense")]
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


def test_ast_encoder_modes_and_original_checkpoint(tmp_path):
    config = ASTVoiceEncoderConfig(ast=dict(TINY_AST), embedding_dim=64, train_mode="head")
    model = ASTVoiceEncoder(config).eval()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("ast.classifier.") for n in trainable)
    model.set_train_mode("top", top_layers=1)
    assert any(".layers.1." in n or ".layer.1." in n for n, p in model.named_parameters() if p.requires_grad)
    assert not any(".layers.0." in n or ".layer.0." in n for n, p in model.named_parameters() if p.requires_grad)
    model.set_train_mode("full")
    assert all(p.requires_grad for p in model.parameters())

    fbank = torch.randn(2, 128, 128)
    path = tmp_path / "ast_best.pt"
    torch.save({"model_state_dict": _to_transformers4_names(model.ast.state_dict()), "epoch": 1}, path)
    original = load_original_ast(path, ast=dict(TINY_AST))
    assert original.config.output_relu is False and original.config.feature_mean == -5.460994
    with torch.no_grad():
        torch.testing.assert_close(original(fbank), model.ast(input_values=fbank).logits, rtol=0, atol=0)


def test_ast_backbone_from_a_local_checkpoint(tmp_path):
    from transformers import ASTConfig, ASTForAudioClassification

    audioset = ASTForAudioClassification(ASTConfig(**TINY_AST, num_labels=527))  # AudioSet head
    audioset.save_pretrained(tmp_path / "ast-audioset")
    model = ASTVoiceEncoder(ASTVoiceEncoderConfig(ast=dict(TINY_AST), embedding_dim=64),
                            pretrained_ast=tmp_path / "ast-audioset")
    theirs = audioset.audio_spectrogram_transformer.state_dict()
    for key, value in model.ast.audio_spectrogram_transformer.state_dict().items():
        torch.testing.assert_close(value, theirs[key], rtol=0, atol=0)
    model.save_pretrained(tmp_path / "ours")
    again = ASTVoiceEncoder.from_pretrained(tmp_path / "ours")
    x = torch.randn(1, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model.eval()(x), rtol=0, atol=0)
    with pytest.raises(InputError, match="not found"):
        ASTVoiceEncoder(ASTVoiceEncoderConfig(ast=dict(TINY_AST)), pretrained_ast=tmp_path / "missing")


def test_face_decoder_config_roundtrip(tmp_path):
    config = FaceDecoderConfig(shared_dims=[32, 16], landmark_dims=[8], texture_channels=[8, 4, 4],
                               texture_size=7, output_activation="none")
    model = FaceDecoder(config).eval()
    model.save_pretrained(tmp_path / "dec")
    again = FaceDecoder.from_pretrained(tmp_path / "dec")
    assert again.config == config and config.image_size == 28
    x = torch.rand(2, 4096)
    with torch.no_grad():
        torch.testing.assert_close(again(x)[1], model(x)[1], rtol=0, atol=0)
