"""The README's picture of the web page: the bundle ``make demo`` trained, served by
``s2f-runtime serve`` and driven in headless Chromium: a photo of an unseen identity is
uploaded and its face -> face result shown. Writes bench/results/serve_page.png.

usage: python bench/serve_page.py [--demo s2f-demo]   (run make demo first)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    from playwright.sync_api import sync_playwright
    from support.serving import Server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=REPO / "s2f-demo")
    args = parser.parse_args()
    training = args.demo / "training"
    test = json.loads((training / "split.json").read_text())["test"]
    voice = sorted((training / "corpus" / test[0] / "audios").glob("*.wav"))[0]
    photo = sorted((training / "corpus" / test[1] / "images").glob("*.png"))[0]
    server = Server(training / "bundle")
    out = REPO / "bench" / "results" / "serve_page.png"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-audio-capture={voice}"])
            page = browser.new_page(viewport={"width": 900, "height": 760})
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.set_input_files("#photo", str(photo))
            page.wait_for_function("document.getElementById('status').textContent === 'done: face2face'")
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
