"""onnxruntime-node from npm, for running our graphs in Node.js with no code of ours
(the portability test and bench/end_to_end.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

ONNXRUNTIME_NODE = "1.30.0"
SCRIPT = Path(__file__).resolve().parent / "node" / "speech2face.mjs"


def install_onnxruntime_node() -> Path:
    """A directory with onnxruntime-node (CPU) installed, reused across runs (~/.cache)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "s2f-tests" / \
        f"onnxruntime-node-{ONNXRUNTIME_NODE}"
    if not (root / "node_modules" / "onnxruntime-node" / "package.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        (root / "package.json").write_text('{"name": "s2f-node-check", "private": true}')
        env = {**os.environ, "ONNXRUNTIME_NODE_INSTALL_CUDA": "skip"}  # its CUDA download cannot work offline
        subprocess.run([npm, "install", "--no-audit", "--no-fund", f"onnxruntime-node@{ONNXRUNTIME_NODE}"],
                       cwd=root, env=env, check=True, capture_output=True, timeout=600)
    shutil.copy(SCRIPT, root / SCRIPT.name)  # ES modules resolve packages next to the script
    return root


def run_speech2face_in_node(node_dir: Path, graph: Path, waveform: np.ndarray, work: Path, repeats: int = 1) -> dict:
    """``graph`` on one clip in Node.js: {"image", "landmarks", "embedding", "milliseconds" (first
    run), "median_ms" (of the later runs, with ``repeats`` > 1), "shapes"}."""
    np.asarray(waveform, np.float32).tofile(work / "clip.f32")
    subprocess.run([shutil.which("node") or "node", str(node_dir / SCRIPT.name), str(graph), str(work / "clip.f32"),
                    str(work / "node"), str(repeats)], check=True, timeout=600)
    report = json.loads((work / "node.json").read_text())
    shapes = report["shapes"]
    return {"image": np.fromfile(work / "node.image.u8", np.uint8).reshape(shapes["image"]["dims"][1:]),
            "landmarks": np.fromfile(work / "node.landmarks.f32", np.float32).reshape(shapes["landmarks"]["dims"][1:]),
            "embedding": np.fromfile(work / "node.embedding.f32", np.float32),
            "milliseconds": report["milliseconds"], "median_ms": report["medianMs"], "shapes": shapes}


def deviation(node: dict, face) -> dict[str, float]:
    """Node's outputs against the Python runtime's ``Face``: image in 8-bit levels, the rest relative."""
    return {"image_levels": float(np.abs(node["image"].astype(int) - face.image).max()),
            "embedding": float(np.abs(node["embedding"] - face.embedding).max() / np.abs(face.embedding).max()),
            "landmarks": float(np.abs(node["landmarks"] - face.landmarks).max() / np.abs(face.landmarks).max())}
