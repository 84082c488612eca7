"""Draw a synthetic face from its identity, with its 68 landmarks known exactly.

The face is built from dlib's 68-point layout (jaw 0-16, brows 17-26, nose 27-35, eyes
36-47, mouth 48-67), so the ground-truth landmarks are the geometry that was drawn and the
decoder's landmark head learns the same quantity as on real data. Drawn at 2x and
downsampled for anti-aliasing.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from s2f.data.synth_identity import Identity

SUPERSAMPLE = 2


def _ellipse_points(cx: float, cy: float, rx: float, ry: float, angles: np.ndarray) -> np.ndarray:
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)


def face_landmarks(identity: Identity, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """68 x 2 pixel coordinates for one photo of ``identity`` (pose jitter included), plus
    the shape parameters the painter needs."""
    scale = size * rng.uniform(0.98, 1.02)
    cx = size / 2 + rng.uniform(-0.01, 0.01) * size
    cy = size * 0.53 + rng.uniform(-0.01, 0.01) * size
    half_w = identity.face_width * scale
    half_h = 0.36 * scale
    u = np.linspace(0, 1, 17)
    phi = np.pi * u
    jaw_x = cx - half_w * np.cos(phi) * (1 - (1 - identity.jaw) * np.sin(phi) ** 2)
    jaw_y = cy - 0.12 * half_h + 1.12 * half_h * np.sin(phi)
    jaw = np.stack([jaw_x, jaw_y], axis=1)
    eye_y = cy - 0.24 * half_h
    eye_dx = identity.eye_spacing * half_w
    eye_rx, eye_ry = 0.17 * half_w, 0.07 * half_h
    brows = []
    for side in (-1, 1):
        xs = cx + side * np.linspace(0.15, 0.72, 5) * half_w
        if side == -1:
            xs = xs[::-1]
        ys = eye_y - 0.17 * half_h - 0.05 * half_h * np.sin(np.linspace(0, np.pi, 5))
        brows.append(np.stack([xs, ys], axis=1))
    bridge = np.stack([np.full(4, cx), np.linspace(cy - 0.22 * half_h, cy + 0.12 * half_h, 4)], axis=1)
    nose_w = 0.22 * half_w
    tip = np.stack([cx + np.linspace(-1, 1, 5) * nose_w, cy + 0.2 * half_h + 0.03 * half_h * np.cos(
        np.linspace(-np.pi / 2, np.pi / 2, 5))], axis=1)
    eye_angles = np.pi + np.arange(6) * np.pi / 3  # dlib: outer corner, two upper, inner corner, two lower
    eyes = [_ellipse_points(cx - eye_dx, eye_y, eye_rx, eye_ry, eye_angles),
            _ellipse_points(cx + eye_dx, eye_y, eye_rx, eye_ry, -eye_angles[[3, 2, 1, 0, 5, 4]] + np.pi)]
    mouth_y = cy + 0.5 * half_h
    mouth_w = (0.36 + 0.06 * identity.jaw) * half_w
    outer = _ellipse_points(cx, mouth_y, mouth_w, 0.11 * half_h, np.pi + np.arange(12) * np.pi / 6)
    inner = _ellipse_points(cx, mouth_y, 0.75 * mouth_w, 0.03 * half_h, np.pi + np.arange(8) * np.pi / 4)
    points = np.concatenate([jaw, *brows, bridge, tip, *eyes, outer, inner]).astype(np.float32)
    return points, {"cx": cx, "cy": cy, "half_w": half_w, "half_h": half_h, "eye_r": (eye_rx, eye_ry)}


def draw_face(identity: Identity, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(size x size x 3 uint8 image, 68 x 2 float32 landmarks) of one photo."""
    points, shape = face_landmarks(identity, size, rng)
    s = SUPERSAMPLE
    background = tuple(int(c) for c in rng.integers(120, 136, 3))
    canvas = Image.new("RGB", (size * s, size * s), background)
    draw = ImageDraw.Draw(canvas)
    light = rng.uniform(0.9, 1.1)
    skin = tuple(int(c) for c in np.clip(identity.skin_rgb * light, 0, 255))
    hair = tuple(int(c) for c in np.clip(identity.hair_rgb * light, 0, 255))
    lips = tuple(int(c) for c in np.clip(identity.skin_rgb * light * np.array([0.85, 0.55, 0.55]), 0, 255))
    cx, cy, half_w, half_h = shape["cx"], shape["cy"], shape["half_w"], shape["half_h"]

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * s, y0 * s, x1 * s, y1 * s]

    # hair behind the head, longer hair reaching further down
    top = cy - 1.25 * half_h
    draw.ellipse(box(cx - 1.12 * half_w, top, cx + 1.12 * half_w, cy + (identity.hair_length * 2 - 0.2) * half_h),
                 fill=hair)
    # head: forehead arc over the temples, jaw below
    forehead = _ellipse_points(cx, points[0, 1], half_w, 1.02 * half_h, np.linspace(np.pi, 2 * np.pi, 24))
    draw.polygon([(x * s, y * s) for x, y in np.concatenate([points[:17], forehead[::-1][1:-1]])], fill=skin)
    # fringe
    draw.chord(box(cx - 1.02 * half_w, top + 0.1 * half_h, cx + 1.02 * half_w, cy - 0.15 * half_h), 180, 360,
               fill=hair)
    width = max(1, int(0.04 * half_h * s))
    for brow in (points[17:22], points[22:27]):
        draw.line([(x * s, y * s) for x, y in brow], fill=hair, width=width)
    draw.line([(x * s, y * s) for x, y in points[27:31]], fill=tuple(int(c * 0.8) for c in skin), width=width // 2 + 1)
    for x, y in points[[32, 34]]:
        r = 0.03 * half_w
        draw.ellipse(box(x - r, y - r, x + r, y + r), fill=tuple(int(c * 0.5) for c in skin))
    iris = tuple(int(c) for c in rng.integers(30, 110, 3))
    for eye in (points[36:42], points[42:48]):
        draw.polygon([(x * s, y * s) for x, y in eye], fill=(245, 245, 240))
        ex, ey = eye.mean(axis=0)
        r = shape["eye_r"][1] * 0.95
        draw.ellipse(box(ex - r, ey - r, ex + r, ey + r), fill=iris)
    draw.polygon([(x * s, y * s) for x, y in points[48:60]], fill=lips)
    draw.polygon([(x * s, y * s) for x, y in points[60:68]], fill=tuple(int(c * 0.4) for c in lips))
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=0.6 * s)).resize((size, size), Image.LANCZOS)
    image = np.asarray(canvas).astype(np.float32)
    image += rng.normal(0, 3.0, image.shape)  # sensor noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), points
