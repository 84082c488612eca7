"""The warping decoder (Cole et al. 2017): the thin-plate spline moves landmarks where they
should go, preprocessing writes aligned textures in the mean face's frame, the decoder
trains with it, and it exports to standard ONNX operators that onnxruntime runs within a
level of PyTorch (the Node.js test runs such a bundle in ``test_end_to_end.py``)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from support.helpers import mean_face_landmarks, warping_decoder

from s2f.models.landmark_warp import LandmarkWarp, spline_flow_matrix


def _dots(points: np.ndarray, size: int = 224, radius: float = 2.5) -> torch.Tensor:
    """1 x 1 x size x size: a bright Gaussian dot at each point."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    image = np.zeros((size, size))
    for x, y in points:
        image += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * radius ** 2))
    return torch.from_numpy(image).float()[None, None]


def _centroid(image: torch.Tensor, near: np.ndarray, window: int = 6) -> np.ndarray:
    x0, y0 = (int(round(v)) for v in near)
    patch = image[0, 0, y0 - window:y0 + window + 1, x0 - window:x0 + window + 1].double().numpy()
    ys, xs = np.mgrid[y0 - window:y0 + window + 1, x0 - window:x0 + window + 1]
    return np.array([(patch * xs).sum(), (patch * ys).sum()]) / patch.sum()


def _spread_points(count: int = 9) -> np.ndarray:
    """Landmarks far enough apart that each dot can be located alone."""
    axis = np.linspace(60, 164, 3)
    return np.array([(x, y) for y in axis for x in axis])[:count]


def test_warp_moves_the_mean_landmarks_to_the_predicted_ones():
    anchors = _spread_points()
    warp = LandmarkWarp(anchors, 224, grid=56)
    texture = _dots(anchors)
    rng = np.random.default_rng(0)
    targets = anchors + rng.uniform(-6, 6, anchors.shape)
    moved = warp.to_landmarks(texture, torch.from_numpy(targets).float()[None])
    errors = [np.linalg.norm(_centroid(moved, t) - t) for t in targets]
    assert max(errors) < 0.8, errors  # first order in the displacement: well under a pixel at 6 px moves
    still = [np.linalg.norm(_centroid(moved, a) - a) for a in anchors]
    assert min(still) > 2.0  # the dots really left the mean positions
    # no displacement: the identity, to float rounding
    same = warp.to_landmarks(texture, torch.from_numpy(anchors).float()[None])
    assert torch.abs(same - texture).max() < 1e-4


def test_align_puts_each_photo_landmark_on_the_mean_one():
    anchors = _spread_points()
    rng = np.random.default_rng(1)
    own = anchors + rng.uniform(-8, 8, anchors.shape)  # the photo's landmarks
    photo = _dots(own)
    aligned = LandmarkWarp(anchors, 224).align(photo, torch.from_numpy(own).float()[None])
    errors = [np.linalg.norm(_centroid(aligned, a) - a) for a in anchors]
    assert max(errors) < 0.6, errors  # interpolation at the spline centres (field solved on a 56-point grid)


def test_spline_field_is_a_constant_matrix_of_the_displacements():
    anchors = np.array(mean_face_landmarks()).reshape(-1, 2)  # 72 points, four of them repeated
    flow = spline_flow_matrix(anchors, 224, 28)
    assert flow.shape == (28 * 28, 72) and np.isfinite(flow).all()
    # a translation of every landmark moves the face's region by that translation
    shift = np.tile([[3.0, -2.0]], (72, 1))
    field = flow @ shift
    centre = np.array([14 * 28 + 14])
    assert np.allclose(field[centre], [3.0, -2.0], atol=0.3)
    corner = field[0]
    assert np.abs(corner).max() < 0.05  # the border stays put


def test_preprocess_faces_writes_aligned_textures_in_the_mean_frame(tmp_path):
    from s2f.data.align_faces import align_faces, read_mean_landmarks
    from s2f.data.jobs import save_array

    anchors = _spread_points()
    rng = np.random.default_rng(2)
    people = {}
    for name in ("a", "b", "c"):
        own = anchors + rng.uniform(-7, 7, anchors.shape)
        base = tmp_path / name / "images" / "0"
        photo = (np.repeat(_dots(own)[0, 0].numpy()[..., None], 3, axis=2) * 255).clip(0, 255).astype(np.uint8)
        save_array(base.with_name("0_target.npy"), photo)
        save_array(base.with_name("0_landmarks.npy"), own.astype(np.float32).reshape(-1))
        people[name] = own
    assert align_faces(tmp_path, train_identities=["a", "b"]) == 3
    mean = read_mean_landmarks(tmp_path).reshape(-1, 2)
    assert np.allclose(mean, (people["a"] + people["b"]) / 2, atol=1e-4)  # the training identities' mean only
    for name in people:
        aligned = np.load(tmp_path / name / "images" / "0_aligned.npy")
        assert aligned.shape == (224, 224, 3) and aligned.dtype == np.uint8
        image = torch.from_numpy(aligned[..., 0].astype(np.float32))[None, None]
        assert max(np.linalg.norm(_centroid(image, m) - m) for m in mean) < 0.7
    assert align_faces(tmp_path, train_identities=["a", "b"]) == 0  # same mean: nothing to redo
    assert align_faces(tmp_path) == 3  # another mean: all rewritten


@pytest.mark.slow
def test_warping_decoder_outputs_and_export_in_standard_operators(tmp_path):
    from s2f.export.onnx_export import export_onnx

    decoder = warping_decoder(embedding_dim=64)
    embedding = torch.randn(3, 64)
    with torch.no_grad():
        landmarks, face, aligned = decoder(embedding)
        expected = decoder.warp.to_landmarks(aligned, landmarks)
    assert face.shape == aligned.shape == (3, 3, 224, 224) and landmarks.shape == (3, 144)
    assert torch.equal(face, expected) and not torch.allclose(face, aligned, atol=1e-2)
    report = export_onnx(decoder, tmp_path / "decoder.onnx", portable=True)
    model = onnx.load(str(tmp_path / "decoder.onnx"), load_external_data=False)
    ops = {node.op_type for node in model.graph.node}
    assert {"GridSample", "MatMul"} <= ops and {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert [o.name for o in model.graph.output] == ["landmarks", "texture", "aligned_texture"]
    assert report.max_relative_error["texture"] * 255 < 0.5  # well within one 8-bit level


def test_warping_decoder_without_mean_landmarks_is_refused():
    from s2f.models.registry import MODELS

    with pytest.raises(ValueError, match="mean_landmarks"):
        MODELS["face_decoder"].build("tiny", warp=True)
