"""``s2f weights fetch`` against a local HTTP server on 127.0.0.1 (no internet here)."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest
from support.helpers import run_s2f

from s2f.core.errors import InputError
from s2f.weights.fetch import fetch
from s2f.weights.registry import REGISTRY, lookup

PAYLOAD = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4000  # ~1 MB, HDF5 signature


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD with Range support; the first full GET can be told to drop midway."""

    files: dict[str, bytes] = {}
    drop_first: set[str] = set()
    ranges_seen: list[str] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        start = 0
        header = self.headers.get("Range")
        if header:
            self.ranges_seen.append(header)
            start = int(header.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if name in self.drop_first and not header:
            self.drop_first.discard(name)
            self.wfile.write(body[start:start + len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # connection lost mid-transfer
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    _Handler.files, _Handler.drop_first, _Handler.ranges_seen = {}, set(), []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_registry_holds_upstream_files_and_no_invented_checksums():
    assert set(REGISTRY) >= {"serengil", "rcmalli-vgg16", "rcmalli-resnet50-notop", "rcmalli-senet50"}
    assert REGISTRY["serengil"].urls[0].endswith("deepface_models/releases/download/v1.0/vgg_face_weights.h5")
    assert REGISTRY["rcmalli-senet50-notop"].urls == (
        "https://github.com/rcmalli/keras-vggface/releases/download/v2.0/rcmalli_vggface_tf_notop_senet50.h5",)
    assert all(entry.sha256 is None for entry in REGISTRY.values())  # none published upstream
    with pytest.raises(InputError, match="unknown weights"):
        lookup("vgg19")


def test_fetch_resumes_after_a_dropped_connection(server, tmp_path):
    entry = REGISTRY["rcmalli-vgg16-notop"]
    _Handler.files[entry.filename] = PAYLOAD
    _Handler.drop_first.add(entry.filename)
    path = fetch(entry, tmp_path, mirror=server, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert _Handler.ranges_seen and _Handler.ranges_seen[0] != "bytes=0-"  # resumed, not restarted
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert path.with_name(path.name + ".sha256").read_text().split()[0] == digest
    assert not path.with_name(path.name + ".part").exists()


def test_cli_fetch_and_corruption_detection(server, tmp_path):
    entry = REGISTRY["rcmalli-resnet50"]
    _Handler.files[entry.filename] = PAYLOAD
    done = run_s2f("weights", "fetch", "rcmalli-resnet50", "--cache-dir", tmp_path, "--mirror", server, "--quiet")
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(PAYLOAD).hexdigest() in done.stdout
    target = tmp_path / entry.filename
    with open(target, "r+b") as handle:  # bit rot in the cache
        handle.seek(100)
        handle.write(b"\x00\x01")
    again = run_s2f("weights", "fetch", "rcmalli-resnet50", "--cache-dir", tmp_path, "--mirror", server)
    assert again.returncode == 2 and "no longer matches" in again.stderr


def test_html_error_page_is_rejected(server, tmp_path):
    entry = REGISTRY["serengil"]
    _Handler.files[entry.filename] = b"<html>rate limited</html>"
    done = run_s2f("weights", "fetch", "serengil", "--cache-dir", tmp_path, "--mirror", server, "--quiet")
    assert done.returncode == 2 and "signature" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_missing_file_fails_cleanly(server, tmp_path):
    done = run_s2f("weights", "fetch", "rcmalli-senet50", "--cache-dir", tmp_path, "--mirror", server, "--quiet")
    assert done.returncode == 2
    assert "download failed" in done.stderr and "404" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
