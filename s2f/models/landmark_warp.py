"""The differentiable landmark warp of Cole et al. (2017): a texture drawn in the mean face's
frame, moved so that its mean landmarks land on other landmarks.

The displacement of every pixel is a thin-plate spline of the landmark displacements. Its
centres are the *fixed* mean landmarks (plus points on the image border that stay put), so
the spline's linear system is a constant: the displacement field is one constant matrix
times the landmark displacements, then a bilinear resampling. That is a ``MatMul`` and a
``GridSample`` in ONNX, standard operators, and the same arithmetic in training,
preprocessing and every exported graph.

The field is solved on a coarse grid (``grid`` x ``grid``) and upsampled bilinearly to the
image: a thin-plate spline is smooth, and the constant stays small (56 x 56 points x 72
landmarks is 0.9 MB, the full 224 x 224 would be 14 MB in every graph that holds it).

Backward mapping: the output pixel at ``x`` samples the texture at ``x + field(x)``. With
the centres at the mean landmarks the interpolation is exact there, so

* ``align`` (preprocessing): a photo with landmarks L, sampled at x + field(L - mean),
  puts the photo's point L_i at mean_i exactly: the aligned texture;
* ``warp`` (the decoder): an aligned texture sampled at x + field(mean - Q) moves the
  mean landmarks to Q to first order in the displacement (exact for translations and
  linear maps, which the spline's affine part carries).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BORDER_POINTS = 5  # per image side, fixed (zero displacement): the background stays put
# a smoothing spline, not strict interpolation: repeated landmarks (dlib72 repeats four lip
# points) keep the system solvable
REGULARIZATION = 1e-4


def _kernel(squared_distance: np.ndarray) -> np.ndarray:
    """The thin-plate radial basis r^2 log r, as r^2 log(r^2) / 2 (0 at r = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 0.5 * squared_distance * np.log(squared_distance)
    return np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0)


def border_points(image_size: int, per_side: int = BORDER_POINTS) -> np.ndarray:
    """Evenly spaced points around the image's edge (pixel coordinates), corners once each."""
    edge = np.linspace(0, image_size - 1, per_side)
    points = {(x, y) for v in edge for x, y in ((v, 0), (v, image_size - 1), (0, v), (image_size - 1, v))}
    return np.array(sorted(points), np.float64)


def grid_points(image_size: int, grid: int) -> np.ndarray:
    """grid x grid points (x, y) spanning the image's pixel centres 0 ... image_size - 1, row-major."""
    axis = np.linspace(0, image_size - 1, grid)
    ys, xs = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def spline_flow_matrix(anchors: np.ndarray, image_size: int, grid: int,
                       regularization: float = REGULARIZATION) -> np.ndarray:
    """(grid^2, K) float64 matrix F: the displacement at every grid point is F @ D for the K x 2
    landmark displacements D, with the spline centred at ``anchors`` (K x 2 pixels) and at the
    fixed border points. Computed in units of the image size, where the system is well scaled."""
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    count = len(anchors)
    centres = np.concatenate([anchors, border_points(image_size)]) / image_size
    n = len(centres)
    squared = ((centres[:, None] - centres[None]) ** 2).sum(-1)
    affine = np.concatenate([np.ones((n, 1)), centres], axis=1)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = _kernel(squared) + regularization * np.eye(n)
    system[:n, n:] = affine
    system[n:, :n] = affine.T
    inverse = np.linalg.inv(system)[:, :count]  # only the landmarks move; the border's displacement is 0
    points = grid_points(image_size, grid) / image_size
    basis = np.concatenate([_kernel(((points[:, None] - centres[None]) ** 2).sum(-1)),
                            np.ones((len(points), 1)), points], axis=1)
    return basis @ inverse


class LandmarkWarp(nn.Module):
    """Resample N x C x S x S images so the ``anchors`` move by per-image displacements.

    Args:
        anchors: K x 2 (or 2K flat) pixel coordinates the spline is centred on (the mean
            landmarks of the training faces).
        image_size: S.
        grid: the side of the grid the field is solved on before upsampling to S.
    """

    def __init__(self, anchors, image_size: int, grid: int = 56) -> None:
        super().__init__()
        anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
        if not np.isfinite(anchors).all():
            raise ValueError("warp anchors must be finite")
        self.image_size, self.grid = image_size, grid
        flow = spline_flow_matrix(anchors, image_size, grid)
        # non-persistent: a function of the config, not weights (recomputed identically on load)
        self.register_buffer("flow", torch.from_numpy(flow.astype(np.float32)), persistent=False)
        self.register_buffer("anchors", torch.from_numpy(anchors.astype(np.float32)), persistent=False)
        base = grid_points(image_size, grid).astype(np.float32).reshape(grid, grid, 2)
        self.register_buffer("base", torch.from_numpy(base), persistent=False)

    def sample_points(self, displacement: torch.Tensor) -> torch.Tensor:
        """N x K x 2 displacements -> N x S x S x 2 pixel coordinates to sample at."""
        n = displacement.shape[0]
        field = torch.matmul(self.flow, displacement)  # N x grid^2 x 2
        points = self.base + field.reshape(n, self.grid, self.grid, 2)
        if self.grid != self.image_size:
            points = F.interpolate(points.permute(0, 3, 1, 2), size=(self.image_size, self.image_size),
                                   mode="bilinear", align_corners=True).permute(0, 2, 3, 1)
        return points

    def forward(self, image: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
        """image N x C x S x S, displacement N x K x 2 pixels (target minus source for ``align``,
        see the module docstring) -> N x C x S x S."""
        points = self.sample_points(displacement)
        normalised = (2 * points + 1) / self.image_size - 1  # pixel centres, align_corners=False
        return F.grid_sample(image, normalised, mode="bilinear", padding_mode="border", align_corners=False)

    def align(self, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Photos N x C x S x S with their landmarks N x 2K (or N x K x 2) -> textures in the
        anchors' frame (their landmark i lands on anchor i)."""
        landmarks = landmarks.reshape(landmarks.shape[0], -1, 2)
        return self(image, landmarks - self.anchors)

    def to_landmarks(self, texture: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Textures in the anchors' frame -> images whose anchors sit at ``landmarks``."""
        landmarks = landmarks.reshape(landmarks.shape[0], -1, 2)
        return self(texture, self.anchors - landmarks)
