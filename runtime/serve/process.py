"""``s2f-runtime serve`` as a child process: a free port, wait until ``/readyz`` answers, plain
HTTP calls, and a graceful stop.

The demo pipeline, the tests and the load benchmark all drive a real server process this way;
one launcher keeps their start-up and shut-down behaviour (and its failure messages) the same.
Standard library only, so it runs in the torch-free environment too.
"""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from s2f.core.errors import InputError

RUNTIME_COMMAND = (sys.executable, "-m", "s2f.runtime.cli")


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """A running ``s2f-runtime serve --bundle BUNDLE``; use as a context manager or call ``stop``.

    ``command`` is how to run ``s2f-runtime`` (default: this interpreter's); the server's stderr
    is kept for ``stop`` to return unless ``quiet`` discards it.
    """

    def __init__(self, bundle: str | Path, *flags: str, command: Sequence[str] = RUNTIME_COMMAND,
                 ready_timeout: float = 120.0, quiet: bool = False) -> None:
        self.bundle, self.port = Path(bundle), free_port()
        self.process = subprocess.Popen(
            [*map(str, command), "serve", "--bundle", str(bundle), "--port", str(self.port), "--device", "cpu",
             *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if quiet else subprocess.PIPE, text=True)
        try:
            self._wait_until_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/readyz", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                why = self.process.stderr.read().strip().splitlines()[-1:] if self.process.stderr else []
                raise InputError(self.bundle, "s2f-runtime serve exited before it was ready"
                                              + (f": {why[0]}" if why else ""))
            time.sleep(0.2)
        raise InputError(self.bundle, f"s2f-runtime serve was not ready within {timeout:g} s")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
        """One HTTP call on a fresh connection: (status, headers, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def stop(self) -> tuple[int, str]:
        """SIGTERM (in-flight requests finish), SIGKILL after 30 s; returns (exit code, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        stderr = self.process.stderr.read() if self.process.stderr and not self.process.stderr.closed else ""
        return self.process.returncode, stderr

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
