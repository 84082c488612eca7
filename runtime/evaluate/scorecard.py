"""The SF2F scorecard: how recognisable the *generated faces* are, the protocol of SF2F
(Bai et al. 2020, ``utils/s2f_evaluator.py``) and later work such as Vox2Face.

A face-recognition network (the judge) embeds every generated face and every real face.
Each identity's gallery entry is the mean of its real faces' embeddings. A generated face
is a query; it is ranked against the gallery entries of a gallery of identities by cosine
similarity, and recall@K is how often its own identity is among the first K. The protocol's
galleries hold 100 identities; with 300 or more test identities three disjoint galleries
(drawn with a fixed seed) are scored and averaged, with fewer there is one gallery of all of
them, which the report says (chance is K / gallery size either way). Beside the recalls: the
cosine, L1 and L2 between each query's unit embedding and its own identity's unit gallery
entry.

numpy only: the same scoring serves ``s2f evaluate --protocol sf2f`` (PyTorch models) and
``s2f-runtime scorecard`` (a bundle, onnxruntime alone).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError

RECALL_KS = (1, 2, 5, 10, 20, 50)
GALLERY_SIZE = 100
GALLERY_COUNT = 3
# the three query kinds of a scorecard, in the order reports and plots show them
KINDS = {"speech_to_face": "speech->face (generated from a voice)",
         "face_to_face": "face->face (generated from a face embedding, upper bound)",
         "voice_embedding": "voice embedding vs face embeddings (no image)"}

Embedder = Callable[[list[np.ndarray]], np.ndarray]  # list of H x W x 3 uint8 RGB -> N x D


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def gallery_entries(embeddings: np.ndarray, identity: np.ndarray, identities: int) -> np.ndarray:
    """identities x D: the mean embedding of each identity's real faces (each face unit-normalised first)."""
    faces = unit(embeddings)
    entries = np.zeros((identities, faces.shape[1]))
    np.add.at(entries, identity, faces)
    counts = np.bincount(identity, minlength=identities)
    if (counts == 0).any():
        raise ValueError(f"identities without a real face: {np.flatnonzero(counts == 0).tolist()}")
    return entries / counts[:, None]


def draw_galleries(identities: int, size: int = GALLERY_SIZE, count: int = GALLERY_COUNT,
                   seed: int = 0) -> list[np.ndarray]:
    """``count`` disjoint galleries of ``size`` identity indices when there are enough
    identities, else one gallery of all of them."""
    if identities < 2:
        raise ValueError("a gallery needs at least two identities")
    if identities < size * count:
        return [np.arange(identities)]
    order = np.random.default_rng(seed).permutation(identities)
    return [np.sort(order[i * size:(i + 1) * size]) for i in range(count)]


def gallery_note(identities: int, galleries: list[np.ndarray]) -> str:
    if len(galleries) == GALLERY_COUNT and len(galleries[0]) == GALLERY_SIZE:
        return f"{GALLERY_COUNT} disjoint galleries of {GALLERY_SIZE} of the {identities} identities, averaged"
    return (f"one gallery of all {identities} identities (the protocol's {GALLERY_COUNT} galleries of "
            f"{GALLERY_SIZE} need {GALLERY_COUNT * GALLERY_SIZE}); chance is K/{identities}")


def score_queries(queries: np.ndarray, query_identity: np.ndarray, entries: np.ndarray,
                  galleries: list[np.ndarray], ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """Recall@K of ``queries`` (Q x D, identity indices ``query_identity``) among the gallery
    entries (identities x D), averaged over ``galleries``; chance beside each; and the cosine,
    L1 and L2 between each unit query and its own unit gallery entry."""
    queries, entries = unit(queries), unit(entries)
    query_identity = np.asarray(query_identity, np.int64)
    recalls = {k: [] for k in ks}
    for gallery in galleries:
        members = np.isin(query_identity, gallery)
        if not members.any():
            continue
        position = {int(identity): i for i, identity in enumerate(gallery)}
        similarity = queries[members] @ entries[gallery].T  # queries x gallery
        true = np.array([position[int(i)] for i in query_identity[members]])
        own = similarity[np.arange(len(true)), true]
        ranks = (similarity > own[:, None]).sum(axis=1)  # ties favour the truth
        for k in ks:
            recalls[k].append(float((ranks < k).mean()))
    size = len(galleries[0])
    result: dict[str, float] = {"queries": int(len(queries))}
    for k in ks:
        result[f"recall@{k}"] = float(np.mean(recalls[k]))
        result[f"chance@{k}"] = min(k, size) / size
    difference = queries - entries[query_identity]
    result["cosine"] = float((queries * entries[query_identity]).sum(axis=1).mean())
    result["l1"] = float(np.abs(difference).sum(axis=1).mean())
    result["l2"] = float(np.linalg.norm(difference, axis=1).mean())
    return result


@dataclass
class ScorecardInputs:
    """Judge embeddings, ready to score. ``real`` and ``real_identity``: the real faces;
    ``queries``: kind -> (embeddings, identity indices); ``identities``: names, by index."""

    identities: list[str]
    real: np.ndarray
    real_identity: np.ndarray
    queries: dict[str, tuple[np.ndarray, np.ndarray]]
    voice_gallery: np.ndarray | None = None  # identities x D in the voice encoder's target space


def scorecard(inputs: ScorecardInputs, judge: str, seed: int = 0) -> dict[str, Any]:
    """The report: gallery set-up, then one block of scores per query kind."""
    count = len(inputs.identities)
    galleries = draw_galleries(count, seed=seed)
    entries = gallery_entries(inputs.real, inputs.real_identity, count)
    report: dict[str, Any] = {
        "protocol": "sf2f", "judge": judge, "identities": count,
        "galleries": {"count": len(galleries), "size": len(galleries[0]), "seed": seed,
                      "note": gallery_note(count, galleries)},
        "real_faces": int(len(inputs.real))}
    for kind in KINDS:
        if kind not in inputs.queries:
            continue
        embeddings, identity = inputs.queries[kind]
        gallery = inputs.voice_gallery if kind == "voice_embedding" else entries
        report[kind] = score_queries(embeddings, identity, gallery, galleries)
    return report


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A few lines for a terminal."""
    lines = [f"SF2F scorecard, judge {report['judge']}: {report['galleries']['note']}"]
    size = report["galleries"]["size"]
    ks = [k for k in RECALL_KS if k <= size or k == RECALL_KS[0]]
    lines.append(f"{'':18}" + "".join(f"{'R@' + str(k):>8}" for k in ks) + f"{'cosine':>9}{'L1':>8}{'L2':>7}")
    for kind in KINDS:
        if kind in report:
            row = report[kind]
            lines.append(f"{kind:18}" + "".join(f"{row[f'recall@{k}']:8.3f}" for k in ks)
                         + f"{row['cosine']:9.3f}{row['l1']:8.2f}{row['l2']:7.3f}")
    lines.append(f"{'chance':18}" + "".join(f"{min(k, size) / size:8.3f}" for k in ks))
    return lines


COLOURS = {"speech_to_face": (40, 90, 200), "face_to_face": (30, 150, 70), "voice_embedding": (220, 120, 30),
           "chance": (150, 150, 150)}


def recall_chart(series: dict[str, Sequence[float]], ks: Sequence[int], title: str, path: str | Path) -> Path:
    """Recall@K against K (log-spaced) for each named series (``KINDS``, ``chance`` dashed), as
    a PNG (PIL only): the one recall chart, for the SF2F scorecard and for ``s2f evaluate``."""
    from PIL import ImageDraw

    width, height, left, right, top, bottom = 560, 340, 48, 190, 28, 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    plot_w, plot_h = width - left - right, height - top - bottom
    logs = np.log(np.asarray(ks, np.float64))
    span = float(logs[-1] - logs[0]) or 1.0

    def xy(index: int, value: float) -> tuple[float, float]:
        x = left + (logs[index] - logs[0]) / span * plot_w
        return x, top + (1 - value) * plot_h

    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        _, y = xy(0, tick)
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.text((6, y - 6), f"{tick:.2f}", fill="black")
    for i, k in enumerate(ks):
        x, _ = xy(i, 0)
        draw.text((x - 6, top + plot_h + 6), str(k), fill="black")
    draw.text((left + plot_w // 2 - 10, height - 16), "K", fill="black")
    for row, (kind, values) in enumerate(series.items()):
        points = [xy(i, v) for i, v in enumerate(values)]
        colour = COLOURS[kind]
        if kind == "chance":
            for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
                for t in np.linspace(0, 1, 12, endpoint=False)[::2]:
                    draw.line([(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t),
                               (x0 + (x1 - x0) * (t + 1 / 12), y0 + (y1 - y0) * (t + 1 / 12))], fill=colour, width=2)
        elif len(points) > 1:
            draw.line(points, fill=colour, width=3)
        if kind != "chance":
            for x, y in points:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        legend_y = top + 8 + row * 18
        draw.line([(width - right + 12, legend_y + 6), (width - right + 36, legend_y + 6)], fill=colour, width=3)
        draw.text((width - right + 42, legend_y), kind.replace("_", " "), fill="black")
    draw.text((left, 8), title, fill="black")
    path = Path(path)
    with atomic_output(path, "wb") as handle:
        image.save(handle, format="PNG")
    return path


def plot_recall_curve(report: dict[str, Any], path: str | Path, ks: Sequence[int] = RECALL_KS) -> Path:
    """The scorecard's recall@K curves, chance dashed (``recall_chart``)."""
    size = report["galleries"]["size"]
    series = {kind: [report[kind][f"recall@{k}"] for k in ks] for kind in KINDS if kind in report}
    series["chance"] = [min(k, size) / size for k in ks]
    return recall_chart(series, ks, f"SF2F recall@K, judge {report['judge']}, gallery of {size}", path)


@dataclass(frozen=True)
class JudgeInput:
    """How a face-recognition graph given with ``--judge`` takes its images: size x size,
    channel order, then (pixel - mean) / std per channel, NCHW float32."""

    size: int = 224
    channel_order: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise InputError(None, f"--judge-channels must be RGB or BGR, got {self.channel_order!r}")
        if self.size < 8:
            raise InputError(None, f"--judge-size must be at least 8, got {self.size}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise InputError(None, "--judge-mean and --judge-std take 1 or 3 values, std non-zero")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != (self.size, self.size):
            image = np.asarray(Image.fromarray(image).resize((self.size, self.size), Image.BILINEAR))
        pixels = image.astype(np.float32)
        if self.channel_order == "BGR":
            pixels = pixels[..., ::-1]
        pixels = (pixels - np.float32(self.mean)) / np.float32(self.std)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def three(values: Sequence[float], flag: str) -> tuple[float, float, float]:
    """1 or 3 numbers -> 3 (one per channel)."""
    values = tuple(float(v) for v in values)
    if len(values) == 1:
        return values * 3
    if len(values) != 3:
        raise InputError(None, f"{flag} takes 1 or 3 values, got {len(values)}")
    return values


def onnx_judge(path: str | Path, spec: JudgeInput, device: str = "cpu", batch_size: int = 16) -> Embedder:
    """An ONNX face-recognition graph (one image input, NCHW float32; its first output is the
    embedding) as an ``Embedder``."""
    from s2f.runtime.engines.onnxruntime import create_session

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "--judge: no such ONNX file")
    try:
        session = create_session(path, device)
    except InputError:
        raise
    except Exception as err:  # onnxruntime's own exception types; the message names what is wrong
        raise InputError(path, f"not a usable ONNX graph ({str(err).splitlines()[0]})") from None
    name = session.get_inputs()[0].name

    def embed(images: list[np.ndarray]) -> np.ndarray:
        outputs = []
        for start in range(0, len(images), batch_size):
            batch = np.stack([spec(image) for image in images[start:start + batch_size]])
            try:
                (embedding, *_) = session.run(None, {name: batch})
            except Exception as err:
                why = str(err).splitlines()[0]
                raise InputError(path, f"--judge graph rejected {spec.size}x{spec.size} {spec.channel_order} "
                                       f"input ({why}); set --judge-size/--judge-channels") from None
            outputs.append(np.asarray(embedding, np.float32).reshape(len(batch), -1))
        return np.concatenate(outputs)

    return embed


def save_report(report: dict[str, Any], path: str | Path) -> Path:
    import json

    path = Path(path)
    with atomic_output(path, "w") as handle:
        json.dump(report, handle, indent=2)
    return path


def add_judge_flags(parser: argparse.ArgumentParser, face_encoder: bool = True) -> None:
    """The SF2F judge: a face encoder, or any face-recognition ONNX graph and its input convention."""
    if face_encoder:
        parser.add_argument("--face-encoder", type=Path,
                            help="sf2f: the judge, the face encoder the embeddings came from")
    parser.add_argument("--judge", type=Path, help="sf2f: a face-recognition ONNX graph as the judge (NCHW float "
                                                   "input, embedding as its first output)")
    defaults = JudgeInput()
    parser.add_argument("--judge-size", type=int, default=defaults.size,
                        help="--judge input side (e.g. 160 for FaceNet)")
    parser.add_argument("--judge-channels", choices=("RGB", "BGR"), default=defaults.channel_order)
    parser.add_argument("--judge-mean", type=float, nargs="+", default=list(defaults.mean),
                        help="subtracted from 0-255 pixels, 1 or 3 values in --judge-channels order")
    parser.add_argument("--judge-std", type=float, nargs="+", default=list(defaults.std),
                        help="then divided by, 1 or 3 values (FaceNet: --judge-mean 127.5 --judge-std 128)")


def judge_input(args: argparse.Namespace):
    return JudgeInput(args.judge_size, args.judge_channels, three(args.judge_mean, "--judge-mean"),
                      three(args.judge_std, "--judge-std"))
