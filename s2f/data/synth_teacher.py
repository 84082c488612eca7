"""A face encoder for the synthetic corpus, for when no real VGGFace weights exist (tests,
the demo, machines without internet).

The real serengil architecture with He-normal random weights keeps activations alive
through its 16 layers, but every embedding then points almost the same way (cosine 0.99
between different faces): fc7 after ReLU is dominated by one shared direction. Setting each
fc6/fc7 unit's bias to minus its median pre-activation over calibration faces (drawn from
another seed, so no identity used later) makes each unit fire for about half the faces.
Embeddings then behave like real VGGFace descriptors: two photos of one person are far more
alike than photos of two people (tests/test_synth.py checks the gap).
"""

from __future__ import annotations

import numpy as np
import torch

from s2f.data.synth_face import draw_face
from s2f.data.synth_identity import Identity
from s2f.models.face_encoder import FaceEncoder, build_face_encoder, he_normal_init_
from s2f.models.face_encoder_config import FaceEncoderConfig
from s2f.runtime.preprocess.faces import preprocess

CALIBRATION_SEED = 1_000_003  # never a corpus seed in practice; its faces are used only here


@torch.no_grad()
def synthetic_face_encoder(seed: int = 0, calibration_faces: int = 32) -> FaceEncoder:
    """serengil VGG-Face (with fc8, for distillation): He-normal weights, calibrated fc biases."""
    model = he_normal_init_(build_face_encoder(FaceEncoderConfig.for_arch("serengil", include_top=True)), seed)
    faces = [draw_face(Identity.draw(CALIBRATION_SEED, i), 224, np.random.default_rng([CALIBRATION_SEED, i]))[0]
             for i in range(calibration_faces)]
    x = model.forward_features(torch.from_numpy(preprocess(faces, model.config.preprocessing)))
    for layer in (model.fc6, model.fc7):
        pre = layer(x)
        layer.bias -= pre.flatten(1).median(dim=0).values
        x = torch.relu(layer(x))
    return model.eval()
