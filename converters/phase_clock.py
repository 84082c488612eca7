"""Where a conversion's time goes: seconds per phase (read, transpose, write, writeback, hash),
summed over the threads that run them. Phases on different threads overlap, so their sum can
exceed the wall time; ``bench/convert_speed.py`` prints them next to it."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

_totals: defaultdict[str, float] = defaultdict(float)
_lock = threading.Lock()


@contextmanager
def phase(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        with _lock:
            _totals[name] += elapsed


def add(name: str, seconds: float) -> None:
    with _lock:
        _totals[name] += seconds


def totals() -> dict[str, float]:
    with _lock:
        return dict(_totals)


def reset() -> None:
    with _lock:
        _totals.clear()
