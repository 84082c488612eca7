"""The SF2F scorecard's arithmetic: galleries, recall@K and chance exactly as the protocol
defines them, and the judge's input convention. The whole scorecard, from PyTorch models and
from a bundle, is tested on the demo's trained models in ``test_learning.py``."""

from __future__ import annotations

import numpy as np
import pytest

from s2f.runtime.evaluate.scorecard import (
    RECALL_KS,
    JudgeInput,
    ScorecardInputs,
    draw_galleries,
    gallery_entries,
    score_queries,
    scorecard,
)


def _clustered(identities: int, per: int, dim: int = 32, noise: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((identities, dim))
    identity = np.repeat(np.arange(identities), per)
    return centres[identity] + noise * rng.standard_normal((len(identity), dim)), identity


def test_perfect_random_and_swapped_queries():
    real, identity = _clustered(40, 3)
    entries = gallery_entries(real, identity, 40)
    galleries = draw_galleries(40)
    assert len(galleries) == 1 and len(galleries[0]) == 40  # under 300: one gallery of all
    perfect = score_queries(entries[identity], identity, entries, galleries)
    assert all(perfect[f"recall@{k}"] == 1.0 for k in RECALL_KS)
    assert perfect["cosine"] == pytest.approx(1.0) and perfect["l2"] == pytest.approx(0.0, abs=1e-9)
    assert perfect["chance@1"] == 1 / 40 and perfect["chance@50"] == 1.0
    swapped = score_queries(entries[(identity + 1) % 40], identity, entries, galleries)
    assert swapped["recall@1"] == 0.0
    noise = np.random.default_rng(5).standard_normal((4000, 32))
    chance = score_queries(noise, np.resize(np.arange(40), 4000), entries, galleries)
    assert abs(chance["recall@1"] - 1 / 40) < 0.015 and abs(chance["recall@10"] - 10 / 40) < 0.03


def test_three_galleries_of_one_hundred_from_three_hundred_identities():
    galleries = draw_galleries(321, seed=0)
    assert [len(g) for g in galleries] == [100, 100, 100]
    assert len(set(np.concatenate(galleries))) == 300  # disjoint
    assert all(np.array_equal(a, b) for a, b in zip(galleries, draw_galleries(321, seed=0), strict=True))
    real, identity = _clustered(321, 2, noise=0.8)
    queries, _ = _clustered(321, 2, noise=0.8, seed=0)
    report = scorecard(ScorecardInputs([f"id{i}" for i in range(321)], real, identity,
                                       {"face_to_face": (queries[::-1], identity[::-1])}), "test judge")
    assert report["galleries"] == {"count": 3, "size": 100, "seed": 0, "note": report["galleries"]["note"]}
    assert "averaged" in report["galleries"]["note"]
    assert report["face_to_face"]["chance@5"] == 0.05 and report["face_to_face"]["recall@5"] > 0.5


def test_judge_input_convention():
    image = np.zeros((50, 60, 3), np.uint8)
    image[..., 0] = 200  # red
    spec = JudgeInput(size=32, channel_order="BGR", mean=(10.0, 20.0, 30.0), std=(2.0, 2.0, 2.0))
    array = spec(image)
    assert array.shape == (3, 32, 32) and array.dtype == np.float32
    assert np.allclose(array[2], (200 - 30) / 2) and np.allclose(array[0], (0 - 10) / 2)  # red is last in BGR
