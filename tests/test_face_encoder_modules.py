"""The PyTorch modules agree with the shared parameter layout and Keras' geometry."""

from __future__ import annotations

import json

import pytest
import torch

from s2f.models.face_encoder import build_face_encoder, load_face_encoder, tf_same_padding
from s2f.models.face_encoder_config import ARCHITECTURES, FaceEncoderConfig, parameter_layout
from s2f.models.loading import load_model


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("include_top", [True, False])
def test_state_dict_matches_layout(arch, include_top):
    config = FaceEncoderConfig.for_arch(arch, include_top)
    with torch.device("meta"):
        model = build_face_encoder(config)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert got == {spec.torch_key: spec.shape for spec in parameter_layout(config)}


def test_keras_geometry():
    assert tf_same_padding(224, 7, 2) == (2, 3)  # TensorFlow puts the odd pixel at the end
    assert tf_same_padding(225, 7, 2) == (3, 3)
    config = FaceEncoderConfig.for_arch("rcmalli-resnet50")
    assert config.bn_eps == 1e-3 and FaceEncoderConfig.for_arch("rcmalli-senet50").bn_eps == 1e-4
    model = build_face_encoder(config)
    with torch.no_grad():
        stem = model.conv1(torch.zeros(1, 3, 224, 224))
    assert stem.shape[-2:] == (55, 55)
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_embed_classify_contract_and_pretrained_roundtrip(tmp_path):
    model = build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-senet50"))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        embedding, probabilities = model.embed(x), model.classify(x)
    assert embedding.shape == (2, 2048) and probabilities.shape == (2, 8631)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(2))
    model.source = {"format": "test", "file": "senet.h5", "sha256": "0" * 64}
    model.save_pretrained(tmp_path / "senet")
    # a regular save_pretrained directory: config.json says what to build, and is read back
    config = json.loads((tmp_path / "senet" / "config.json").read_text())
    assert config == {"model_type": "face_encoder", "arch": "rcmalli-senet50", "include_top": True}
    again = load_model(tmp_path / "senet")
    assert not again.training and again.config == model.config and again.source == model.source
    with torch.no_grad():
        torch.testing.assert_close(again.embed(x), embedding)  # float32 rounding: kernels may differ per load
    # a directory saved before (config.json held every config field) still loads
    import dataclasses

    old = {"model_type": "face_encoder", **json.loads(json.dumps(dataclasses.asdict(model.config), default=str))}
    (tmp_path / "senet" / "config.json").write_text(json.dumps(old))
    assert load_face_encoder(tmp_path / "senet").config == model.config


def test_notop_models_refuse_what_they_cannot_do():
    vgg = build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-vgg16", include_top=False))
    x = torch.zeros(1, 3, 224, 224)
    with pytest.raises(ValueError, match="no fc7 descriptor"):
        vgg.embed(x)
    with pytest.raises(ValueError, match="needs the top"):
        vgg.classify(x)
    assert vgg.forward_features(x).shape == (1, 512, 7, 7)


def test_dropout_only_in_training():
    model = build_face_encoder(FaceEncoderConfig.for_arch("serengil", include_top=False))
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model.embed(x), model.embed(x))


def test_the_distillation_head_is_the_classifier_on_embeddings():
    """head_logits (fc8 as a matrix product, for training) gives the model's own logits (fc8 as
    the 1x1 convolution Keras has), to float32 rounding: the same classifier, two kernels."""
    from s2f.models.face_encoder import he_normal_init_

    model = he_normal_init_(build_face_encoder(FaceEncoderConfig.for_arch("serengil", include_top=True)), 0)
    images = torch.rand(2, 3, 224, 224) * 255
    with torch.no_grad():
        logits, from_embedding = model.logits(images), model.head_logits(model.embed(images))
    assert logits.shape == from_embedding.shape == (2, 2622)
    assert torch.allclose(logits, from_embedding, rtol=1e-4, atol=1e-4 * logits.abs().max().item())
    assert not torch.allclose(logits[0], logits[1])  # two images, two answers
