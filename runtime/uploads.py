"""Reading one upload from an HTTP request: the body limit, raw bodies and multipart forms.

The decoders read open binary files (``load_audio``, ``load_face``), so an upload goes to them
as one: a raw body is gathered into one in-memory buffer as it streams in, and a multipart
file is the parser's own spooled file (in memory while small). Nothing is written to a
temporary file of ours or copied again before decoding. The limit is enforced on the stream
itself, so a body that lies about (or omits) its length is cut off at the limit.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
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


# A refused body is read and discarded up to this much (and this long) before the 413 is sent,
# as nginx's lingering close does: a client that writes its whole body before reading (Python's
# urllib, many SDKs) would otherwise see its connection reset instead of the answer.
DRAIN_BYTES = 64 << 20
DRAIN_SECONDS = 10.0


async def _drain(stream: AsyncIterator[bytes], already: int = 0) -> None:
    import asyncio

    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in stream:
                already += len(chunk)
                if already > DRAIN_BYTES:
                    return
    except Exception:  # noqa: BLE001 - a timeout or a disconnect: whatever the client does now, the 413 stands
        return


async def _limited(request, limit: int) -> AsyncIterator[bytes]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        # a client that sent "Expect: 100-continue" waits for this answer before sending the body
        if "100-continue" not in request.headers.get("expect", "").lower() and int(declared) <= DRAIN_BYTES:
            await _drain(request.stream())
        raise RequestError(413, f"request body is {int(declared)} bytes; the limit is {limit}")
    size = 0
    stream = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            await _drain(stream, size)
            raise RequestError(413, f"request body exceeds the limit of {limit} bytes")
        yield chunk


async def read_upload(request, field: str, limit: int) -> Upload:
    """The file of a raw body or of multipart field ``field``; ``RequestError`` (400, 413) else."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await _multipart_file(request, _limited(request, limit), field)
    body = io.BytesIO()
    async for chunk in _limited(request, limit):
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
