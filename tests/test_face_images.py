"""load_face: every image mode and orientation to HxWx3 uint8 RGB; bad files refused cleanly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support.helpers import SAMPLE_FACE

from s2f.core.errors import InputError
from s2f.runtime.preprocess.images import load_face

FACE = SAMPLE_FACE


def test_jpeg_face():
    face = load_face(FACE)
    assert face.shape == (220, 190, 3) and face.dtype == np.uint8


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    face = load_face(path)
    assert face.shape == (40, 20, 3)
    assert face[2, 10, 2] > 200 and face[-3, 10, 0] > 200  # blue strip now on top


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16", "1"])
def test_modes_become_rgb(tmp_path, mode):
    base = Image.new("RGB", (32, 24), (200, 120, 40))
    if mode == "I;16":
        image = Image.fromarray(np.full((24, 32), 51400, dtype=np.uint16))  # 51400/65535 -> 200
        expected = (200, 200, 200)
    elif mode == "RGBA":
        image = base.convert("RGBA")
        image.putalpha(0)
        expected = (0, 0, 0)  # transparent -> black, as deepface pads
    else:
        image = base.convert(mode)
        expected = None  # whatever PIL decodes the saved file to
    suffix = ".jpg" if mode == "CMYK" else ".tiff" if mode == "I;16" else ".png"
    path = tmp_path / f"img{suffix}"
    image.save(path)
    if expected is None:
        with Image.open(path) as saved:
            expected = tuple(np.asarray(saved.convert("RGB"))[5, 5])
    face = load_face(path)
    assert face.shape == (24, 32, 3) and face.dtype == np.uint8
    assert np.abs(face[5, 5].astype(int) - np.array(expected)).max() <= 2


def test_truncated_image(tmp_path):
    path = tmp_path / "cut.jpg"
    data = FACE.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot decode image"):
        load_face(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (9000, 8000)).save(path)  # 72 M pixels in a few kB
    assert path.stat().st_size < 200_000
    with pytest.raises(InputError, match="decompression bomb"):
        load_face(path)


@pytest.mark.parametrize("content", [b"", b"GIF89a not really", b"\x00" * 100])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_face(path)
    assert str(path) in str(caught.value)
