"""Result pictures: rows of faces side by side with column titles, as one PNG. numpy + PIL
only, so the torch-free runtime draws the same grid training does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from s2f.core.atomic import atomic_output

TITLE_HEIGHT = 18
GAP = 4


def as_uint8_image(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8, or 3xHxW / HxWx3 floats in [0, 1] -> HxWx3 uint8."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[2] != 3:
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = np.clip(np.rint(np.nan_to_num(array.astype(np.float32)) * 255), 0, 255).astype(np.uint8)
    return array


def face_grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], size: int = 112) -> Image.Image:
    """One row per person, one column per title (e.g. original | face->face | speech->face)."""
    columns = len(titles)
    width = columns * size + (columns + 1) * GAP
    height = TITLE_HEIGHT + len(rows) * (size + GAP) + GAP
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(titles):
        draw.text((GAP + c * (size + GAP) + 2, 3), title, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        if len(row) != columns:
            raise ValueError(f"row {r} has {len(row)} images for {columns} titles")
        for c, image in enumerate(row):
            tile = Image.fromarray(as_uint8_image(image)).resize((size, size), Image.BILINEAR)
            canvas.paste(tile, (GAP + c * (size + GAP), TITLE_HEIGHT + GAP + r * (size + GAP)))
    return canvas


def save_face_grid(path: str | Path, rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str],
                   size: int = 112) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "wb") as handle:
        face_grid(rows, titles, size).save(handle, format="PNG")
    return path
