"""Skin and hair colour in CIELAB (runtime.evaluate.colour): the conversion against CIE's
published values, the regions landing on the skin and the hair a synthetic face was drawn
with, and the ΔE bookkeeping on faces whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from s2f.data.synth_face import draw_face
from s2f.data.synth_identity import Identity
from s2f.runtime.evaluate.colour import (
    colour_errors,
    delta_e,
    face_colours,
    identity_colours,
    region_masks,
    srgb_to_lab,
)


@pytest.mark.parametrize("rgb, lab", [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),  # D65 white
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),  # sRGB primaries (CIE 15, D65)
    ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
    ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
    ((0.5, 0.5, 0.5), (53.3889, 0.0, 0.0)),  # mid grey: on the neutral axis
])
def test_srgb_to_lab_matches_published_values(rgb, lab):
    assert np.allclose(srgb_to_lab(np.array(rgb)), lab, atol=2e-3)


def test_delta_e_is_euclidean_in_lab():
    assert delta_e([50, 10, -10], [53, 14, -10]) == pytest.approx(5.0)
    assert np.allclose(delta_e(np.zeros((4, 3)), np.ones((4, 3))), np.sqrt(3))


def _face(seed: int, index: int, light_seed: int = 0):
    identity = Identity.draw(seed, index)
    image, points = draw_face(identity, 224, np.random.default_rng([light_seed, index]))
    return identity, image, points


@pytest.mark.parametrize("index", range(6))
def test_regions_land_on_the_skin_and_the_hair_the_face_was_drawn_with(index):
    """Each region holds only the flat colour the painter used, under the photo's noise, and
    its mean is that colour scaled by the photo's lighting (one factor for every part)."""
    identity, image, points = _face(7, index)
    colours = face_colours(image, points)
    for region, drawn in (("skin", identity.skin_rgb), ("hair", identity.hair_rgb)):
        mask = region_masks(points, 224)[region]
        assert mask.sum() > 100, region
        pixels = image[mask].astype(float)
        assert pixels.std(axis=0).max() < 6, f"{region} region straddles another part of the face"
        light = pixels.mean() / drawn.mean()
        expected = srgb_to_lab(np.clip(drawn * light, 0, 255) / 255)
        assert delta_e(colours[region], expected) < 1.5, (region, colours[region], expected)


def test_skin_and_hair_regions_do_not_swap():
    """A pale-skinned, dark-haired face: the skin region is light, the hair region dark."""
    for index in range(40):
        identity, image, points = _face(3, index)
        if identity.skin_rgb.mean() > 180 and identity.hair_rgb.mean() < 60:
            break
    else:
        pytest.fail("no pale, dark-haired identity among 40")
    colours = face_colours(image, points)
    assert colours["skin"][0] > 70 > 30 > colours["hair"][0]


def test_face_colours_reads_the_decoders_float_layout_as_the_picture():
    _, image, points = _face(5, 1)
    as_texture = image.transpose(2, 0, 1).astype(np.float32) / 255.0
    for region, lab in face_colours(as_texture, points).items():
        assert np.allclose(lab, face_colours(image, points)[region], atol=1e-4)


def test_region_outside_the_image_is_nan_not_a_crash():
    _, _, points = _face(5, 2)
    colours = face_colours(np.full((224, 224, 3), 128, np.uint8), points - 1000)
    assert np.isnan(colours["skin"]).all() and np.isnan(colours["hair"]).all()


def test_colour_errors_are_zero_for_the_identitys_own_colour_and_grow_with_the_cast():
    rng = np.random.default_rng(0)
    real_faces = [{"skin": rng.normal([70, 15, 20], 5), "hair": rng.normal([30, 5, 10], 8)} for _ in range(6)]
    owner = np.array([0, 0, 1, 1, 2, 2])
    real = identity_colours(real_faces, owner, 3)
    assert np.allclose(real["skin"][1], (real_faces[2]["skin"] + real_faces[3]["skin"]) / 2)
    average = {region: real[region].mean(axis=0) for region in real}
    exact = [{region: real[region][i] for region in real} for i in (0, 1, 2)]
    result = colour_errors(real, exact, np.arange(3), average)
    assert result.error == {"skin": 0.0, "hair": 0.0}
    assert result.mean_face == pytest.approx(result.spread)  # the average is their own mean here
    cast = [{"skin": c["skin"] + [0, 0, 6], "hair": c["hair"] + [8, 0, 0]} for c in exact]
    shifted = colour_errors(real, cast, np.arange(3), average)
    assert shifted.error == pytest.approx({"skin": 6.0, "hair": 8.0})
    swapped = colour_errors(real, exact[::-1], np.arange(3), average)  # everyone gets another's colour
    assert swapped.error["skin"] > 0 and swapped.error["hair"] > 0
