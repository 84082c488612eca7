"""Run one function over many files on all cores, the way a long preprocessing run needs:
a progress bar, finished files skipped on rerun (their outputs exist: every output is
written atomically, so existing means complete), and a bad file recorded in a report
instead of ending the run."""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2f.core.atomic import PartialSweeper, atomic_output
from s2f.core.errors import InputError
from s2f.core.listing import iter_names
from s2f.core.progress import progress_bar
from s2f.core.shards import WHOLE, Shard

log = logging.getLogger(__name__)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass(frozen=True)
class JobOptions:
    """How a run over many files runs, the same for every preprocessing command.

    Args:
        workers: processes (default: all cores).
        overwrite: redo finished files (and accept changed settings).
        shard: do only shard K of N (K from 0) of the files, into the same OUT_DIR; default: torchrun's
            RANK/WORLD_SIZE or a Slurm array's task, else all files.
    """

    workers: int = field(default_factory=default_workers)
    overwrite: bool = False
    shard: str | None = field(default=None, metadata={"metavar": "K/N"})

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError(None, f"--workers must be at least 1, got {self.workers}")

    def resolved_shard(self) -> Shard:
        """The shard this process does: ``shard``, else the launcher's, else everything."""
        from s2f.core.shards import resolve_shard

        return resolve_shard(self.shard)


ONE_PROCESS = JobOptions(workers=1)  # what the library functions do unless told otherwise


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

    def summary(self, report_path: Path | None = None) -> str:
        """One line; a run with failures names its report (``report_path``, default: where it was saved)."""
        report_path = report_path or getattr(self, "_saved_to", None)
        text = (f"{self.command}: {self.total} files: {self.written} written, {self.already_done} already done, "
                f"{len(self.failed)} failed")
        return text + (f" (see {report_path})" if self.failed else "") + (f" [{self.shard}]" if self.shard else "")

    def save(self, path: Path) -> None:
        with atomic_output(path, "w") as handle:
            json.dump({k: v for k, v in self.__dict__.items() if not k.startswith("_")}, handle, indent=2)
        self._saved_to = path

    @property
    def produced_something(self) -> bool:
        """A run that wrote or found done at least one file, or had none to do: exit 0."""
        return self.written + self.already_done > 0 or self.total == 0


def save_array(path: Path, array: np.ndarray) -> None:
    """Atomic ``np.save``; no fsync, since a preprocessing run writes thousands of small
    files and a lost file after a power cut is simply redone by the next (resumed) run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "wb", durable=False) as handle:
        np.save(handle, array, allow_pickle=False)


@dataclass
class ListedJobs:
    """One shard's jobs over the files of a tree, streamed from the listing.

    Every shard walks the whole listing (the shard is every N-th file, as ``s2f.core.shards``
    defines it) but keeps only its own jobs, one at a time: no shard holds another's files,
    and none holds its own as a list. ``total`` (this shard's count, for the progress bar)
    costs one extra pass of the listing, which is cheap next to the work.

    Two inputs with the same output (``clip.wav`` beside ``clip.flac``) are refused: they
    can only sit in one folder, so only the folders on the current path are remembered.
    """

    root: Path
    endings: frozenset[str]
    job_for: Callable[[str], FileJob]  # relative name -> its job
    shard: Shard = WHOLE

    def __post_init__(self) -> None:
        """The counting pass, which also refuses clashing outputs before any work starts."""
        open_folders: dict[str, dict[Path, str]] = {}
        count = 0
        for name in iter_names(self.root, self.endings):
            count += 1
            output = self.job_for(name).outputs[0]
            folder = name.rpartition("/")[0]
            if folder not in open_folders:  # depth-first: a folder left behind is never seen again
                open_folders = {key: seen for key, seen in open_folders.items()
                                if key == "" or folder.startswith(key + "/")}
                open_folders[folder] = {}
            seen = open_folders[folder]
            if output in seen:
                raise InputError(self.root / name, f"has the same output {output} as {self.root / seen[output]}; "
                                                   "rename one of them")
            seen[output] = name
        self.files = count
        self.total = len(range(self.shard.index, count, self.shard.count))

    def __iter__(self) -> Iterator[FileJob]:
        names = itertools.islice(iter_names(self.root, self.endings), self.shard.index, None, self.shard.count)
        return map(self.job_for, names)


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
             initargs: tuple = (), total: int | None = None, overwrite: bool = False) -> Iterator[tuple[FileJob, Any]]:
    """Yield ``(job, work(job))`` for every unfinished job that succeeds, in input order.

    ``jobs`` is consumed as a stream (a listing of a million files is never held), and at
    most a few chunks per worker are in flight: results wait in bounded memory however far
    the consumer (the face encoder) falls behind. ``total`` (the count of ``jobs``, for the
    progress bar) is optional. The partial files that killed runs left for each job's outputs
    are removed as the job comes up, finished or not (``PartialSweeper``). ``overwrite`` runs finished jobs again.

    ``work`` and ``initializer`` run in ``workers`` spawned processes (spawn, not fork: the
    parent may hold torch and its thread pools); with ``workers=1`` they run in this process.
    """
    started = time.perf_counter()
    bar = progress_bar(total=total, desc=description, unit="file")
    sweeper = PartialSweeper()

    def unfinished() -> Iterator[FileJob]:
        for job in jobs:
            report.total += 1
            sweeper.sweep(job.outputs)
            if not overwrite and job.finished():
                report.already_done += 1
                bar.update()
                continue
            yield job

    try:
        if workers <= 1 or (total is not None and total <= 1):
            if initializer is not None:
                initializer(*initargs)
            results: Iterable = (_call(work, job) for job in unfinished())
        else:
            results = process_map(_CallWith(work), unfinished(), workers, initializer, initargs, JOB_CHUNK)
        yield from _collect(results, report, bar)
    finally:
        bar.close()
        report.seconds = round(time.perf_counter() - started, 3)
        if sweeper.removed:
            log.info("removed %d partial files left by interrupted runs", sweeper.removed)


JOB_CHUNK = 4  # files per task sent to a worker: small, so few results wait in memory
IN_FLIGHT_PER_WORKER = 2  # chunks queued or running per worker: enough to keep every core busy

WORKERS_DIED = ("a worker process died{detail}; when this runs from a script, put its entry point under "
                "`if __name__ == '__main__':` (workers are spawned and import the script again)")


def _map_chunk(function: Callable[[Any], Any], chunk: list) -> list:
    return [function(item) for item in chunk]


def process_map(function: Callable[[Any], Any], items: Iterable, workers: int,
                initializer: Callable[..., None] | None = None, initargs: tuple = (),
                chunksize: int = 1) -> Iterator[Any]:
    """``function(item)`` for every item in ``workers`` spawned processes (spawn, not fork:
    the parent may hold torch and its thread pools), results in input order.

    Unlike ``Executor.map``, which submits every item at once (the items and then their
    results pile up in memory), items are drawn from ``items`` as results are taken: at most
    ``IN_FLIGHT_PER_WORKER`` chunks per worker exist at any time.

    A worker that dies (killed, out of memory, an initializer that raises, a script without a
    ``__main__`` guard) ends the run at once with one line, instead of a pool that quietly
    respawns it forever.
    """
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=initializer, initargs=initargs)
    iterator = iter(items)
    window: deque = deque()

    def submit_next() -> bool:
        chunk = list(itertools.islice(iterator, chunksize))
        if chunk:
            window.append(executor.submit(_map_chunk, function, chunk))
        return bool(chunk)

    try:
        while len(window) < workers * IN_FLIGHT_PER_WORKER and submit_next():
            pass
        while window:
            results = window.popleft().result()
            submit_next()
            yield from results
    except BrokenProcessPool as err:
        executor.shutdown(wait=False, cancel_futures=True)
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
