"""Micro-batching: requests that arrive within a few milliseconds of each other run as one
onnxruntime batch, so the weights are read once per batch instead of once per request. Whether
that raises a server's throughput depends on where its time goes: on a CPU whose cores the
convolutions already fill, batched and unbatched serve about equally (bench/serve_load.py
measures both); on a GPU, or with weight-bound models, a batch costs little more than one run.

One consumer task takes the first waiting item, then whatever else arrives within
``max_wait`` seconds, up to ``max_batch`` items, and runs the batch on one inference thread.
It waits only while more requests are on their way (``incoming``: accepted and still being
decoded), so a lone request never pays the wait. ``max_batch=1`` turns batching off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class MicroBatcher:
    def __init__(self, run_batch: Callable[[Sequence[Any]], Sequence[Any]], max_batch: int = 8,
                 max_wait: float = 0.01, on_batch: Callable[[int], None] | None = None,
                 incoming: Callable[[], int] = lambda: 1) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be at least 1 and max_wait not negative")
        self.run_batch, self.max_batch, self.max_wait = run_batch, max_batch, max_wait
        self.on_batch, self.incoming = on_batch, incoming
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    @property
    def waiting(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._consume())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def submit(self, item: Any) -> Any:
        """The result for ``item``, computed in a batch with its neighbours in time."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0 or self.incoming() <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            live = [(item, future) for item, future in batch if not future.done()]  # timed-out requests drop out
            if not live:
                continue
            if self.on_batch is not None:
                self.on_batch(len(live))
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, [item for item, _ in live])
            except Exception as err:  # noqa: BLE001 - every waiting request gets the error, the loop goes on
                for _, future in live:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)
