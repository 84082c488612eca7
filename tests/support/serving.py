"""A real ``s2f-runtime serve`` process for tests, and small HTTP helpers."""

from __future__ import annotations

import io
import uuid

import numpy as np
from PIL import Image

from s2f.core.errors import InputError
from s2f.runtime.serve.process import ServerProcess


class Server(ServerProcess):
    """The runtime's own launcher; a server that does not come up fails the test."""

    def __init__(self, bundle, *flags: str) -> None:
        try:
            super().__init__(bundle, *flags, ready_timeout=60)
        except InputError as err:
            raise AssertionError(str(err)) from None


def multipart(field: str, filename: str, data: bytes, content_type: str) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
