"""Deterministic train/val/test split by identity: no identity in two splits, so a model is
always judged on voices and faces it has never seen.

By default each identity's part comes from a hash of (seed, name) alone, mapped to [0, 1) and
compared with the cumulative fractions: the same names give the same split on any machine,
and adding identities later never moves an existing one (so no identity can leak from test
into train when a corpus grows). Proportions then hold in expectation, not exactly.

``exact=True`` instead ranks the identities by that hash and cuts the ranking at the exact
proportions (per stratum, given strata such as gender or age group, as the original's
deepface-based split did). That is not stable: adding identities shifts the cut points and
moves some existing identities between parts.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from s2f.core.errors import InputError

SPLITS = ("train", "val", "test")


def _rank(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def _position(seed: int, name: str) -> float:
    """The identity's own point in [0, 1): the first 64 bits of its hash."""
    return int(_rank(seed, name)[:16], 16) / 2.0 ** 64


def _part_of(position: float, fractions: Sequence[float]) -> str:
    edge = 0.0
    for split, fraction in zip(SPLITS, fractions, strict=True):
        edge += fraction
        if position < edge:
            return split
    return next(split for split, fraction in zip(reversed(SPLITS), reversed(fractions), strict=True) if fraction > 0)


def _cut(names: list[str], fractions: Sequence[float]) -> list[list[str]]:
    total, parts, start, acc = len(names), [], 0, 0.0
    for fraction in fractions:
        acc += fraction
        end = round(acc * total)
        parts.append(names[start:end])
        start = end
    return parts


def split_identities(names: Iterable[str], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                     strata: dict[str, str] | None = None, exact: bool = False) -> dict[str, list[str]]:
    """{"train": [...], "val": [...], "test": [...]}, each sorted by name. ``strata`` only
    matters with ``exact``."""
    names = sorted(set(names))
    if len(fractions) != len(SPLITS) or any(not f >= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    if not exact:
        stable: dict[str, list[str]] = {split: [] for split in SPLITS}
        for name in names:
            stable[_part_of(_position(seed, name), fractions)].append(name)
        return stable
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


@dataclass(kw_only=True)
class SplitConfig:
    """``s2f data split``.

    Args:
        data_dir: the corpus: one folder per identity.
        output: split JSON to write.
        fractions: train, val and test shares.
        seed: the hash's seed: another seed, another split.
        exact: exact proportions (per stratum with --strata) by cutting the hash ranking; NOT stable: adding
            identities later moves some existing ones between parts.
        strata: with --exact: CSV with identity and the --strata-column.
        strata_column: the strata CSV's column to balance.
    """

    data_dir: Path = field(metadata={"positional": True})
    output: Path = field(metadata={"short": "-o"})
    fractions: tuple[float, float, float] = field(default=(0.8, 0.1, 0.1),
                                                  metadata={"metavar": ("TRAIN", "VAL", "TEST")})
    seed: int = 0
    exact: bool = False
    strata: Path | None = None
    strata_column: str = "register_group"


def write_split(config: SplitConfig) -> dict[str, list[str]]:
    """Split the identity folders of ``config.data_dir`` and write the split JSON atomically."""
    import json

    from s2f.core.atomic import atomic_output
    from s2f.data.layout import identity_dirs, require_dir

    names = [folder.name for folder in identity_dirs(require_dir(config.data_dir))]
    strata = read_strata(config.strata, config.strata_column) if config.strata else None
    try:
        split = split_identities(names, config.fractions, config.seed, strata, config.exact)
    except ValueError as err:
        raise InputError(None, f"--fractions: {err}") from None
    with atomic_output(config.output, "w") as handle:
        json.dump({"seed": config.seed, "fractions": list(config.fractions),
                   "method": "exact" if config.exact else "hash", **split}, handle, indent=2)
    return split
