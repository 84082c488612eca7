"""``s2f-runtime serve``: speech -> face and face -> face over HTTP, torch-free (Starlette on
uvicorn, onnxruntime underneath).

    POST /v1/speech2face   audio (raw body, or multipart field ``audio``) -> image/png
    POST /v1/face2face     photo (raw body, or multipart field ``image``) -> image/png
                           (``Accept: application/json``: base64 PNG, landmarks, embedding)
    GET  /healthz /readyz /metrics /

What keeps it standing under load and abuse: a request body limit (413), a bounded number of
accepted requests (503 with ``Retry-After`` beyond it), a per-request timeout (504), uploads
decoded in worker threads that read only the seconds the model needs, concurrent requests
micro-batched into one onnxruntime run (``s2f.runtime.batching``), and every failure answered
as JSON ``{"error": ...}`` without a traceback. The process keeps no state between requests:
run as many replicas as you like behind any load balancer.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2f.runtime.batching import MicroBatcher
from s2f.runtime.errors import InputError
from s2f.runtime.metrics import Metrics

log = logging.getLogger(__name__)
WEB_PAGE = Path(__file__).with_name("web") / "index.html"
# upload content types -> the suffix the audio/image readers go by first (they fall back to sniffing)
SUFFIXES = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/flac": ".flac",
            "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aac": ".aac",
            "audio/webm": ".webm", "video/webm": ".webm", "audio/opus": ".opus",
            "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/bmp": ".bmp"}


@dataclass
class ServeConfig:
    """Args:
        max_batch, max_wait_ms: micro-batching (``max_batch=1``: off).
        max_body_mb: larger request bodies get 413.
        max_queue: requests accepted at once (decoding, waiting or running); more get 503.
        timeout_s: a request not answered by then gets 504.
        decode_threads: threads decoding uploads in parallel with inference.
    """

    bundle: Path
    device: str = "auto"
    threads: int | None = None
    precision: str = "fp32"
    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_body_mb: float = 20.0
    max_queue: int = 64
    timeout_s: float = 30.0
    end_to_end: bool | None = None  # None: the bundle's end-to-end graphs when it has them
    decode_threads: int = 2


class RequestError(Exception):
    """A request we refuse: its HTTP status and the message the client gets."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class Service:
    """The bundle's pipelines, their batchers and the admission bookkeeping of one process."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.ready = False
        self.speech = self.face = None
        self.batchers: dict[str, MicroBatcher] = {}
        self.decoding = {"speech2face": 0, "face2face": 0}  # accepted, still being decoded
        self.decoders = ThreadPoolExecutor(config.decode_threads, thread_name_prefix="decode")
        self.metrics.queue_depth = lambda: sum(b.waiting for b in self.batchers.values())

    def open(self) -> None:
        """Open and fully verify the bundle (every sha256), then the sessions it serves."""
        from s2f.runtime.bundle import open_bundle
        from s2f.runtime.pipeline import FaceToFace, SpeechToFace

        bundle = open_bundle(self.config.bundle, verify=True)
        options = dict(device=self.config.device, threads=self.config.threads, precision=self.config.precision,
                       end_to_end=self.config.end_to_end)
        self.speech = SpeechToFace(bundle, **options)
        if bundle.path_of("face_encoder") is not None:
            self.face = FaceToFace(bundle, **options)

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.open)
        wait = self.config.max_wait_ms / 1000
        pipelines = {"speech2face": self.speech, "face2face": self.face}
        for name, pipeline in pipelines.items():
            if pipeline is not None:
                batcher = MicroBatcher(pipeline.generate_batch, self.config.max_batch, wait, self.metrics.observe_batch,
                                       incoming=lambda name=name: self.decoding[name])
                batcher.start()
                self.batchers[name] = batcher
        self.ready = True
        log.info("serving %s (%s)", self.config.bundle, ", ".join(self.batchers))

    async def stop(self) -> None:
        self.ready = False
        for batcher in self.batchers.values():
            await batcher.stop()
        self.decoders.shutdown(wait=False, cancel_futures=True)

    # one request ------------------------------------------------------------------------
    async def generate(self, route: str, data: bytes, suffix: str) -> Any:
        if route not in self.batchers:
            raise RequestError(501, "this bundle has no face encoder: face2face is not available (export the "
                                    "bundle with --face-encoder)")
        loop = asyncio.get_running_loop()
        prepare = self._voice_input if route == "speech2face" else self._face_input
        self.decoding[route] += 1
        try:
            array = await loop.run_in_executor(self.decoders, prepare, data, suffix)
        finally:
            self.decoding[route] -= 1
        return await self.batchers[route].submit(array)

    def _voice_input(self, data: bytes, suffix: str) -> np.ndarray:
        with _upload_file(data, suffix) as path:
            return _as_client_error(lambda: self.speech.prepare_file(path), path)

    def _face_input(self, data: bytes, suffix: str) -> np.ndarray:
        from s2f.runtime.image import load_face

        with _upload_file(data, suffix) as path:
            return _as_client_error(lambda: self.face.prepare(load_face(path)), path)


class _upload_file:
    """The upload as a temporary file (the decoders read files), removed afterwards."""

    def __init__(self, data: bytes, suffix: str) -> None:
        self.handle = tempfile.NamedTemporaryFile(suffix=suffix, prefix="s2f-upload-")
        self.handle.write(data)
        self.handle.flush()

    def __enter__(self) -> Path:
        return Path(self.handle.name)

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def _as_client_error(work, path: Path):
    """Run ``work``; a bad upload becomes a 400 naming the problem (never our temp path)."""
    try:
        return work()
    except (InputError, ValueError) as err:
        problem = err.problem if isinstance(err, InputError) else str(err)
        raise RequestError(400, "upload: " + problem.replace(str(path), "the upload")) from None


def png_bytes(image) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def face_png(face) -> bytes:
    return png_bytes(face.image)


def create_app(config: ServeConfig):
    """The ASGI application (Starlette) serving ``config.bundle``."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    service = Service(config)
    limit = int(config.max_body_mb * 1024 * 1024)

    @asynccontextmanager
    async def lifespan(app):
        await service.start()
        yield
        await service.stop()

    async def read_upload(request: Request, field: str) -> tuple[bytes, str]:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(413, f"request body is {int(declared)} bytes; the limit is {limit}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            return await _multipart_field(request, body, field)
        if not body:
            raise RequestError(400, f"empty request body: send the {field} file as the body or as multipart "
                                    f"field '{field}'")
        return body, SUFFIXES.get(content_type.split(";")[0].strip().lower(), "")

    async def _multipart_field(request: Request, body: bytes, field: str) -> tuple[bytes, str]:
        from starlette.datastructures import UploadFile
        from starlette.formparsers import MultiPartException, MultiPartParser

        async def replay():
            yield body
            yield b""

        try:
            form = await MultiPartParser(request.headers, replay(), max_files=4, max_fields=16).parse()
        except MultiPartException as err:
            raise RequestError(400, f"malformed multipart body: {err.message}") from None
        upload = form.get(field)
        if not isinstance(upload, UploadFile):
            raise RequestError(400, f"multipart body has no file field '{field}'")
        data = await upload.read()
        if not data:
            raise RequestError(400, f"multipart field '{field}' is empty")
        suffix = Path(upload.filename or "").suffix.lower() or SUFFIXES.get((upload.content_type or "").lower(), "")
        return data, suffix

    def generation_endpoint(route: str, field: str):
        async def endpoint(request: Request) -> Response:
            if service.metrics.in_flight >= config.max_queue:
                raise RequestError(503, "server busy: too many requests in progress; retry shortly",
                                   {"Retry-After": "1"})
            service.metrics.in_flight += 1
            try:
                async with asyncio.timeout(config.timeout_s):
                    data, suffix = await read_upload(request, field)
                    face = await service.generate(route, data, suffix)
            except TimeoutError:
                raise RequestError(504, f"not answered within {config.timeout_s:g} s") from None
            finally:
                service.metrics.in_flight -= 1
            png = face_png(face)
            if "application/json" in request.headers.get("accept", ""):
                body = {"image_png_base64": base64.b64encode(png).decode("ascii"),
                        "landmarks": face.landmarks.tolist(), "embedding": face.embedding.astype(float).tolist()}
                if face.aligned is not None:  # a warping decoder's texture in the mean face's frame
                    body["aligned_png_base64"] = base64.b64encode(png_bytes(face.aligned)).decode("ascii")
                return JSONResponse(body)
            return Response(png, media_type="image/png")
        return endpoint

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        if not service.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready", "bundle": str(config.bundle), "routes": sorted(service.batchers)})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")

    async def page(request: Request) -> Response:
        return HTMLResponse(WEB_PAGE.read_text(encoding="utf-8"))

    async def refused(request: Request, err: RequestError) -> Response:
        return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)

    async def failed(request: Request, err: Exception) -> Response:
        log.error("internal error on %s: %s: %s", request.url.path, type(err).__name__, err)
        return JSONResponse({"error": "internal server error"}, status_code=500)

    routes = [Route("/v1/speech2face", generation_endpoint("speech2face", "audio"), methods=["POST"]),
              Route("/v1/face2face", generation_endpoint("face2face", "image"), methods=["POST"]),
              Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics), Route("/", page)]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={RequestError: refused, Exception: failed})
    return _Observed(app, service)


class _Observed:
    """ASGI wrapper: every response is counted and timed, and the request log line written.
    Errors were already answered as JSON by the application's handlers (Starlette re-raises
    unexpected ones after answering); whatever still escapes is answered here if nothing was
    sent yet, and never with a traceback."""

    def __init__(self, app, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, sent = time.perf_counter(), [500], [False]
        route = scope.get("path", "")
        route = route if route in ("/v1/speech2face", "/v1/face2face", "/healthz", "/readyz", "/metrics", "/") \
            else "other"

        async def observed_send(message) -> None:
            if message["type"] == "http.response.start":
                status[0], sent[0] = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:  # noqa: BLE001 - logged with its traceback here, never sent
            log.debug("after the response on %s", route, exc_info=True)
            if not sent[0]:
                status[0] = 500
                await _send_json(send, 500, {"error": "internal server error"})
        finally:
            seconds = time.perf_counter() - started
            self.service.metrics.observe_request(route, status[0], seconds)
            if route.startswith("/v1/"):
                log.info("%s %s %d %.3f s", scope.get("method"), route, status[0], seconds)


async def _send_json(send, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
    import json

    body = json.dumps(payload).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def serve(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service until SIGINT/SIGTERM; in-flight requests finish first (graceful shutdown)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(config), host=host, port=port, log_level="warning",
                                           timeout_graceful_shutdown=max(5, int(config.timeout_s)),
                                           access_log=False))
    server.run()
