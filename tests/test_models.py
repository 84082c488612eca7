"""Voice encoders and face decoder: shapes, sizes, save/load, and the original's checkpoints."""

from __future__ import annotations

import pytest
import torch

from s2f.core.errors import InputError
from s2f.models.ast_encoder import ASTVoiceEncoder, ASTVoiceEncoderConfig
from s2f.models.face_decoder import FaceDecoder, FaceDecoderConfig
from s2f.models.voice_encoder import VEConv, VEConvConfig

TINY_AST = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                max_length=128, num_mel_bins=128)


@pytest.mark.slow
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
        torch.testing.assert_close(again(x), model(x))  # float32 rounding: kernels may differ per load
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


def test_ast_encoder_train_modes():
    config = ASTVoiceEncoderConfig(ast=dict(TINY_AST), embedding_dim=64, train_mode="head")
    model = ASTVoiceEncoder(config).eval()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("ast.classifier.") for n in trainable)
    model.set_train_mode("top", top_layers=1)
    assert any(".layers.1." in n or ".layer.1." in n for n, p in model.named_parameters() if p.requires_grad)
    assert not any(".layers.0." in n or ".layer.0." in n for n, p in model.named_parameters() if p.requires_grad)
    model.set_train_mode("full")
    assert all(p.requires_grad for p in model.parameters())



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
        torch.testing.assert_close(again(x), model.eval()(x))  # float32 rounding: kernels may differ per load
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
        torch.testing.assert_close(again(x)[1], model(x)[1])  # float32 rounding: kernels may differ per load


@pytest.mark.parametrize("activation", ["sigmoid", "none"])
def test_a_silent_texture_head_starts_every_face_at_the_mean_face(activation):
    """With the texture head's last layer at zero, every embedding decodes to the mean texture
    exactly (in RGB or through the logit base); with its random initialisation each face gets a
    correction of its own, which is the colour noise the option removes."""
    config = FaceDecoderConfig(shared_dims=[32, 16], landmark_dims=[8], texture_channels=[8, 4, 4],
                               texture_size=7, output_activation=activation, texture_base=True)
    torch.manual_seed(0)
    mean = torch.rand(3, 28, 28) * 0.8 + 0.1
    x = torch.randn(4, 4096)
    noisy, silent = FaceDecoder(config).eval(), FaceDecoder(config).eval()
    noisy.start_from_mean(mean, None)
    silent.start_from_mean(mean, None, silent_texture_head=True)
    with torch.no_grad():
        torch.testing.assert_close(silent(x)[1], mean.expand(4, 3, 28, 28), atol=2e-6, rtol=0)
        spread = noisy(x)[1] - mean
    assert spread.abs().mean() > 1e-3  # the random head moves each face off the mean
    assert (spread[0] - spread[1]).abs().mean() > 1e-4  # and each face differently
    assert silent.texture_rgb.weight.requires_grad  # still trained
