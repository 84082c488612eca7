"""The bundle's probe: a few inputs and the float32 outputs PyTorch gave for them at export.

A graph verified on export is verified for onnxruntime on float32 (or the int8/fp16 files it
checked). Another engine (OpenVINO) or precision (bf16) computes something else, and whether
it is close enough depends on the model and on this CPU, so it is checked here, on open,
against the same promise: a generated face within one intensity level of PyTorch's; an
encoder's embedding at cosine >= 0.999 to the exact (float64) result at a reduced precision;
and at float32, every embedding and texture within the rounding rule
(``s2f.core.agreement.RoundingRule``: a small factor times PyTorch float32's own distance to
float64), so a float32 engine that computes something else is caught even where its faces
still look alike. The probe run also warms the session up.

``probe.npz`` is read with ``allow_pickle=False`` (numpy arrays only, never pickles), after
its sha256 was checked like every bundle file, and each member's size is capped before it is
read, so an edited probe is one line, not an allocation.
"""

from __future__ import annotations

import logging
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2f.core.agreement import RoundingRule, compare
from s2f.core.errors import InputError

PROBE = "probe.npz"
EXACT = "_float64"  # suffix of the members holding PyTorch's float64 result (bundles since probes have them)
PROBE_ROLE = "probe"
MAX_MEMBER_BYTES = 64 << 20
IMAGE_LEVELS = 1  # an end-to-end graph's or decoder's face: at most one level from PyTorch's
MIN_COSINE = 0.999  # an encoder's embedding
# role -> the output judged, and how
GATES = {"voice_encoder": ("embedding", "cosine"), "face_encoder": ("embedding", "cosine"),
         "face_decoder": ("texture", "levels"), "speech2face": ("image", "levels"), "face2face": ("image", "levels")}
log = logging.getLogger(__name__)


@dataclass
class ProbeResult:
    passed: bool
    measure: str  # "image within 1 level" / "embedding cosine 0.99997"
    seconds: float  # the second (warm) run

    def __str__(self) -> str:
        return self.measure


class Probe:
    """Per graph role, the probe input and PyTorch's output of the judged tensor."""

    def __init__(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        self.path = path
        self.arrays = arrays

    def has(self, role: str) -> bool:
        return f"{role}/input" in self.arrays and f"{role}/{GATES[role][0]}" in self.arrays

    def check(self, session, role: str, runs: int = 2, precision: str = "fp32") -> ProbeResult:
        """Run the probe on ``session`` ``runs`` times (the first warms up, the last is timed) and
        judge it as a ``precision`` engine."""
        from s2f.runtime.engines.onnxruntime import run_graph

        output, how = GATES[role]
        feeds = {session.get_inputs()[0].name: self.arrays[f"{role}/input"]}
        expected = self.arrays[f"{role}/{output}"]
        seconds = 0.0
        for _ in range(runs):
            start = time.perf_counter()
            (got,) = run_graph(session, [output], feeds)
            seconds = time.perf_counter() - start
        if getattr(got, "shape", None) != expected.shape:
            raise InputError(self.path, f"{role}: the graph gives {output!r} of shape {list(got.shape)}, the probe "
                                        f"holds {list(expected.shape)}: the probe does not belong to this graph")
        exact = self.arrays.get(f"{role}/{output}{EXACT}")
        if exact is not None and exact.shape != expected.shape:
            raise InputError(self.path, f"{role}: the probe's float64 {output!r} has shape {list(exact.shape)}, its "
                                        f"float32 one {list(expected.shape)}")
        rounding = None
        if precision == "fp32" and exact is not None:
            rounding = RoundingRule().judge(compare(exact, got).max_relative, compare(exact, expected).max_relative)
            if not rounding.passed:
                return ProbeResult(False, f"{output} {rounding}", seconds)
        if how == "cosine" and rounding is not None:
            return ProbeResult(True, f"embedding {rounding.error:.1e} from float64 (gate {rounding.allowed:.1e})",
                               seconds)
        if how == "cosine":
            truth = expected if exact is None else exact
            cosine = _min_cosine(np.asarray(got, np.float64), truth.astype(np.float64))
            return ProbeResult(cosine >= MIN_COSINE, f"embedding cosine {cosine:.6f} (gate {MIN_COSINE})", seconds)
        image = got if output == "image" else _texture_levels(got)
        reference = expected if output == "image" else _texture_levels(expected)
        levels = int(np.abs(image.astype(np.int16) - reference.astype(np.int16)).max())
        return ProbeResult(levels <= IMAGE_LEVELS, f"image within {levels} level{'s' * (levels != 1)} "
                                                   f"(gate {IMAGE_LEVELS})", seconds)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosine = np.where(norms > 0, (a * b).sum(axis=1) / np.maximum(norms, 1e-30), 0.0)
    return float(np.nan_to_num(cosine, nan=0.0).min())


def _texture_levels(texture: np.ndarray) -> np.ndarray:
    """A decoder's N x 3 x H x W float texture as the uint8 image the user gets."""
    return np.clip(np.rint(np.nan_to_num(texture, nan=-1.0) * 255.0), 0, 255).astype(np.uint8)


def load_probe(bundle) -> Probe | None:
    """The bundle's probe, or None for bundles exported before probes (or without one)."""
    name = next((n for n, entry in bundle.manifest.files.items() if entry.role == PROBE_ROLE), None)
    if name is None:
        return None
    bundle.verify([name])
    path = bundle.root / name
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.file_size > MAX_MEMBER_BYTES:
                    raise InputError(path, f"member {member.filename!r} unpacks to {member.file_size} bytes: "
                                           "not a probe")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except InputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(path, f"unreadable probe ({' '.join(str(err).split())[:200]})") from None
    for key, value in arrays.items():
        role, _, what = key.partition("/")
        if role not in GATES or value.dtype.kind not in "fu" or value.ndim < 1:
            raise InputError(path, f"member {key!r} ({value.dtype}, {value.ndim}-D) is not a probe array")
    return Probe(path, arrays)
