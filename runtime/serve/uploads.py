"""Reading one upload from an HTTP request: the body limit, its pace, raw bodies and multipart forms.

The decoders read open binary files (``load_audio``, ``load_face``), so an upload goes to them
as one: a raw body is gathered into one in-memory buffer as it streams in, and a multipart
file is the parser's own spooled file (in memory while small). Nothing is written to a
temporary file of ours or copied again before decoding. The limit is enforced on the stream
itself, so a body that lies about (or omits) its length is cut off at the limit.

A body must also keep arriving (``BodyPace``): after a grace period, at a minimum average
rate, as nginx's ``client_body_timeout`` and Apache's ``mod_reqtimeout`` require. A client
that announces a megabyte and sends a byte a second is answered 408 once it falls behind, so
it cannot hold a connection, or a slot of the service, for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# upload content types -> the suffix the audio/image readers go by first (they fall back to sniffing)
SUFFIXES = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/flac": ".flac",
            "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aac": ".aac",
            "audio/webm": ".webm", "video/webm": ".webm", "audio/opus": ".opus",
            "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/bmp": ".bmp"}


class RequestError(Exception):
    """A request we refuse: its HTTP status and the message the client gets."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class Upload:
    """An uploaded file, open for reading from its start; ``name`` (``upload.wav``) is what
    errors call it and its suffix picks the decoder to try first."""

    file: BinaryIO
    name: str


@dataclass(frozen=True)
class BodyPace:
    """How fast a request body must arrive: byte ``n`` within ``grace_s + n / min_rate`` seconds
    of the request's start (``min_rate`` in bytes per second)."""

    grace_s: float = 10.0
    min_rate: float = 32 * 1024

    def deadline(self, received: int) -> float:
        return self.grace_s + received / self.min_rate


class UploadSlots:
    """Bodies being received, counted apart from requests waiting for the model: at most
    ``total`` at once (503 beyond), and at most ``per_client`` from one client address (429
    beyond), so one address opening connections cannot take every slot. Behind a proxy, every
    client has the proxy's address unless it sends ``X-Forwarded-For`` (uvicorn trusts it from
    ``--forwarded-allow-ips``, 127.0.0.1 by default)."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total, self.per_client = total, per_client
        self.by_client: dict[str, int] = {}
        self.in_progress = 0

    @contextlib.contextmanager
    def hold(self, client: str) -> Iterator[None]:
        if self.in_progress >= self.total:
            raise RequestError(503, "server busy: too many uploads in progress; retry shortly", {"Retry-After": "1"})
        if self.by_client.get(client, 0) >= self.per_client:
            raise RequestError(429, f"too many uploads at once from {client} (at most {self.per_client})",
                               {"Retry-After": "1"})
        self.in_progress += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        try:
            yield
        finally:
            self.in_progress -= 1
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]


async def _paced(stream: AsyncIterator[bytes], pace: BodyPace) -> AsyncIterator[bytes]:
    """``stream``'s chunks, or 408 when the next one is late."""
    loop = asyncio.get_running_loop()
    started, received = loop.time(), 0
    iterator = stream.__aiter__()
    while True:
        wait = pace.deadline(received + 1) - (loop.time() - started)
        try:
            chunk = await asyncio.wait_for(anext(iterator), timeout=max(wait, 0.0))
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestError(408, f"request body too slow: {received} bytes in {loop.time() - started:.0f} s; "
                                    f"send at least {pace.min_rate / 1024:g} kB/s after the first "
                                    f"{pace.grace_s:g} s") from None
        received += len(chunk)
        yield chunk


# A refused body is read and discarded up to this much (and this long) before the 413 is sent,
# as nginx's lingering close does: a client that writes its whole body before reading (Python's
# urllib, many SDKs) would otherwise see its connection reset instead of the answer.
DRAIN_BYTES = 64 << 20
DRAIN_SECONDS = 10.0


async def _drain(stream: AsyncIterator[bytes], already: int = 0) -> None:
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in stream:
                already += len(chunk)
                if already > DRAIN_BYTES:
                    return
    except Exception:  # noqa: BLE001 - a timeout or a disconnect: whatever the client does now, the 413 stands
        return


async def _limited(request, limit: int, pace: BodyPace) -> AsyncIterator[bytes]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        # a client that sent "Expect: 100-continue" waits for this answer before sending the body
        if "100-continue" not in request.headers.get("expect", "").lower() and int(declared) <= DRAIN_BYTES:
            await _drain(request.stream())
        raise RequestError(413, f"request body is {int(declared)} bytes; the limit is {limit}")
    size = 0
    stream = _paced(request.stream(), pace)
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            await _drain(stream, size)
            raise RequestError(413, f"request body exceeds the limit of {limit} bytes")
        yield chunk


async def read_upload(request, field: str, limit: int, pace: BodyPace = BodyPace()) -> Upload:
    """The file of a raw body or of multipart field ``field``; ``RequestError`` (400, 408, 413) else."""
    from starlette.requests import ClientDisconnect

    try:
        return await _read_upload(request, field, _limited(request, limit, pace))
    except ClientDisconnect:
        raise RequestError(400, "the client disconnected before sending the whole body") from None


async def _read_upload(request, field: str, stream: AsyncIterator[bytes]) -> Upload:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _multipart_file(request, stream, field)
    body = io.BytesIO()
    async for chunk in stream:
        body.write(chunk)
    if not body.tell():
        raise RequestError(400, f"empty request body: send the {field} file as the body or as multipart "
                                f"field '{field}'")
    body.seek(0)
    return Upload(body, "upload" + SUFFIXES.get(content_type.split(";")[0].strip().lower(), ""))


async def _multipart_file(request, stream: AsyncIterator[bytes], field: str) -> Upload:
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    try:
        form = await MultiPartParser(request.headers, stream, max_files=4, max_fields=16).parse()
    except MultiPartException as err:
        raise RequestError(400, f"malformed multipart body: {err.message}") from None
    upload = form.get(field)
    if not isinstance(upload, UploadFile):
        raise RequestError(400, f"multipart body has no file field '{field}'")
    if not upload.size:
        raise RequestError(400, f"multipart field '{field}' is empty")
    upload.file.seek(0)
    suffix = Path(upload.filename or "").suffix.lower() or SUFFIXES.get((upload.content_type or "").lower(), "")
    return Upload(upload.file, "upload" + suffix)
