"""The web page in a real browser: Debian's Chromium, headless, driven by Playwright, with a
fake microphone that plays a test clip. Record -> stop -> generate must show a 224x224 face
that is not blank, and the server must log the speech2face request; uploading a photo must
show face -> face. A screenshot is saved in the test's tmp dir (and at $S2F_SCREENSHOT when set).

.ci/run installs Chromium with apt-get when missing; elsewhere the test is skipped without it.
"""

from __future__ import annotations

import os
import shutil

import pytest
import soundfile
from support.helpers import SAMPLE_FACE, small_models
from support.serving import Server

from s2f.data.synth_voice import speech_clip
from s2f.export.bundle import export_bundle

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (.ci/run installs it)")]

FACE_STATS = """() => {
  const image = document.getElementById("face");
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0, squares = 0, count = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    for (let c = 0; c < 3; c++) { sum += pixels[i + c]; squares += pixels[i + c] ** 2; count++; }
  }
  const mean = sum / count;
  return {width: image.naturalWidth, height: image.naturalHeight, std: Math.sqrt(squares / count - mean * mean),
          route: image.dataset.route};
}"""


def test_record_generate_and_upload_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "chromium is missing although CI is set: .ci/run installs it"
    export_bundle(tmp_path / "bundle", *small_models())
    clip = tmp_path / "microphone.wav"
    soundfile.write(clip, speech_clip(4.0, 48000, f0=150.0), 48000, subtype="PCM_16")
    server = Server(tmp_path / "bundle")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
                      "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={clip}"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.click("#record")
            page.wait_for_timeout(2500)
            page.click("#stop")
            page.wait_for_function("!document.getElementById('generate').disabled", timeout=10_000)
            page.click("#generate")
            page.wait_for_function("/^(done|error)/.test(document.getElementById('status').textContent)",
                                   timeout=60_000)
            assert page.text_content("#status") == "done: speech2face"
            page.wait_for_function("document.getElementById('face').complete")
            face = page.evaluate(FACE_STATS)
            assert (face["width"], face["height"], face["route"]) == (224, 224, "speech2face")
            assert face["std"] > 1.0, face  # a face, not a blank square
            page.screenshot(path=str(tmp_path / "speech2face.png"), full_page=True)

            page.set_input_files("#photo", str(SAMPLE_FACE))
            page.wait_for_function("document.getElementById('status').textContent === 'done: face2face'",
                                   timeout=60_000)
            page.wait_for_function("document.getElementById('face').dataset.route === 'face2face' && "
                                   "document.getElementById('face').complete")
            face = page.evaluate(FACE_STATS)
            assert (face["width"], face["height"]) == (224, 224) and face["std"] > 1.0
            assert page.is_visible("#photo-view")
            page.screenshot(path=str(tmp_path / "face2face.png"), full_page=True)
            if os.environ.get("S2F_SCREENSHOT"):
                shutil.copy(tmp_path / "face2face.png", os.environ["S2F_SCREENSHOT"])
            browser.close()
    finally:
        _, log = server.stop()
    assert "POST /v1/speech2face 200" in log and "POST /v1/face2face 200" in log
