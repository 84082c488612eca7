"""``s2f.runtime.preprocess.faces.preprocess`` reproduces each upstream's own preprocessing code."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support.helpers import SAMPLE_FACE

from s2f.models.face_encoder_config import FaceEncoderConfig
from s2f.runtime.preprocess.faces import preprocess, resize_bilinear_like_opencv

FACE = SAMPLE_FACE


def _face() -> np.ndarray:
    return np.asarray(Image.open(FACE).convert("RGB"))


def test_deepface_convention_matches_deepface():
    """deepface: BGR crop -> resize_image (cv2 bilinear, black letterbox) -> /255."""
    from deepface.modules.preprocessing import resize_image

    rgb = _face()
    theirs = resize_image(np.ascontiguousarray(rgb[:, :, ::-1]), (224, 224))[0]  # HWC, BGR, [0,1]
    ours = preprocess(rgb, "deepface-base")[0].transpose(1, 2, 0)
    assert ours.shape == theirs.shape == (224, 224, 3)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours[:, :15], 0.0)  # 190x220 photo: black bars left and right


@pytest.mark.parametrize("shape", [(50, 80), (224, 224), (400, 300), (7, 9), (1, 5), (123, 457), (640, 480)])
def test_bilinear_resize_is_bit_exact_with_opencv(shape):
    import cv2

    image = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for size in [(224, 224), (193, 224), (31, 17), (224, 97), (1, 1)]:
        np.testing.assert_array_equal(resize_bilinear_like_opencv(image, *size), cv2.resize(image, size))


@pytest.mark.parametrize("arch,version", [("rcmalli-vgg16", 1), ("rcmalli-resnet50", 2), ("rcmalli-senet50", 2)])
def test_keras_vggface_convention_is_exact(arch, version):
    """keras-vggface README: load_img(target_size=(224, 224)) then preprocess_input(version)."""
    import tf_keras

    from s2f.converters.keras_reference import _import_keras_vggface

    _import_keras_vggface()
    from keras_vggface.utils import preprocess_input

    image = tf_keras.utils.load_img(FACE, target_size=(224, 224))
    theirs = preprocess_input(tf_keras.utils.img_to_array(image)[None], data_format="channels_last",
                              version=version)[0]
    ours = preprocess(_face(), FaceEncoderConfig.for_arch(arch).preprocessing)[0].transpose(1, 2, 0)
    np.testing.assert_array_equal(ours, theirs)


def test_batch_forms_and_errors():
    face = _face()
    single = preprocess(face, "deepface-base")
    assert single.shape == (1, 3, 224, 224) and single.dtype == np.float32
    assert preprocess([face, face[:100]], "keras-vggface-v1").shape == (2, 3, 224, 224)
    with pytest.raises(ValueError, match="uint8 RGB"):
        preprocess(face.astype(np.float32), "deepface-base")
    with pytest.raises(ValueError, match="unknown face preprocessing"):
        preprocess(face, "facenet")
