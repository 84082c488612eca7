"""``s2f-runtime serve``: speech -> face and face -> face over HTTP, torch-free (Starlette on
uvicorn, onnxruntime underneath).

    POST /v1/speech2face   audio (raw body, or multipart field ``audio``) -> image/png
    POST /v1/face2face     photo (raw body, or multipart field ``image``) -> image/png
                           (``Accept: application/json``: base64 PNG, landmarks, embedding)
    GET  /healthz /readyz /metrics /

What keeps it standing under load and abuse: a request body limit (413, ``s2f.runtime.serve.uploads``),
a minimum pace for bodies (408), bodies being received counted apart from requests waiting for
the model and capped per client address (429), a bounded number of accepted requests (503 with
``Retry-After`` beyond it), a per-request timeout (504), uploads decoded in worker threads
that read only the seconds the model needs, concurrent requests micro-batched into one
onnxruntime run (``s2f.runtime.serve.batching``), and every failure answered as JSON
``{"error": ...}`` without a traceback. The process keeps no state between requests: run as
many replicas as you like behind any load balancer.

The endpoints are module-level functions; what they share (the config and the ``Service``)
is on ``app.state``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2f.core.errors import InputError
from s2f.runtime.engines.options import RunOptions
from s2f.runtime.serve.batching import MicroBatcher
from s2f.runtime.serve.metrics import Metrics
from s2f.runtime.serve.uploads import BodyPace, RequestError, Upload, UploadSlots, read_upload

log = logging.getLogger(__name__)
WEB_PAGE = Path(__file__).with_name("web") / "index.html"
ROUTES = ("/v1/speech2face", "/v1/face2face", "/healthz", "/readyz", "/metrics", "/")


@dataclass
class ServeConfig:
    """Args:
        bundle: the bundle directory to serve (every sha256 is checked when it opens).
        host: address to listen on.
        port: port to listen on.
        max_batch: micro-batching: most requests per onnxruntime run (1: off).
        max_wait_ms: micro-batching: how long a batch waits for more requests on their way.
        max_body_mb: larger request bodies get 413.
        max_queue: requests accepted at once once their body has arrived (decoding, waiting or running);
            more get 503.
        timeout_s: a request whose body has arrived and is not answered within this many seconds gets 504.
        max_uploads: request bodies being received at once; more get 503.
        max_uploads_per_client: request bodies one client address sends at once; more get 429.
        body_grace_s: a request body may take this long, plus its size at --min-body-rate-kb; a slower one gets 408.
        min_body_rate_kb: the slowest average rate, in kB/s, at which a request body may arrive after the grace.
        decode_threads: threads decoding uploads in parallel with inference.
        run: how the bundle runs (``RunOptions``: engine, precision, device, threads, trust).
    """

    bundle: Path
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_body_mb: float = 20.0
    max_queue: int = 64
    timeout_s: float = 30.0
    max_uploads: int = 256
    max_uploads_per_client: int = 64
    body_grace_s: float = 10.0
    min_body_rate_kb: float = 32.0
    decode_threads: int = 2
    run: RunOptions = field(default_factory=RunOptions)

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_queue", "decode_threads", "max_uploads", "max_uploads_per_client"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} (--{name.replace('_', '-')}) must be at least 1, got {getattr(self, name)}")
        for name in ("timeout_s", "max_body_mb", "min_body_rate_kb", "body_grace_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} (--{name.replace('_', '-')}) must be positive, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms (--max-wait-ms) must not be negative, got {self.max_wait_ms}")
        self.bundle = Path(self.bundle)


class Service:
    """The bundle's pipelines, their batchers and the admission bookkeeping of one process."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.ready = False
        self.speech = self.face = None
        self.batchers: dict[str, MicroBatcher] = {}
        self.decoding = {"speech2face": 0, "face2face": 0}  # accepted, still being decoded
        self.decoders = ThreadPoolExecutor(config.decode_threads, thread_name_prefix="decode")
        self.metrics = Metrics(queue_depth=lambda: sum(b.waiting for b in self.batchers.values()))
        self.body_limit = int(config.max_body_mb * 1024 * 1024)
        self.uploads = UploadSlots(config.max_uploads, config.max_uploads_per_client)
        self.pace = BodyPace(config.body_grace_s, config.min_body_rate_kb * 1024)
        self.metrics.uploads_in_progress.set_function(lambda: self.uploads.in_progress)

    def open(self) -> None:
        """Open and fully verify the bundle (every sha256), then the sessions it serves."""
        from s2f.runtime.bundle.reader import open_bundle
        from s2f.runtime.pipeline import FaceToFace, SpeechToFace

        bundle = open_bundle(self.config.bundle, verify=True, cache=self.config.run.verify_cache,
                             trust_key=self.config.run.trust_key)
        self.speech = SpeechToFace(bundle, self.config.run)
        if bundle.path_of("face_encoder") is not None:
            self.face = FaceToFace(bundle, self.config.run)

    async def start(self) -> None:
        if self.speech is None:  # serve() opens the bundle before the server starts listening
            await asyncio.get_running_loop().run_in_executor(None, self.open)
        wait = self.config.max_wait_ms / 1000
        for name, pipeline in {"speech2face": self.speech, "face2face": self.face}.items():
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

    async def generate(self, route: str, upload: Upload) -> Any:
        if route not in self.batchers:
            raise RequestError(501, "this bundle has no face encoder: face2face is not available (export the "
                                    "bundle with --face-encoder)")
        prepare = self._voice_input if route == "speech2face" else self._face_input
        self.decoding[route] += 1
        try:
            array = await asyncio.get_running_loop().run_in_executor(self.decoders, prepare, upload)
        finally:
            self.decoding[route] -= 1
            upload.file.close()
        return await self.batchers[route].submit(array)

    def _voice_input(self, upload: Upload) -> np.ndarray:
        return _as_client_error(lambda: self.speech.prepare_file(upload.file, name=upload.name))

    def _face_input(self, upload: Upload) -> np.ndarray:
        from s2f.runtime.preprocess.images import load_face

        return _as_client_error(lambda: self.face.prepare(load_face(upload.file, name=upload.name)))


def _as_client_error(work):
    """Run ``work``; a bad upload becomes a 400 naming the problem."""
    try:
        return work()
    except (InputError, ValueError) as err:
        raise RequestError(400, "upload: " + (err.problem if isinstance(err, InputError) else str(err))) from None


def png_bytes(image) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _face_response(face, wants_json: bool):
    from starlette.responses import JSONResponse, Response

    png = png_bytes(face.image)
    if not wants_json:
        return Response(png, media_type="image/png")
    body = {"image_png_base64": base64.b64encode(png).decode("ascii"),
            "landmarks": face.landmarks.tolist(), "embedding": face.embedding.astype(float).tolist()}
    if face.aligned is not None:  # a warping decoder's texture in the mean face's frame
        body["aligned_png_base64"] = base64.b64encode(png_bytes(face.aligned)).decode("ascii")
    return JSONResponse(body)


def _refuse_when_busy(service: Service) -> None:
    if service.metrics.in_flight >= service.config.max_queue:
        raise RequestError(503, "server busy: too many requests in progress; retry shortly", {"Retry-After": "1"})


async def _generation(request, route: str, field: str):
    """A body still arriving holds an upload slot (``UploadSlots``, paced by ``BodyPace``),
    never one of the ``max_queue`` slots that wait for the model."""
    service: Service = request.app.state.service
    config = service.config
    _refuse_when_busy(service)  # shed load before reading a body when the model is saturated
    with service.uploads.hold(request.client.host if request.client else "unknown"):
        upload = await read_upload(request, field, service.body_limit, service.pace)
    try:
        _refuse_when_busy(service)
    except RequestError:
        upload.file.close()
        raise
    service.metrics.admit()
    try:
        async with asyncio.timeout(config.timeout_s):
            face = await service.generate(route, upload)
    except TimeoutError:
        raise RequestError(504, f"not answered within {config.timeout_s:g} s") from None
    finally:
        service.metrics.release()
    return _face_response(face, "application/json" in request.headers.get("accept", ""))


async def speech2face(request):
    return await _generation(request, "speech2face", "audio")


async def face2face(request):
    return await _generation(request, "face2face", "image")


async def healthz(request):
    from starlette.responses import JSONResponse

    return JSONResponse({"status": "alive"})


async def readyz(request):
    from starlette.responses import JSONResponse

    service: Service = request.app.state.service
    if not service.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    pipelines = {"speech2face": service.speech, "face2face": service.face}
    engines = {name: pipeline.engines for name, pipeline in pipelines.items() if pipeline is not None}
    return JSONResponse({"status": "ready", "bundle": str(service.config.bundle), "routes": sorted(service.batchers),
                         "engines": engines})


async def metrics(request):
    from starlette.responses import Response

    body, content_type = request.app.state.service.metrics.render()
    return Response(body, media_type=content_type)


async def page(request):
    from starlette.responses import HTMLResponse

    return HTMLResponse(WEB_PAGE.read_text(encoding="utf-8"))


async def refused(request, err: RequestError):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)


@asynccontextmanager
async def lifespan(app):
    await app.state.service.start()
    yield
    await app.state.service.stop()


class ObservedMiddleware:
    """Every response counted and timed, and the request log line written (pure ASGI, so it
    sees the status of streamed and error responses too). Refusals (``RequestError``) were
    already answered as JSON by the application's handler; any other error reaches this
    middleware first (Starlette's own 500 handler sits outside it) and is answered here as a
    JSON 500 if nothing was sent yet, logged as one line, never with a traceback."""

    def __init__(self, app, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, sent = time.perf_counter(), [500], [False]
        route = scope.get("path", "") if scope.get("path", "") in ROUTES else "other"

        async def observed_send(message) -> None:
            if message["type"] == "http.response.start":
                status[0], sent[0] = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception as err:  # noqa: BLE001 - logged as one line (traceback at debug level), never sent
            if not sent[0]:
                log.error("internal error on %s: %s: %s", route, type(err).__name__, err)
            log.debug("traceback of the error on %s", route, exc_info=True)
            if not sent[0]:
                status[0] = 500
                from starlette.responses import JSONResponse

                await JSONResponse({"error": "internal server error"}, status_code=500)(scope, receive, send)
        finally:
            seconds = time.perf_counter() - started
            self.service.metrics.observe_request(route, status[0], seconds)
            if route.startswith("/v1/"):
                log.info("%s %s %d %.3f s", scope.get("method"), route, status[0], seconds)


def create_app(config: ServeConfig, service: Service | None = None):
    """The ASGI application (Starlette) serving ``config.bundle`` (through ``service`` when
    given, e.g. one whose bundle is already open)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    service = service or Service(config)
    routes = [Route("/v1/speech2face", speech2face, methods=["POST"]),
              Route("/v1/face2face", face2face, methods=["POST"]),
              Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics), Route("/", page)]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={RequestError: refused},
                    middleware=[Middleware(ObservedMiddleware, service=service)])
    app.state.service = service
    return app


def serve(config: ServeConfig, on_open=None) -> None:
    """Run the service until SIGINT/SIGTERM; in-flight requests finish first (graceful shutdown).
    The bundle is opened and verified first, so a bundle that cannot be served is one
    ``InputError`` (exit 2) before anything listens."""
    import uvicorn

    service = Service(config)
    service.open()
    if on_open is not None:
        on_open()
    server = uvicorn.Server(uvicorn.Config(create_app(config, service), host=config.host, port=config.port,
                                           log_level="warning", timeout_graceful_shutdown=max(5, int(config.timeout_s)),
                                           access_log=False))
    server.run()
