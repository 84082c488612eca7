"""Every training task declares all it runs (model and frozen teachers), and placing those
modules puts the whole computation on the device. ``meta`` stands in for a GPU on any
machine: a module left on the CPU meets a meta tensor and fails."""

from __future__ import annotations

import pytest
import torch

from s2f.models.face_encoder import build_face_encoder
from s2f.models.face_encoder_config import FaceEncoderConfig
from s2f.models.registry import MODELS
from s2f.train.tasks import DecoderTask, FaceHead, VoiceTask

EMBEDDING = 2048  # ResNet50's descriptor: the smallest real face encoder


def _face_encoder():
    return build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-resnet50", include_top=True))


def _decoder():
    return MODELS["face_decoder"].build("tiny", embedding_dim=EMBEDDING)


def _decoder_task():
    batch = (torch.rand(2, 3, 224, 224), torch.rand(2, EMBEDDING), torch.rand(2, 144) * 224, torch.zeros(2))
    return DecoderTask(_decoder(), face_encoder=_face_encoder()), batch


def _voice_task(encoder: str):
    if encoder == "ve_conv":
        model = MODELS["ve_conv"].build("tiny", embedding_dim=EMBEDDING)
        features = torch.rand(2, 2, 257, 598)
    else:
        model = MODELS["ast_voice_encoder"].build("tiny", embedding_dim=EMBEDDING)
        features = torch.rand(2, 1024, 128)
    task = VoiceTask(model, FaceHead(_face_encoder()), _decoder())
    return task, (features, torch.rand(2, EMBEDDING), torch.zeros(2))


@pytest.mark.parametrize("make", [_decoder_task, lambda: _voice_task("ve_conv"), lambda: _voice_task("ast")],
                         ids=["decoder with embedding loss", "ve_conv with decoder and face encoder", "ast"])
def test_every_module_of_a_task_runs_on_its_device(make):
    task, batch = make()
    device = torch.device("meta")
    modules = task.modules()
    assert modules[0] is task.model and len(modules) >= 2  # the model and its frozen teachers
    for module in modules:
        module.to(device)
    terms = task.losses(task.model, batch, device)
    assert terms["loss"].device == device and len(terms) >= 3  # every loss term ran
    for module in modules:
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            assert tensor.device == device, f"{type(module).__name__}.{name} stayed on {tensor.device}"
