"""Face landmarks with dlib's 68-point shape predictor, shipped inside the
``face-recognition-models`` package (nothing is fetched at run time).

The original project called ``face_recognition.face_landmarks`` on the 224x224 decoder
image and concatenated its feature dictionary: 72 points, because the two lip contours
repeat four of dlib's 68 points. ``FACE_RECOGNITION_72`` is that order, so our 72-point
landmarks are value-for-value what the original trained on; ``points=68`` gives dlib's own.
Coordinates are pixels of the image the detector saw, (x, y) pairs flattened to 2*P values.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

# face_recognition's dictionary order: chin, eyebrows, nose bridge, nose tip, eyes, top lip
# (outer 48-54, inner 64-60), bottom lip (outer 54-59, 48, inner 60, 67-64)
FACE_RECOGNITION_72 = np.array(
    list(range(0, 48))
    + list(range(48, 55)) + [64, 63, 62, 61, 60]
    + list(range(54, 60)) + [48] + [60, 67, 66, 65, 64],
    dtype=np.intp,
)
LANDMARK_MODES = ("dlib72", "dlib68", "given")
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
UPSAMPLE = 1  # face_recognition's default for its HOG detector


class NoFaceFound(Exception):
    """The detector found no face: the image is reported and skipped, as the original did."""


def to_72(points68: np.ndarray) -> np.ndarray:
    """68 x 2 dlib points -> 72 x 2 in the original project's order."""
    return np.asarray(points68)[FACE_RECOGNITION_72]


def predictor_path() -> Path:
    """Locate the model inside the installed package without importing it (its
    ``__init__`` needs ``pkg_resources``, which new setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        from s2f.core.extras import MissingExtra

        raise MissingExtra("face landmarks", "face-recognition-models", "landmarks")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE
    if not path.is_file():
        from s2f.core.errors import InputError

        raise InputError(path, "missing from the installed face-recognition-models; reinstall it")
    return path


class LandmarkDetector:
    """HOG face detector + 68-point shape predictor; the most confident face wins."""

    def __init__(self, points: int = 72) -> None:
        if points not in (68, 72):
            raise ValueError(f"points must be 68 or 72, got {points}")
        try:
            import dlib
        except ImportError:
            from s2f.core.extras import MissingExtra

            raise MissingExtra("face landmarks", "dlib", "landmarks") from None
        self.points = points
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(predictor_path()))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB -> (2 * points,) float32 pixel coordinates."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        boxes, scores, _ = self._detector.run(image, UPSAMPLE, 0.0)
        if len(boxes) == 0:
            raise NoFaceFound("no face found by the landmark detector")
        best = boxes[int(np.argmax(scores))]
        shape = self._predictor(image, best)
        points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float32)
        if self.points == 72:
            points = to_72(points)
        return points.reshape(-1)
