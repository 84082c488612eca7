"""Deterministic train/val/test split by identity: no identity in two splits, so a model is
always judged on voices and faces it has never seen.

Each identity's place comes from a hash of (seed, name), not from listing order or a global
RNG: the same names give the same split on any machine, and adding identities later does not
reshuffle the existing ones. With strata (e.g. gender, age group, as the original's
deepface-based split) each stratum is split in the same proportions.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from runtime.errors import InputError

SPLITS = ("train", "val", "test")


def _rank(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def _cut(names: list[str], fractions: Sequence[float]) -> list[list[str]]:
    total, parts, start, acc = len(names), [], 0, 0.0
    for fraction in fractions:
        acc += fraction
        end = round(acc * total)
        parts.append(names[start:end])
        start = end
    return parts


def split_identities(names: Iterable[str], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                     strata: dict[str, str] | None = None) -> dict[str, list[str]]:
    """{"train": [...], "val": [...], "test": [...]}, each sorted by name."""
    names = sorted(set(names))
    if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault("" if strata is None else strata.get(name, ""), []).append(name)
    result: dict[str, list[str]] = {split: [] for split in SPLITS}
    for group in groups.values():
        ordered = sorted(group, key=lambda name: _rank(seed, name))
        for split, part in zip(SPLITS, _cut(ordered, fractions), strict=True):
            result[split] += part
    return {split: sorted(members) for split, members in result.items()}


def read_strata(path: Path, column: str, key: str = "identity") -> dict[str, str]:
    """identity -> stratum label from a CSV with an ``identity`` column and ``column``."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, f"cannot read strata CSV ({err})") from None
    if not rows or key not in rows[0] or column not in rows[0]:
        raise InputError(path, f"needs the columns {key!r} and {column!r}; has {list(rows[0]) if rows else 'none'}")
    return {row[key]: row[column] for row in rows}
