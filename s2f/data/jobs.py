"""Run one function over many files on all cores, the way a long preprocessing run needs:
a progress bar, finished files skipped on rerun (their outputs exist: every output is
written atomically, so existing means complete), and a bad file recorded in a report
instead of ending the run."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError
from s2f.core.progress import progress_bar


@dataclass
class FileJob:
    source: Path
    outputs: tuple[Path, ...]

    def finished(self) -> bool:
        """Its outputs exist; a job without outputs (a measurement) is never finished."""
        return bool(self.outputs) and all(path.is_file() for path in self.outputs)


@dataclass
class RunReport:
    """What a run did, written as JSON next to its outputs."""

    command: str
    settings: dict[str, Any]
    total: int = 0
    written: int = 0
    already_done: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    shard: str | None = None  # "shard K/N (source)" when the run did one shard of the files

    def fail(self, source: Path, message: str) -> None:
        self.failed.append({"file": str(source), "error": message})

    def summary(self, report_path: Path) -> str:
        text = (f"{self.command}: {self.total} files: {self.written} written, {self.already_done} already done, "
                f"{len(self.failed)} failed")
        return text + (f" (see {report_path})" if self.failed else "")

    def save(self, path: Path) -> None:
        with atomic_output(path, "w") as handle:
            json.dump(self.__dict__, handle, indent=2)


def save_array(path: Path, array: np.ndarray) -> None:
    """Atomic ``np.save``; no fsync, since a preprocessing run writes thousands of small
    files and a lost file after a power cut is simply redone by the next (resumed) run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "wb", durable=False) as handle:
        np.save(handle, array, allow_pickle=False)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _call(work: Callable[[FileJob], Any], job: FileJob) -> tuple[FileJob, Any, str | None]:
    """Errors come back as text: exceptions with custom constructors (``InputError``) do not
    survive pickling between processes, and a pool that fails to unpickle a result hangs."""
    try:
        return job, work(job), None
    except InputError as err:
        return job, None, err.problem
    except Exception as err:  # noqa: BLE001 - one bad file must never end the run
        return job, None, f"{type(err).__name__}: {err}"


def run_jobs(jobs: Iterable[FileJob], work: Callable[[FileJob], Any], report: RunReport, workers: int,
             description: str, initializer: Callable[..., None] | None = None,
             initargs: tuple = ()) -> Iterator[tuple[FileJob, Any]]:
    """Yield ``(job, work(job))`` for every unfinished job that succeeds, in input order.

    ``work`` and ``initializer`` run in ``workers`` spawned processes (spawn, not fork: the
    parent may hold torch and its thread pools); with ``workers=1`` they run in this process.
    """
    started = time.perf_counter()
    jobs = list(jobs)
    report.total = len(jobs)
    todo = [job for job in jobs if not job.finished()]
    report.already_done = len(jobs) - len(todo)
    bar = progress_bar(total=len(todo), desc=description, unit="file")
    try:
        if workers <= 1 or len(todo) <= 1:
            if initializer is not None:
                initializer(*initargs)
            results: Iterable = (_call(work, job) for job in todo)
            yield from _collect(results, report, bar)
        else:
            chunk = max(1, min(16, len(todo) // (workers * 8)))
            results = process_map(_CallWith(work), todo, workers, initializer, initargs, chunk)
            yield from _collect(results, report, bar)
    finally:
        bar.close()
        report.seconds = round(time.perf_counter() - started, 3)


WORKERS_DIED = ("a worker process died{detail}; when this runs from a script, put its entry point under "
                "`if __name__ == '__main__':` (workers are spawned and import the script again)")


def process_map(function: Callable[[Any], Any], items: list, workers: int,
                initializer: Callable[..., None] | None = None, initargs: tuple = (),
                chunksize: int = 1) -> Iterator[Any]:
    """``function(item)`` for every item in ``workers`` spawned processes (spawn, not fork:
    the parent may hold torch and its thread pools), results in input order.

    A worker that dies (killed, out of memory, an initializer that raises, a script without a
    ``__main__`` guard) ends the run at once with one line, instead of a pool that quietly
    respawns it forever.
    """
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=initializer, initargs=initargs)
    try:
        yield from executor.map(function, items, chunksize=chunksize)
    except BrokenProcessPool as err:
        detail = f" ({err})" if str(err) else ""
        raise InputError(None, WORKERS_DIED.format(detail=detail)) from None
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


class _CallWith:
    """Picklable ``functools.partial(_call, work)`` for the pool."""

    def __init__(self, work: Callable[[FileJob], Any]) -> None:
        self.work = work

    def __call__(self, job: FileJob) -> tuple[FileJob, Any, str | None]:
        return _call(self.work, job)


def _collect(results: Iterable, report: RunReport, bar) -> Iterator[tuple[FileJob, Any]]:
    for job, value, error in results:
        bar.update()
        if error is not None:
            report.fail(job.source, error)
            bar.set_postfix(failed=len(report.failed))
            continue
        yield job, value
