"""Turn RGB face images into exactly the tensor each upstream face encoder was fed.

The conventions differ per upstream and silently wreck embeddings when mixed up, so they are
data here (``FACE_PREPROCESSING``), next to the weights they belong to:

* serengil/deepface VGG-Face: BGR, divided by 255, resized keeping the aspect ratio with
  OpenCV's bilinear interpolation (reproduced bit for bit in numpy) and padded with black
  to 224x224 (deepface's ``resize_image`` with its default "base" normalisation).
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

# by name; each face-encoder architecture names its own (``s2f.models.face_encoder_config``)
FACE_PREPROCESSING: dict[str, FacePreprocessing] = {spec.name: spec for spec in (
    FacePreprocessing(name="deepface-base", resize="letterbox-bilinear", channel_order="BGR",
                      divide_by=255.0, mean=(0.0, 0.0, 0.0)),
    FacePreprocessing(name="keras-vggface-v1", resize="stretch-nearest", channel_order="BGR",
                      divide_by=1.0, mean=(93.5940, 104.7624, 129.1863)),
    _KERAS_VGGFACE_V2,
)}


def _source_positions(dst: int, src: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's sample positions: half-pixel centres, computed in double, kept in float32."""
    pos = ((np.arange(dst) + 0.5) * (1.0 / (dst / src)) - 0.5).astype(np.float32)
    index = np.floor(pos).astype(np.int64)
    return index, (pos - index.astype(np.float32)).astype(np.float32)


def _fixed_point(fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two 11-bit weights, each rounded on its own as OpenCV does."""
    scale = np.float32(1 << 11)
    return (np.rint((np.float32(1) - fraction) * scale).astype(np.int64),
            np.rint(fraction * scale).astype(np.int64))


def resize_bilinear_like_opencv(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(image, (width, height))`` (``INTER_LINEAR``, uint8), bit for bit, without
    OpenCV: 11-bit fixed-point weights, a horizontal pass that clamps at the borders, and
    the vertical pass of OpenCV's vectorised kernel (which does not clamp its weights, only
    the rows, and drops 4 + 16 bits before rounding). deepface feeds its crops through
    exactly this, so matching it bit for bit keeps our embeddings identical to deepface's.
    """
    src_h, src_w = image.shape[:2]
    sx, fx = _source_positions(width, src_w)
    fx[sx < 0], sx[sx < 0] = 0, 0
    right = sx >= src_w - 1
    fx[right], sx[right] = 0, src_w - 1
    a0, a1 = _fixed_point(fx)
    sy, fy = _source_positions(height, src_h)
    top_rows, bottom_rows = np.clip(sy, 0, src_h - 1), np.clip(sy + 1, 0, src_h - 1)
    # only the source rows the output reads, widened to int64: a 2400x2400 photo shrunk to 224
    # reads 448 of its rows, so the wide copy is a fifth of the image instead of 8x its size
    used, where = np.unique(np.concatenate([top_rows, bottom_rows]), return_inverse=True)
    pixels = image[used].astype(np.int64)
    rows = pixels[:, sx] * a0[None, :, None] + pixels[:, np.minimum(sx + 1, src_w - 1)] * a1[None, :, None]
    rows[:, right] = pixels[:, sx[right]] << 11
    b0, b1 = (w[:, None, None] for w in _fixed_point(fy))
    top, bottom = rows[where[:height]], rows[where[height:]]
    out = (((b0 * (top >> 4)) >> 16) + ((b1 * (bottom >> 4)) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


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


def as_rgb_uint8(image: np.ndarray, index: int = 0) -> np.ndarray:
    """``image`` checked to be an HxWx3 uint8 array (``index``: its place in a batch, for the message)."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f"image {index}: expected an HxWx3 uint8 RGB array, got {array.dtype} {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image {index}: empty image {array.shape}")
    return array


def preprocess(images: np.ndarray | Sequence[np.ndarray], spec: FacePreprocessing | str) -> np.ndarray:
    """RGB uint8 images of any size -> N x 3 x 224 x 224 float32, the exact values the Keras
    model receives, channels first. ``spec`` is the model's convention (a face encoder
    config's ``preprocessing``, a bundle's ``face_input``) or its name.

    ``images`` is one HxWx3 array, an NxHxWx3 array or a sequence of HxWx3 arrays.
    """
    if isinstance(spec, str):
        try:
            spec = FACE_PREPROCESSING[spec]
        except KeyError:
            raise ValueError(f"unknown face preprocessing {spec!r}; known: {', '.join(FACE_PREPROCESSING)}") from None
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    resize = _RESIZERS[spec.resize]
    batch = np.empty((len(images), 3, spec.size, spec.size), dtype=np.float32)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    for index, image in enumerate(images):
        rgb = resize(as_rgb_uint8(image, index), spec.size)
        ordered = rgb[:, :, ::-1] if spec.channel_order == "BGR" else rgb
        chw = ordered.transpose(2, 0, 1).astype(np.float32)
        if spec.divide_by != 1.0:
            chw = chw / np.float32(spec.divide_by)
        batch[index] = chw - mean
    return batch


def decoder_target(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """The face decoder's training target and the "original" picture of result grids:
    HxWx3 uint8 -> size x size x 3 uint8, stretched with PIL's (antialiased) bilinear filter,
    which is what the original's ``transforms.Resize((224, 224))`` did to its PIL images.
    Landmarks are detected on this same image, so their pixel coordinates are in its frame."""
    array = as_rgb_uint8(image, 0)
    if array.shape[:2] == (size, size):
        return np.ascontiguousarray(array)
    return np.asarray(Image.fromarray(array).resize((size, size), Image.BILINEAR))
