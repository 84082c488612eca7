"""Split a run's files over processes and machines, with no coordinator.

Every shard lists the same files, sorts them, and keeps every N-th one starting at K, so
the N shards are disjoint, cover everything, and differ in size by at most one file. The
shard comes from ``--shard K/N`` or, when that is not given, from the launcher:

* ``torchrun``: ``RANK`` of ``WORLD_SIZE``;
* a Slurm job array: ``SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN`` of ``SLURM_ARRAY_TASK_COUNT``.

Outputs go where an unsharded run would write them, so the shards' union is that run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from s2f.core.errors import InputError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int
    source: str = "--shard"

    def __post_init__(self) -> None:
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise InputError(None, f"{self.source}: shard {self.index} of {self.count} does not exist "
                                   "(need 0 <= K < N)")

    @property
    def whole(self) -> bool:
        return self.count == 1

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's part of ``items`` (which every shard must list in the same order)."""
        return list(items[self.index::self.count])

    def __str__(self) -> str:
        return f"shard {self.index}/{self.count} ({self.source})"


WHOLE = Shard(0, 1, "unsharded")


def parse_shard(text: str) -> Shard:
    """``K/N`` -> ``Shard(K, N)``, with K counted from 0."""
    parts = text.split("/")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise InputError(None, f"--shard must be K/N (this is shard K of N, K from 0), got {text!r}")
    return Shard(int(parts[0]), int(parts[1]))


def _integer(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise InputError(None, f"environment variable {name}={environ[name]!r} is not an integer") from None


def shard_from_environment(environ: Mapping[str, str] | None = None) -> Shard | None:
    """The shard a launcher (torchrun, a Slurm array) gave this process, or None."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" in environ and "RANK" in environ:
        return Shard(_integer(environ, "RANK"), _integer(environ, "WORLD_SIZE"), "torchrun RANK/WORLD_SIZE")
    if "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
        first = _integer(environ, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in environ else 0
        return Shard(_integer(environ, "SLURM_ARRAY_TASK_ID") - first, _integer(environ, "SLURM_ARRAY_TASK_COUNT"),
                     "Slurm array task")
    return None


def resolve_shard(option: str | None, environ: Mapping[str, str] | None = None) -> Shard:
    """``--shard`` if given, else the launcher's, else the whole run."""
    shard = parse_shard(option) if option else shard_from_environment(environ) or WHOLE
    if not shard.whole:
        log.info("this process does %s of the files", shard)
    return shard
