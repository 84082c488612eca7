"""Pairings match a straightforward enumeration (the original's definition) item for item;
splits are deterministic, disjoint, complete and stratified."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from support.helpers import run_s2f

from s2f.core.errors import InputError
from s2f.data.pairs import DecoderFaces, VoiceFacePairs
from s2f.data.split import split_identities

# identity -> (clips, faces); "dave" has no faces and "erin" no clips: both skipped
COUNTS = {"alice": (3, 2), "bob": (1, 4), "carol": (5, 1), "dave": (2, 0), "erin": (0, 3), "frank": (2, 2)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre")
    for person, (clips, faces) in COUNTS.items():
        for c in range(clips):
            sub = "s1" if c % 2 else ""  # clips may sit in sub-folders
            path = root / person / "audios" / sub / f"c{c}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.full((2, 3), hash((person, c)) % 1000, np.float32))
        images = root / person / "images"
        images.mkdir(parents=True, exist_ok=True)
        for f in range(faces):
            np.save(images / f"f{f}_embedding.npy", np.full(4, f, np.float32))
            np.save(images / f"f{f}_target.npy", np.full((224, 224, 3), 51 * f, np.uint8))
            np.save(images / f"f{f}_landmarks.npy", np.arange(144, dtype=np.float32))
    (root / "audio_features.json").write_text("{}")  # settings files at the root are not identities
    return root


def _expected(root, pairing):
    """The original's enumeration: identities in order, clips x faces per identity."""
    out = []
    kept = [p for p in sorted(COUNTS) if all(COUNTS[p])]
    for identity, person in enumerate(kept):
        clips = sorted((root / person / "audios").rglob("*.npy"))
        faces = sorted((root / person / "images").glob("*_embedding.npy"))
        if pairing == "all_to_one":
            out += [(c, faces[0], identity) for c in clips]
        elif pairing == "one_to_one":
            out += [(c, f, identity) for c, f in zip(clips, faces, strict=False)]
        else:
            out += [(c, f, identity) for c, f in itertools.product(clips, faces)]
    return out


@pytest.mark.parametrize("pairing", ["all_to_one", "one_to_one", "all_to_all"])
def test_pairings_match_enumeration(tree, pairing):
    pairs = VoiceFacePairs(tree, pairing)
    expected = _expected(tree, pairing)
    assert pairs.identities == ["alice", "bob", "carol", "frank"]
    assert len(pairs) == len(expected) == {"all_to_one": 11, "one_to_one": 6, "all_to_all": 19}[pairing]
    for index, (clip, face, identity) in enumerate(expected):
        pair = pairs.pair(index)
        assert (pair.clip, pair.face, pair.identity) == (clip, face, identity)
    features, embedding, identity = pairs[-1]
    assert features.shape == (2, 3) and embedding.shape == (4,) and identity == 3
    with pytest.raises(IndexError):
        pairs.pair(len(pairs))


def test_identity_subset_and_clip_cap(tree):
    pairs = VoiceFacePairs(tree, "all_to_one", identities=["carol", "alice"], max_clips_per_identity=2)
    assert pairs.identities == ["alice", "carol"] and len(pairs) == 4


def test_no_usable_identity(tree):
    with pytest.raises(InputError, match="run 's2f preprocess' first"):
        VoiceFacePairs(tree, identities=["dave", "erin"])


def test_decoder_faces(tree):
    faces = DecoderFaces(tree)
    assert len(faces) == 2 + 4 + 1 + 3 + 2  # erin has faces but no clips: fine for the decoder
    image, embedding, landmarks, identity = faces[1]
    assert image.shape == (3, 224, 224) and image.dtype == np.float32
    assert image.max() == pytest.approx(51 / 255) and embedding[0] == 1 and landmarks.shape == (144,)
    assert faces.identities[identity] == "alice"


def test_indexing_does_not_scan(tree):
    """Looking an item up touches no directory (the original re-walked every identity)."""
    import os

    pairs = VoiceFacePairs(tree, "all_to_all")
    real_scandir, calls = os.scandir, []
    os.scandir = lambda *a, **k: calls.append(a) or real_scandir(*a, **k)
    try:
        for index in range(len(pairs)):
            pairs.pair(index)
    finally:
        os.scandir = real_scandir
    assert calls == []


def test_split_is_deterministic_disjoint_and_complete():
    names = [f"id{i:04d}" for i in range(1000)]
    split = split_identities(names, (0.8, 0.1, 0.1), seed=3)
    assert split == split_identities(list(reversed(names)), (0.8, 0.1, 0.1), seed=3)  # order-free
    sizes = [len(split[s]) for s in ("train", "val", "test")]
    assert 760 <= sizes[0] <= 840 and 75 <= sizes[1] <= 125 and 75 <= sizes[2] <= 125, sizes  # binomial, ~3 sigma
    assert set().union(*split.values()) == set(names)
    assert not set(split["train"]) & set(split["val"]) and not set(split["val"]) & set(split["test"])
    assert split != split_identities(names, (0.8, 0.1, 0.1), seed=4)


def test_stratified_split_keeps_proportions():
    names = [f"id{i:03d}" for i in range(200)]
    strata = {name: "f" if i < 40 else "m" for i, name in enumerate(names)}  # 20 % / 80 %
    split = split_identities(names, (0.5, 0.25, 0.25), seed=0, strata=strata, exact=True)
    for part, size in (("train", 100), ("val", 50), ("test", 50)):
        assert len(split[part]) == size
        assert sum(strata[name] == "f" for name in split[part]) == size // 5


@pytest.mark.parametrize("seed", range(6))
def test_adding_identities_never_moves_an_existing_one(seed):
    """300 identities, then 90 more: every one of the 300 keeps its part (the exact-proportion
    cut, by contrast, moves some, which is why it is an opt-in)."""
    before = [f"id{i:05d}" for i in range(300)]
    after = before + [f"new{i:05d}" for i in range(90)]

    def part_of(split):
        return {name: part for part, names in split.items() for name in names}

    first, second = (part_of(split_identities(names, (0.8, 0.1, 0.1), seed)) for names in (before, after))
    assert {name: second[name] for name in before} == first
    exact_first, exact_second = (part_of(split_identities(names, (0.8, 0.1, 0.1), seed, exact=True))
                                 for names in (before, after))
    assert any(exact_second[name] != exact_first[name] for name in before)


def test_split_command(tmp_path):
    for index in range(40):
        (tmp_path / "data" / f"id{index:02d}").mkdir(parents=True)
    done = run_s2f("data", "split", tmp_path / "data", "-o", tmp_path / "split.json",
                   "--fractions", "0.6", "0.2", "0.2")
    assert done.returncode == 0, done.stderr
    split = json.loads((tmp_path / "split.json").read_text())
    assert split["method"] == "hash" and sum(len(split[s]) for s in ("train", "val", "test")) == 40
    exact = run_s2f("data", "split", tmp_path / "data", "-o", tmp_path / "exact.json", "--exact",
                    "--fractions", "0.6", "0.2", "0.2")
    assert exact.returncode == 0, exact.stderr
    split = json.loads((tmp_path / "exact.json").read_text())
    assert [len(split[s]) for s in ("train", "val", "test")] == [24, 8, 8]
    bad = run_s2f("data", "split", tmp_path / "data", "-o", tmp_path / "s2.json", "--strata", tmp_path / "none.csv")
    assert bad.returncode == 2 and "none.csv: cannot read strata CSV" in bad.stderr
