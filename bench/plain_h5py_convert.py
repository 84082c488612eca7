"""The straightforward converter a user would write, as the second baseline of
``bench/convert_speed.py``: h5py reads each Keras array whole, numpy transposes it to PyTorch's
layout, and ``safetensors.numpy.save_file`` writes the dict. Same tensor mapping as
``s2f convert`` (``s2f.converters.vggface.plan_conversion``), so only the I/O differs.

usage: python bench/plain_h5py_convert.py SOURCE.h5 OUTPUT.safetensors
"""

from __future__ import annotations

import sys

import numpy as np
from safetensors.numpy import save_file

from s2f.converters.keras_h5 import KerasWeightsFile
from s2f.converters.vggface import detect_architecture, plan_conversion
from s2f.models.face_encoder_config import FaceEncoderConfig


def to_torch_layout(array: np.ndarray, layout: str, flatten_channels: int) -> np.ndarray:
    if layout == "conv":  # HWIO -> OIHW
        return np.ascontiguousarray(array.transpose(3, 2, 0, 1))
    if layout == "dense":  # (in, out) -> (out, in)
        return np.ascontiguousarray(array.T)
    if layout == "dense-hwc":  # rows in H, W, C order -> C, H, W, then (out, in)
        rows, out = array.shape
        side = int(round((rows // flatten_channels) ** 0.5))
        chw = array.reshape(side, side, flatten_channels, out).transpose(2, 0, 1, 3).reshape(rows, out)
        return np.ascontiguousarray(chw.T)
    return np.ascontiguousarray(array)


def main(source: str, output: str) -> None:
    with KerasWeightsFile(source) as kfile:
        detected = detect_architecture(kfile)
        plan = plan_conversion(kfile, FaceEncoderConfig.for_arch(detected.arch, detected.include_top))
        tensors = {spec.torch_key: to_torch_layout(weight.dataset[()], spec.layout, spec.flatten_channels)
                   for spec, weight in plan}
    save_file(tensors, output, metadata={"format": "pt", "arch": detected.arch})


if __name__ == "__main__":
    main(*sys.argv[1:3])
