"""Colour of a face where people differ: mean skin and hair colour in CIELAB, and their
distance (ΔE) between a generated face and its identity's real faces.

An L1 over RGB pixels hardly sees a colour cast (olive skin for pink costs a few grey levels
per channel), and a face-recognition judge is built to ignore colour, so neither can tell
whether a decoder kept a person's complexion and hair. CIELAB is the space where a Euclidean
distance follows perceived difference (ΔE*ab, CIE 1976: about 2.3 is a just noticeable
difference), so the error is measured there.

The regions come from the 68 dlib landmarks of each image (the real photo's own, the
generated face's predicted ones), scaled by the brow-to-chin height, so the same places are
compared whatever the pose or the face's size:

* skin: two cheek disks, halfway between the jaw (points 2, 14) and the nose wings (31, 35);
* hair: one disk on the centre line above the brows, 0.3 brow-to-chin heights up. On the
  synthetic corpus that is the fringe; on a real photo with a high hairline it is the top of
  the forehead, so the hair figure is meant for the synthetic corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# sRGB (IEC 61966-2-1) to CIE XYZ under D65, and the D65 white point
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]])
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_DELTA = 6 / 29

REGION_RADIUS = 0.08  # disk radius, in brow-to-chin heights
HAIR_RISE = 0.3  # hair disk centre above the brows' midpoint, in brow-to-chin heights
REGIONS = ("skin", "hair")


def srgb_to_lab(rgb, xp=np):
    """... x 3 sRGB in [0, 1] -> ... x 3 CIELAB (L in 0..100), D65. ``xp`` is the array
    module: numpy (float64, the measurement) or torch (the decoder's colour loss, which
    differentiates it); the cube root's argument is clipped at the curve's knee, where the
    linear segment takes over, so its gradient stays finite at black."""
    if xp is np:
        rgb = np.asarray(rgb, np.float64)
    matrix = xp.asarray(_SRGB_TO_XYZ.T / _D65_WHITE[None], dtype=rgb.dtype) if xp is np else \
        xp.as_tensor(_SRGB_TO_XYZ.T / _D65_WHITE[None], dtype=rgb.dtype, device=rgb.device)
    linear = xp.where(rgb <= 0.04045, rgb / 12.92, ((xp.clip(rgb, 0.04045, None) + 0.055) / 1.055) ** 2.4)
    xyz = linear @ matrix
    f = xp.where(xyz > _DELTA ** 3, xp.clip(xyz, _DELTA ** 3, None) ** (1 / 3), xyz / (3 * _DELTA ** 2) + 4 / 29)
    x, y, z = f[..., 0], f[..., 1], f[..., 2]
    return xp.stack([116 * y - 16, 500 * (x - y), 200 * (y - z)], -1)


def delta_e(lab_a: np.ndarray, lab_b: np.ndarray) -> np.ndarray:
    """ΔE*ab (CIE 1976): the Euclidean distance in CIELAB, over the last axis."""
    return np.linalg.norm(np.asarray(lab_a, np.float64) - np.asarray(lab_b, np.float64), axis=-1)


def region_masks(landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """size x size boolean masks of the skin and hair regions of a face with these landmarks
    (at least dlib's 68 points, pixels, x then y)."""
    points = np.asarray(landmarks, np.float64).reshape(-1, 2)
    if len(points) < 68:
        raise ValueError(f"colour regions need dlib's 68 landmarks, got {len(points)}")
    brows = points[17:27].mean(axis=0)
    height = float(np.linalg.norm(points[8] - brows))
    radius = REGION_RADIUS * height
    centres = {"skin": [(points[2] + points[31]) / 2, (points[14] + points[35]) / 2],
               "hair": [brows + HAIR_RISE * (brows - points[8])]}
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    masks = {}
    for region, points_of in centres.items():
        mask = np.zeros((size, size), bool)
        for x, y in points_of:
            mask |= (xs - x) ** 2 + (ys - y) ** 2 <= radius ** 2
        masks[region] = mask
    return masks


def face_colours(image: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Mean CIELAB colour of each region of one face (H x W x 3 uint8, or 3 x H x W float
    in [0, 1] as the decoder writes it). A region that falls outside the image is NaN."""
    image = np.asarray(image)
    rgb = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else np.asarray(image, np.float64)
    if rgb.shape[0] == 3 and rgb.shape[-1] != 3:
        rgb = rgb.transpose(1, 2, 0)
    lab = srgb_to_lab(rgb)
    colours = {}
    for region, mask in region_masks(landmarks, rgb.shape[0]).items():
        colours[region] = lab[mask].mean(axis=0) if mask.any() else np.full(3, np.nan)
    return colours


@dataclass
class ColourErrors:
    """ΔE of generated faces against their identities' real colours, per region: the mean
    over identities (``error``), beside two references from the real faces themselves:
    ``mean_face`` (answering the average person's colour) and ``spread`` (how far the real
    identities lie from their own average: the scale of the differences between people)."""

    error: dict[str, float]
    mean_face: dict[str, float]
    spread: dict[str, float]
    identities: int

    def as_dict(self) -> dict:
        return {"delta_e": self.error, "mean_face_delta_e": self.mean_face, "real_spread_delta_e": self.spread,
                "identities": self.identities}


def identity_colours(colours: list[dict[str, np.ndarray]], owner: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """count x 3 mean CIELAB colour per identity and region, from per-face colours and their
    identity indices (``owner``)."""
    owner = np.asarray(owner)
    out = {}
    for region in REGIONS:
        values = np.stack([c[region] for c in colours])
        out[region] = np.stack([np.nanmean(values[owner == i], axis=0) for i in range(count)])
    return out


def colour_errors(real: dict[str, np.ndarray], generated: list[dict[str, np.ndarray]], owner: np.ndarray,
                  mean_face: dict[str, np.ndarray]) -> ColourErrors:
    """``real``: per region, identities x 3 (``identity_colours`` of the real faces);
    ``generated``: the colours of each generated face and ``owner``, whose identity it is;
    ``mean_face``: the colours of the mean training face. Per-identity ΔE is the mean over
    its generated faces; the figure is the mean over identities."""
    owner = np.asarray(owner)
    count = len(next(iter(real.values())))
    error, mean, spread = {}, {}, {}
    for region in REGIONS:
        values = np.stack([c[region] for c in generated])
        per_face = delta_e(values, real[region][owner])
        per_identity = np.array([np.nanmean(per_face[owner == i]) for i in range(count) if (owner == i).any()])
        error[region] = float(np.nanmean(per_identity))
        mean[region] = float(np.nanmean(delta_e(real[region], mean_face[region][None])))
        spread[region] = float(np.nanmean(delta_e(real[region], np.nanmean(real[region], axis=0)[None])))
    return ColourErrors(error, mean, spread, count)
