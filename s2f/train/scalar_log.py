"""Training curves for TensorBoard, written without TensorFlow.

``torch.utils.tensorboard`` and TensorBoard's own ``EventFileWriter`` import all of TensorFlow
whenever it is installed (the ``keras`` extra installs it), only to create a folder and open a
file: seconds of start-up in every training process. Scalars are all the trainer logs, and
the event file format is TensorBoard's records of ``Event`` protos, which TensorBoard's
``RecordWriter`` and protos write without TensorFlow.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

_files = itertools.count()  # two writers in one second of one process get two files


class ScalarWriter:
    """``add_scalar``/``flush``/``close``, as ``SummaryWriter``; ``purge_step`` tells
    TensorBoard to drop events from that step on (a resumed run), as ``SummaryWriter`` does."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.summary.writer.record_writer import RecordWriter

        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_files)}"
        self._records = RecordWriter(open(log_dir / name, "xb"))  # noqa: SIM115 - closed by close()
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        if purge_step is not None:
            self._write(Event(step=purge_step, file_version="brain.Event:2"))
            self._write(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def _write(self, event) -> None:
        self._records.write(event.SerializeToString())

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])
        self._write(Event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        self._records.close()
