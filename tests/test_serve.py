"""``s2f-runtime serve`` as a real server process on 127.0.0.1: every endpoint, every refusal
(400, 404/405, 408, 413, 429, 500, 501, 503, 504) as one JSON line without a traceback, the same faces as
the Python runtime, micro-batching of concurrent requests, and a graceful SIGTERM that
answers every request already accepted."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import signal
import socket
import threading
import time

import numpy as np
import pytest
import soundfile
from support.helpers import SAMPLE_FACE, rewrite_manifest_to_match
from support.serving import Server, multipart, png_pixels

from s2f.data.synth_voice import speech_clip
from s2f.runtime.pipeline import FaceToFace, SpeechToFace

EMBEDDING = 2048


@pytest.fixture(scope="module")
def bundles(shared_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    return (shared_bundle(root / "full", embedding_dim=EMBEDDING, with_face_encoder=True),
            shared_bundle(root / "voice_only", embedding_dim=EMBEDDING))


@pytest.fixture(scope="module")
def voice_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "voice.wav"
    soundfile.write(path, speech_clip(3.0, 16000, f0=140.0), 16000)
    return path


@pytest.fixture(scope="module")
def server(bundles):
    running = Server(bundles[0], "--max-wait-ms", "50")
    yield running
    running.stop()


def test_a_served_face_is_the_python_runtimes_on_the_micro_bundle(micro, tmp_path):
    """The fast tier's server: a real process on the micro bundle answers what SpeechToFace does."""
    clip = tmp_path / "clip.wav"
    soundfile.write(clip, speech_clip(2.0, 16000, f0=150.0), 16000)
    expected = SpeechToFace(micro / "bundle", device="cpu").generate_from_file(clip)
    running = Server(micro / "bundle", "--max-batch", "1")
    try:
        assert running.request("GET", "/readyz")[0] == 200
        status, headers, body = running.request("POST", "/v1/speech2face", clip.read_bytes(),
                                                {"Content-Type": "audio/wav"})
        assert status == 200 and headers["content-type"] == "image/png"
        pixels = png_pixels(body)
        assert pixels.shape == (224, 224, 3) and pixels.std() > 1.0
        np.testing.assert_array_equal(pixels, expected.image)
        status, _, body = running.request("POST", "/v1/speech2face", b"not audio", {"Content-Type": "audio/wav"})
        assert status == 400 and "error" in json.loads(body) and b"Traceback" not in body
    finally:
        running.stop()


@pytest.mark.slow
def test_status_endpoints_and_page(server):
    assert server.request("GET", "/healthz")[0] == 200
    status, _, body = server.request("GET", "/readyz")
    assert status == 200 and json.loads(body)["routes"] == ["face2face", "speech2face"]
    status, headers, body = server.request("GET", "/")
    page = body.decode()
    assert status == 200 and "text/html" in headers["content-type"]
    assert "getUserMedia" in page and 'fetch("/v1/" + route' in page and '"speech2face"' in page
    assert "http://" not in page and "https://" not in page  # no external assets: works offline


@pytest.mark.slow
def test_speech_to_face_matches_the_python_runtime(server, bundles, voice_wav):
    expected = SpeechToFace(bundles[0], device="cpu").generate_from_file(voice_wav)
    raw = server.request("POST", "/v1/speech2face", voice_wav.read_bytes(), {"Content-Type": "audio/wav"})
    body, headers = multipart("audio", "clip.wav", voice_wav.read_bytes(), "audio/wav")
    form = server.request("POST", "/v1/speech2face", body, headers)
    for status, headers, data in (raw, form):
        assert status == 200 and headers["content-type"] == "image/png"
        pixels = png_pixels(data)
        assert pixels.shape == (224, 224, 3) and pixels.std() > 1.0  # a picture, not a blank
        np.testing.assert_array_equal(pixels, expected.image)
    status, headers, data = server.request("POST", "/v1/speech2face", voice_wav.read_bytes(),
                                           {"Content-Type": "audio/wav", "Accept": "application/json"})
    answer = json.loads(data)
    assert status == 200 and headers["content-type"] == "application/json"
    np.testing.assert_array_equal(png_pixels(base64.b64decode(answer["image_png_base64"])), expected.image)
    np.testing.assert_allclose(answer["landmarks"], expected.landmarks, rtol=1e-6)
    np.testing.assert_allclose(answer["embedding"], expected.embedding, rtol=1e-6)


@pytest.mark.slow
def test_face_to_face_matches_the_python_runtime(server, bundles):
    expected = FaceToFace(bundles[0], device="cpu").generate_from_file(SAMPLE_FACE)
    body, headers = multipart("image", "face.jpg", SAMPLE_FACE.read_bytes(), "image/jpeg")
    status, headers, data = server.request("POST", "/v1/face2face", body, headers)
    assert status == 200 and headers["content-type"] == "image/png"
    np.testing.assert_array_equal(png_pixels(data), expected.image)


def _json_error(response, status: int) -> str:
    code, headers, data = response
    assert code == status, (code, data)
    assert headers["content-type"] == "application/json"
    message = json.loads(data)["error"]
    assert "Traceback" not in message and "/tmp/" not in message and "s2f-upload" not in message
    return message


@pytest.mark.slow
def test_bad_requests_are_json_errors_and_the_server_keeps_serving(server, voice_wav):
    assert "not a readable audio file" in _json_error(
        server.request("POST", "/v1/speech2face", b"RIFF-not-really-a-wave" * 50), 400)
    assert "empty request body" in _json_error(server.request("POST", "/v1/speech2face", b""), 400)
    body, headers = multipart("wrong", "clip.wav", voice_wav.read_bytes(), "audio/wav")
    assert "no file field 'audio'" in _json_error(server.request("POST", "/v1/speech2face", body, headers), 400)
    truncated = {"Content-Type": "multipart/form-data; boundary=xyz"}
    assert _json_error(server.request("POST", "/v1/speech2face", b"--xyz\r\nContent-Disp", truncated), 400)
    silent = io.BytesIO()
    soundfile.write(silent, np.zeros(16000, np.float32), 16000, format="WAV")
    assert "silent" in _json_error(server.request("POST", "/v1/speech2face", silent.getvalue()), 400)
    assert "image" in _json_error(server.request("POST", "/v1/face2face", b"\x89PNG\r\n\x1a\nbroken"), 400)
    assert server.request("GET", "/v1/speech2face")[0] == 405
    assert server.request("GET", "/nowhere")[0] == 404
    assert server.request("POST", "/v1/speech2face", voice_wav.read_bytes())[0] == 200  # still serving
    metrics = server.request("GET", "/metrics")[2].decode()
    assert 's2f_requests_total{route="/v1/speech2face",status="400"}' in metrics


@pytest.mark.slow
def test_concurrent_requests_are_batched(server, voice_wav):
    data = voice_wav.read_bytes()
    results = []

    def call():
        results.append(server.request("POST", "/v1/speech2face", data)[0])

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8
    metrics = server.request("GET", "/metrics")[2].decode()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
              if line and not line.startswith("#")}
    singles, total = values['s2f_batch_size_bucket{le="1.0"}'], values["s2f_batch_size_count"]
    assert total > singles  # some onnxruntime runs carried several requests
    for name in ("s2f_request_duration_seconds_bucket", "s2f_queue_depth", "s2f_requests_in_flight"):
        assert name in metrics


@pytest.mark.slow
def test_limits_busy_and_missing_face_encoder(bundles, voice_wav):
    strict = Server(bundles[1], "--max-body-mb", "0.05", "--max-queue", "1", "--max-wait-ms", "200")
    try:
        assert "limit" in _json_error(strict.request("POST", "/v1/speech2face", bytes(100_000)), 413)
        # a client that writes its whole body before reading the answer still gets the 413, not a reset
        import urllib.error
        import urllib.request

        for extra in ({}, {"Transfer-Encoding": "chunked"}):
            body = bytes(25 << 20) if not extra else iter([bytes(1 << 20)] * 25)
            request = urllib.request.Request(f"http://127.0.0.1:{strict.port}/v1/speech2face", data=body,
                                             headers={"Content-Type": "audio/wav", **extra})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=60)
            assert refused.value.code == 413 and "limit" in json.loads(refused.value.read())["error"]
        # one that asks first (Expect: 100-continue) gets the 413 before it sends anything
        connection = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=30)
        connection.putrequest("POST", "/v1/speech2face")
        for name, value in (("Content-Type", "audio/wav"), ("Content-Length", str(25 << 20)),
                            ("Expect", "100-continue")):
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        assert answer.status == 413 and "limit" in json.loads(answer.read())["error"]
        connection.close()
        message = _json_error(strict.request("POST", "/v1/face2face", SAMPLE_FACE.read_bytes()[:1000]), 501)
        assert "no face encoder" in message
        small = voice_wav.read_bytes()[:40_000]  # under the body limit, still a valid (shorter) wav
        codes, retry = [], []

        def call():
            status, headers, _ = strict.request("POST", "/v1/speech2face", small)
            codes.append(status)
            retry.append(headers.get("retry-after"))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
        assert all(value == "1" for value, code in zip(retry, codes, strict=True) if code == 503)
    finally:
        strict.stop()
    slow = Server(bundles[1], "--timeout-s", "0.001")
    try:
        answer = slow.request("POST", "/v1/speech2face", voice_wav.read_bytes())
        assert "not answered within" in _json_error(answer, 504)
    finally:
        slow.stop()


@pytest.mark.slow
def test_sigterm_answers_every_accepted_request(bundles, voice_wav):
    """Four requests are half uploaded when SIGTERM arrives; each is still answered in full."""
    server = Server(bundles[1])
    data = voice_wav.read_bytes()
    connections = []
    for _ in range(4):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.putrequest("POST", "/v1/speech2face")
        connection.putheader("Content-Type", "audio/wav")
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders()
        connection.send(data[: len(data) // 2])
        connections.append(connection)
    time.sleep(0.3)  # the server has accepted them and is reading their bodies
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    codes = []
    for connection in connections:
        connection.send(data[len(data) // 2:])
        response = connection.getresponse()
        codes.append((response.status, response.getheader("content-type"), png_pixels(response.read()).shape))
        connection.close()
    returncode = server.process.wait(timeout=30)
    stderr = server.process.stderr.read()
    assert codes == [(200, "image/png", (224, 224, 3))] * 4
    # uvicorn re-raises the signal once it has shut down, so the exit status is "ended by SIGTERM"
    assert returncode in (0, -signal.SIGTERM) and "Traceback" not in stderr
    assert stderr.count("POST /v1/speech2face 200") == 4
    with pytest.raises(OSError):  # and it no longer takes new requests
        server.request("GET", "/healthz", timeout=5)


def _slow_upload(port: int, address: str) -> socket.socket:
    """A client on ``address`` that announces a 1 MB body and has sent none of it yet."""
    client = socket.socket()
    client.bind((address, 0))
    client.connect(("127.0.0.1", port))
    client.sendall(b"POST /v1/speech2face HTTP/1.1\r\nHost: localhost\r\nContent-Type: audio/wav\r\n"
                   b"Content-Length: 1000000\r\n\r\n")
    return client


def _status_line(client: socket.socket, timeout: float) -> str:
    client.settimeout(timeout)
    try:
        return client.recv(4096).split(b"\r\n", 1)[0].decode()
    except (TimeoutError, ConnectionError):
        return ""


@pytest.mark.slow
def test_slow_uploads_do_not_starve_real_requests(bundles, voice_wav):
    """80 clients from ten loopback addresses announce a megabyte each and send a byte a second;
    with only four model slots, requests from another address are still answered at once, the
    slow ones get 408 after the grace, and a ninth upload from one address gets 429."""
    server = Server(bundles[1], "--max-queue", "4", "--max-uploads-per-client", "8", "--body-grace-s", "4")
    slow = [_slow_upload(server.port, f"127.0.0.{2 + k % 10}") for k in range(80)]
    stop = threading.Event()

    def trickle():
        while not stop.wait(1.0):
            for client in slow:
                with contextlib.suppress(OSError):
                    client.send(b"R")

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    try:
        started = time.monotonic()
        ninth = _slow_upload(server.port, "127.0.0.2")
        assert _status_line(ninth, 5) == "HTTP/1.1 429 Too Many Requests"
        ninth.close()
        data, answered = voice_wav.read_bytes(), []
        while time.monotonic() - started < 3.0:  # all 80 still uploading (grace 4 s)
            status, _, body = server.request("POST", "/v1/speech2face", data, timeout=10)
            answered.append((status, png_pixels(body).shape if status == 200 else body))
        metrics = server.request("GET", "/metrics")[2].decode()
        assert "s2f_uploads_in_progress 80.0" in metrics, [m for m in metrics.splitlines() if "uploads" in m]
        assert len(answered) >= 3 and answered == [(200, (224, 224, 3))] * len(answered)
        lines = [_status_line(client, 10) for client in slow]
        assert lines == ["HTTP/1.1 408 Request Timeout"] * 80
        assert time.monotonic() - started < 12
        assert server.request("POST", "/v1/speech2face", data)[0] == 200
        assert "s2f_uploads_in_progress 0.0" in server.request("GET", "/metrics")[2].decode()
    finally:
        stop.set()
        for client in slow:
            client.close()
        server.stop()


@pytest.mark.slow
def test_a_graph_that_fails_to_run_is_a_json_500_and_the_server_keeps_serving(bundles, voice_wav, tmp_path):
    """The speech->face graph loads but fails in onnxruntime on every run: each request gets a
    JSON 500 naming no file and no traceback; face->face, from the same server, still answers."""
    import shutil

    from onnx import TensorProto, helper, numpy_helper

    bundle = tmp_path / "bundle"
    shutil.copytree(bundles[0], bundle)
    waveform = helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("image", "landmarks",
                                                                                          "embedding")]
    shape = numpy_helper.from_array(np.array([3, 5], dtype=np.int64), "impossible")
    nodes = [helper.make_node("Reshape", ["waveform", "impossible"], ["reshaped"])]
    nodes += [helper.make_node("Identity", ["reshaped"], [name]) for name in ("image", "landmarks", "embedding")]
    graph = helper.make_graph(nodes, "fails", [waveform], outputs, [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    (bundle / "speech2face.onnx").write_bytes(model.SerializeToString())
    rewrite_manifest_to_match(bundle, "speech2face.onnx")
    server = Server(bundle)
    try:
        for _ in range(2):
            assert _json_error(server.request("POST", "/v1/speech2face", voice_wav.read_bytes()), 500) == \
                "internal server error"
        status, headers, body = server.request("POST", "/v1/face2face", SAMPLE_FACE.read_bytes())
        assert status == 200 and png_pixels(body).shape == (224, 224, 3)
        assert server.request("GET", "/healthz")[0] == 200
    finally:
        _, stderr = server.stop()
    assert "Traceback" not in stderr and "onnxruntime failed to run this graph" in stderr, stderr[-2000:]
