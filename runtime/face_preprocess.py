"""Turn RGB face images into exactly the tensor each upstream face encoder was fed.

The conventions differ per upstream and silently wreck embeddings when mixed up, so they are
data here (``FACE_PREPROCESSING``), next to the weights they belong to:

* serengil/deepface VGG-Face: BGR, divided by 255, resized keeping the aspect ratio with
  OpenCV-style bilinear interpolation and padded with black to 224x224 (deepface's
  ``resize_image`` with its default "base" normalisation).
* rcmalli/keras-vggface: ``keras.preprocessing.image.load_img(target_size=(224, 224))``
  (a plain stretch with PIL's nearest neighbour, Keras' default), then ``preprocess_input``:
  BGR, 0-255, minus the per-channel means of version 1 (VGG16) or version 2 (ResNet50,
  SENet50).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

INPUT_SIZE = 224


@dataclass(frozen=True)
class FacePreprocessing:
    """How one upstream model expects its input; fields in the order they are applied."""

    name: str
    resize: str  # "letterbox-bilinear" (deepface) or "stretch-nearest" (keras load_img)
    channel_order: str  # order of the model's input channels
    divide_by: float  # pixel values are divided by this first (255 or 1)
    mean: tuple[float, float, float]  # then this is subtracted, in channel_order
    size: int = INPUT_SIZE


_KERAS_VGGFACE_V2 = FacePreprocessing(  # VGGFace2 models: ResNet50 and SENet50
    name="keras-vggface-v2", resize="stretch-nearest", channel_order="BGR",
    divide_by=1.0, mean=(91.4953, 103.8827, 131.0912),
)

FACE_PREPROCESSING: dict[str, FacePreprocessing] = {
    "serengil": FacePreprocessing(
        name="deepface-base", resize="letterbox-bilinear", channel_order="BGR",
        divide_by=255.0, mean=(0.0, 0.0, 0.0),
    ),
    "rcmalli-vgg16": FacePreprocessing(
        name="keras-vggface-v1", resize="stretch-nearest", channel_order="BGR",
        divide_by=1.0, mean=(93.5940, 104.7624, 129.1863),
    ),
    "rcmalli-resnet50": _KERAS_VGGFACE_V2,
    "rcmalli-senet50": _KERAS_VGGFACE_V2,
}


def resize_bilinear_like_opencv(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize with OpenCV's ``INTER_LINEAR`` geometry (half-pixel centres, edge
    clamping, no antialiasing), so deepface's crops are reproduced without an OpenCV
    dependency. OpenCV rounds through 11-bit fixed point; this rounds once, in float, so
    results differ from ``cv2.resize`` by at most one grey level.
    """
    src_h, src_w = image.shape[:2]

    def axis_weights(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
        low = np.floor(pos)
        frac = pos - low
        low = low.astype(np.int64)
        frac[low < 0] = 0.0
        low = np.clip(low, 0, src - 1)
        high = np.minimum(low + 1, src - 1)
        frac[low >= src - 1] = 0.0
        return low, high, frac

    y0, y1, fy = axis_weights(height, src_h)
    x0, x1, fx = axis_weights(width, src_w)
    img = image.astype(np.float64)
    top = img[y0] * (1.0 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    out = top[:, x0] * (1.0 - fx)[None, :, None] + top[:, x1] * fx[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """deepface's ``resize_image``: scale the longer side to ``size``, pad with black."""
    factor = min(size / image.shape[0], size / image.shape[1])
    new_w, new_h = int(image.shape[1] * factor), int(image.shape[0] * factor)
    resized = resize_bilinear_like_opencv(image, new_w, new_h)
    pad_h, pad_w = size - resized.shape[0], size - resized.shape[1]
    padded = np.pad(
        resized,
        ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)),
        mode="constant",
    )
    if padded.shape[:2] != (size, size):
        padded = resize_bilinear_like_opencv(padded, size, size)
    return padded


def stretch_nearest(image: np.ndarray, size: int) -> np.ndarray:
    """Keras ``load_img(target_size=...)``: PIL resize with nearest neighbour, no aspect."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.NEAREST))


_RESIZERS = {"letterbox-bilinear": letterbox, "stretch-nearest": stretch_nearest}


def _as_rgb_uint8(image: np.ndarray, index: int) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f"image {index}: expected an HxWx3 uint8 RGB array, got {array.dtype} {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image {index}: empty image {array.shape}")
    return array


def preprocess(images: np.ndarray | Sequence[np.ndarray], arch: str) -> np.ndarray:
    """RGB uint8 images of any size -> N x 3 x 224 x 224 float32, the exact values the Keras
    model of ``arch`` receives, channels first.

    ``images`` is one HxWx3 array, an NxHxWx3 array or a sequence of HxWx3 arrays.
    """
    try:
        spec = FACE_PREPROCESSING[arch]
    except KeyError:
        raise ValueError(
            f"unknown face encoder {arch!r}; known: {', '.join(FACE_PREPROCESSING)}"
        ) from None
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    resize = _RESIZERS[spec.resize]
    batch = np.empty((len(images), 3, spec.size, spec.size), dtype=np.float32)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    for index, image in enumerate(images):
        rgb = resize(_as_rgb_uint8(image, index), spec.size)
        ordered = rgb[:, :, ::-1] if spec.channel_order == "BGR" else rgb
        chw = ordered.transpose(2, 0, 1).astype(np.float32)
        if spec.divide_by != 1.0:
            chw = chw / np.float32(spec.divide_by)
        batch[index] = chw - mean
    return batch
