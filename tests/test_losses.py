"""The Speech2Face losses: formulas, the original's defaults, and batch independence, the
property the original's two bugs (batch-wide norm, summed distillation) broke."""

from __future__ import annotations

import pytest
import torch

from s2f.train.losses import DecoderLossWeights, FaceDecoderLoss, VoiceEncoderLoss, VoiceLossWeights


def _voice_loss():
    torch.manual_seed(0)
    head, first = torch.nn.Linear(16, 10), torch.nn.Linear(16, 12)
    return VoiceEncoderLoss(head, first), head, first


def test_defaults_are_the_originals_but_the_landmark_weight():
    assert VoiceLossWeights() == VoiceLossWeights(decoder=1.0, distance=0.025, distillation=200.0, temperature=2.0)
    # the original weighted the landmarks 1 (bench/decoder_recipe.py measures why 0.01)
    assert DecoderLossWeights() == DecoderLossWeights(landmarks=0.01, texture=100.0, embedding=100.0, image=100.0)


def test_warping_decoder_loss_scores_the_aligned_texture_and_the_warped_face():
    from s2f.train.losses import FaceDecoderLoss

    torch.manual_seed(0)
    landmarks, true_landmarks = torch.randn(2, 8), torch.randn(2, 8)
    face, true_face, aligned, true_aligned = (torch.rand(2, 3, 4, 4) for _ in range(4))
    terms = FaceDecoderLoss()(landmarks, face, true_landmarks, true_face, None, aligned, true_aligned)
    assert torch.isclose(terms["texture"], 100 * (aligned - true_aligned).abs().mean())
    assert torch.isclose(terms["image"], 100 * (face - true_face).abs().mean())
    assert torch.isclose(terms["loss"], terms["landmarks"] + terms["texture"] + terms["image"])
    plain = FaceDecoderLoss()(landmarks, face, true_landmarks, true_face)
    assert "image" not in plain and torch.isclose(plain["texture"], 100 * (face - true_face).abs().mean())


def test_voice_loss_formula():
    loss, head, first = _voice_loss()
    voice, face = torch.randn(4, 16), torch.randn(4, 16).relu()
    terms = loss(voice, face)
    unit = lambda x: x / x.norm(dim=1, keepdim=True)  # noqa: E731
    distance = ((unit(voice) - unit(face)) ** 2).sum(1).mean()
    teacher = torch.softmax(head(face) / 2, 1)
    ce = -(teacher * torch.log_softmax(head(voice) / 2, 1)).sum(1)
    entropy = -(teacher * torch.log(teacher)).sum(1)
    ce = (ce - entropy).mean()  # logged as KL; the gradient is the cross-entropy's
    decoder = (first(voice) - first(face)).abs().mean()
    torch.testing.assert_close(terms["distance"], 0.025 * distance)
    torch.testing.assert_close(terms["distillation"], 200 * ce)
    torch.testing.assert_close(terms["decoder"], decoder)
    torch.testing.assert_close(terms["loss"], 0.025 * distance + 200 * ce + decoder)


def test_voice_loss_does_not_depend_on_batch_mates():
    """Mean of per-sample losses == batch loss, and doubling the batch with copies changes
    nothing. The original's batch-wide norm and summed distillation both fail this."""
    loss, _, _ = _voice_loss()
    voice, face = torch.randn(8, 16), torch.randn(8, 16).relu()
    batch = loss(voice, face)
    singles = [loss(voice[i:i + 1], face[i:i + 1]) for i in range(8)]
    doubled = loss(torch.cat([voice, voice]), torch.cat([face, face]))
    for key in ("distance", "distillation", "decoder", "loss"):
        torch.testing.assert_close(batch[key], torch.stack([s[key] for s in singles]).mean())
        torch.testing.assert_close(batch[key], doubled[key])


def test_original_bugs_would_be_caught():
    """Re-implement the original's terms and show the batch-independence check flags them."""
    voice, face = torch.randn(8, 16), torch.randn(8, 16).relu()

    def original_distance(v, f):
        return ((f / f.norm() - v / v.norm()).norm()) ** 2  # norm over the whole batch

    singles = torch.stack([original_distance(voice[i:i + 1], face[i:i + 1]) for i in range(8)]).mean()
    assert not torch.allclose(original_distance(voice, face), singles, rtol=1e-3)


def test_voice_gradients_reach_only_the_voice():
    loss, head, first = _voice_loss()
    voice = torch.randn(4, 16, requires_grad=True)
    face = torch.randn(4, 16).relu()
    for module in (head, first):
        module.requires_grad_(False)  # the trainer freezes the teacher and the decoder
    loss(voice, face)["loss"].backward()
    assert voice.grad is not None and voice.grad.abs().sum() > 0
    assert head.weight.grad is None and first.weight.grad is None


def test_decoder_loss():
    torch.manual_seed(0)
    landmarks, true_landmarks = torch.randn(2, 144), torch.randn(2, 144)
    texture, true_texture = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    terms = FaceDecoderLoss()(landmarks, texture, true_landmarks, true_texture)
    torch.testing.assert_close(terms["landmarks"], 0.01 * ((landmarks - true_landmarks) ** 2).mean())
    torch.testing.assert_close(terms["texture"], 100 * (texture - true_texture).abs().mean())
    assert "embedding" not in terms
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 5))
    embedding = torch.randn(2, 5)
    with_cos = FaceDecoderLoss(encoder)(landmarks, texture, true_landmarks, true_texture, embedding)
    cos = torch.nn.functional.cosine_similarity(encoder(texture), embedding)
    torch.testing.assert_close(with_cos["embedding"], 100 * (1 - cos).mean())


@pytest.mark.parametrize("arch", ["serengil", "rcmalli-resnet50"])
def test_face_encoder_head_logits_match_classifier(arch):
    from s2f.models.face_encoder import build_face_encoder
    from s2f.models.face_encoder_config import FaceEncoderConfig

    torch.manual_seed(0)
    model = build_face_encoder(FaceEncoderConfig.for_arch(arch, include_top=True))
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(model.head_logits(model.embed(x)), model.logits(x))


def test_texture_embedder_matches_numpy_preprocessing():
    """The decoder's cosine term embeds decoded textures exactly as preprocessing embeds photos."""
    import numpy as np

    from s2f.models.face_encoder import build_face_encoder
    from s2f.models.face_encoder_config import FaceEncoderConfig
    from s2f.runtime.preprocess.faces import preprocess
    from s2f.train.tasks import TextureEmbedder

    torch.manual_seed(0)
    encoder = build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-resnet50", include_top=False))
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    texture = torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32) / 255)
    with torch.inference_mode():
        expected = encoder.embed(torch.from_numpy(preprocess(image, "keras-vggface-v2")))
        torch.testing.assert_close(TextureEmbedder(encoder)(texture), expected, rtol=1e-4, atol=1e-4)


def test_cielab_texture_loss_costs_a_colour_cast_what_it_looks_like():
    """Two errors of the same RGB L1 on a pale skin: a uniform brightening and a shift to
    olive-yellow (red and green up, blue down). The RGB L1 sees them as equal; in CIELAB the
    cast costs more, as it looks (ΔE 5.5 against 1.8 here). The loss is then the mean of
    |ΔL*|, |Δa*|, |Δb*| / 100 per pixel, finite in its gradients down to black."""
    from s2f.runtime.evaluate.colour import srgb_to_lab

    skin = torch.tensor([236, 200, 178], dtype=torch.float64) / 255
    target = skin.view(1, 3, 1, 1).expand(1, 3, 4, 4).clone()
    brighter = target + 0.02
    olive = target + torch.tensor([0.02, 0.02, -0.02], dtype=torch.float64).view(1, 3, 1, 1)
    zeros = torch.zeros(1, 8, dtype=torch.float64)

    def texture_term(space, texture):
        return FaceDecoderLoss(texture_space=space)(zeros, texture, zeros, target)["texture"]

    assert torch.isclose(texture_term("rgb", brighter), texture_term("rgb", olive))
    assert texture_term("cielab", olive) > 2 * texture_term("cielab", brighter)
    lab = torch.from_numpy(srgb_to_lab(olive[0, :, 0, 0].numpy()) - srgb_to_lab(skin.numpy()))
    assert torch.isclose(texture_term("cielab", olive), 100 * lab.abs().mean() / 100)
    dark = torch.zeros(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    texture_term("cielab", dark).backward()
    assert torch.isfinite(dark.grad).all() and dark.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="texture_space"):
        FaceDecoderLoss(texture_space="hsv")
