"""Where a conversion's time goes: per phase (read, transpose, write, hash), the CPU
seconds (user and system) and the wall seconds, each summed over the threads that run it. A
phase whose wall time exceeds its CPU time was waiting: for the disk, a core or a lock.
``bench/convert_speed.py`` prints them next to the conversion's wall time."""

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
    cpu, wall = time.thread_time(), time.perf_counter()  # a phase begins and ends on one thread
    try:
        yield
    finally:
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        with _lock:
            _totals[name] += cpu
            _totals[name + ", wall"] += wall  # wall minus CPU: time the thread waited (for disk, a core, a lock)


def add(name: str, seconds: float) -> None:
    """Record a measured duration (used for wall times, named as such)."""
    with _lock:
        _totals[name] += seconds


def totals() -> dict[str, float]:
    with _lock:
        return dict(_totals)


def reset() -> None:
    with _lock:
        _totals.clear()
