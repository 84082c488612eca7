"""The original Speech-to-Face way of converting deepface's VGG-Face, for comparison only:
import TensorFlow, build the Keras model, ``load_weights``, copy every kernel into a PyTorch
module, ``torch.save`` the state dict. (Re-implemented here; same steps, same libraries.)

usage: python bench/original_convert.py INPUT.h5 OUTPUT.pth
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(source: str, output: str) -> None:
    import numpy as np
    import torch
    from deepface.models.facial_recognition.tf.VGGFace import base_model

    from s2f.models.face_encoder import build_face_encoder
    from s2f.models.face_encoder_config import FaceEncoderConfig

    keras_model = base_model()
    keras_model.load_weights(source)
    torch_model = build_face_encoder(FaceEncoderConfig.for_arch("serengil"))
    convs = [m for m in torch_model.modules() if isinstance(m, torch.nn.Conv2d)]
    keras_convs = [layer for layer in keras_model.layers if layer.weights]
    for conv, layer in zip(convs, keras_convs, strict=True):
        kernel, bias = layer.get_weights()
        conv.weight.data = torch.from_numpy(np.transpose(kernel, (3, 2, 0, 1)).copy())
        conv.bias.data = torch.from_numpy(bias)
    torch.save(torch_model.state_dict(), output)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
