"""A face encoder's input computed inside ONNX, from an RGB photo of any size.

The same conventions as ``s2f.runtime.preprocess.faces.preprocess`` (``FacePreprocessing``),
as standard ONNX operators on a uint8 ``[height, width, 3]`` image:

* ``letterbox-bilinear`` (deepface): the longer side scaled to 224 (sizes computed in double
  and truncated, as Python's ``int`` does), ``Resize`` linear with half-pixel centres (what
  OpenCV's ``INTER_LINEAR`` computes, in float instead of its 11-bit fixed point, so a pixel
  may differ by one level), rounded, then padded with black, centred;
* ``stretch-nearest`` (keras-vggface): PIL's nearest neighbour. Pillow's ``ImagingScaleAffine``
  starts at half a step and adds the step ``size_in / size_out`` once per pixel, so its
  rounding accumulates (pixel 17 of 640 -> 224 is source 49, not ``floor(17.5 * 640/224)`` =
  50); a sequential ``CumSum`` of the same steps reproduces it, and two ``Gather``s pick the
  pixels: bit-exact;
* then channel order, division and mean, channels first, a batch of one.
"""

from __future__ import annotations

import numpy as np

from s2f.export.onnx_builder import DOUBLE, FLOAT, INT64, GraphBuilder
from s2f.runtime.preprocess.faces import FacePreprocessing


def face_input(g: GraphBuilder, image: str, spec: FacePreprocessing) -> str:
    """``image`` (uint8 [height, width, 3] RGB) -> float32 [1, 3, size, size], as ``preprocess``."""
    pixels = g.op("Unsqueeze", g.op("Transpose", g.op("Cast", image, to=FLOAT), perm=[2, 0, 1]), g.ints(0))
    height_width = g.op("Shape", image, start=0, end=2)
    if spec.resize == "letterbox-bilinear":
        square = _letterbox(g, pixels, height_width, spec.size)
    elif spec.resize == "stretch-nearest":
        square = _stretch_nearest(g, pixels, height_width, spec.size)
    else:
        raise ValueError(f"no ONNX form of resize policy {spec.resize!r}")
    if spec.channel_order == "BGR":
        square = g.op("Gather", square, g.ints(2, 1, 0), axis=1)
    if spec.divide_by != 1.0:
        square = g.op("Div", square, g.scalar(spec.divide_by, np.float32))
    mean = np.asarray(spec.mean, np.float32).reshape(1, 3, 1, 1)
    return g.op("Sub", square, g.const(mean, np.float32))


def _letterbox(g: GraphBuilder, pixels: str, height_width: str, size: int) -> str:
    sides = g.op("Cast", height_width, to=DOUBLE)
    factor = g.op("ReduceMin", g.op("Div", g.scalar(float(size)), sides), keepdims=1)
    scaled = g.op("Cast", g.op("Floor", g.op("Mul", sides, factor)), to=INT64)
    scaled = g.op("Max", scaled, g.ints(1))  # a 1000x1 sliver still keeps one pixel
    sizes = g.op("Concat", g.ints(1, 3), scaled, axis=0)
    resized = g.op("Resize", pixels, "", "", sizes, mode="linear", coordinate_transformation_mode="half_pixel")
    resized = g.op("Clip", g.op("Round", resized), g.scalar(0.0, np.float32), g.scalar(255.0, np.float32))
    missing = g.op("Sub", g.ints(size, size), scaled)
    before = g.op("Div", missing, g.ints(2))
    after = g.op("Sub", missing, before)
    pads = g.op("Concat", g.ints(0, 0), before, g.ints(0, 0), after, axis=0)
    return g.op("Pad", resized, pads)


def _stretch_nearest(g: GraphBuilder, pixels: str, height_width: str, size: int) -> str:
    sides = g.op("Cast", height_width, to=DOUBLE)
    steps = g.const(np.r_[0.5, np.ones(size - 1)])  # Pillow starts half a step in, then adds a step per pixel
    for axis, side in ((2, 0), (3, 1)):
        length = g.op("Gather", sides, g.scalar(side, np.int64))
        step = g.op("Div", length, g.scalar(float(size)))
        positions = g.op("CumSum", g.op("Mul", steps, step), g.scalar(0, np.int64))
        source = g.op("Cast", g.op("Floor", positions), to=INT64)
        source = g.op("Min", source, g.op("Sub", g.op("Cast", length, to=INT64), g.scalar(1, np.int64)))
        pixels = g.op("Gather", pixels, source, axis=axis)
    return pixels
