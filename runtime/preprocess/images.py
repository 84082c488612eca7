"""Load face photos as HxWx3 uint8 RGB, whatever the file: EXIF orientation applied,
grayscale / palette / alpha / CMYK / 16-bit converted, decompression bombs refused
before any pixel is decoded."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from s2f.core.errors import InputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MAX_PIXELS = 64_000_000  # ~8000 x 8000; far above any face crop, far below a bomb


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) <= 65535 else float(values.max())
        gray = np.clip(np.rint(values / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        scale = 255.0 if values.max(initial=0) <= 1.0 else 1.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def load_face(source: str | Path | BinaryIO, max_pixels: int = MAX_PIXELS, name: str | None = None) -> np.ndarray:
    """HxWx3 uint8 RGB with EXIF orientation applied, from a path or an open binary file
    (named ``name`` in errors).

    Transparent pixels become black (the colour deepface pads with). Images of more than
    ``max_pixels`` are refused from their header alone, so a decompression bomb costs nothing.
    """
    if isinstance(source, str | Path):
        path = source = Path(source)
        if not path.is_file():
            raise InputError(path, "file not found" if not path.exists() else "not a regular file")
    else:
        path = Path(name or getattr(source, "name", None) or "the upload")
    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise InputError(path, f"image is {width}x{height} = {width * height:,} pixels, over the "
                                       f"{max_pixels:,} limit (decompression bomb?)")
            if width == 0 or height == 0:
                raise InputError(path, f"image has no pixels ({width}x{height})")
            image.load()
            oriented = ImageOps.exif_transpose(image)
            return _to_rgb(oriented)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(path, "not an image PIL can read") from None
    except Image.DecompressionBombError as err:
        raise InputError(path, f"refused: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(path, f"cannot decode image ({err})") from None
