"""Uploads reach the decoders as open files (no temporary file), and the service's metrics
come from prometheus_client."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
from PIL import Image

from s2f.assets import SAMPLE_FACE
from s2f.core.errors import InputError
from s2f.data.synth_voice import speech_clip
from s2f.runtime.preprocess.audio import load_audio
from s2f.runtime.preprocess.images import load_face


@pytest.mark.parametrize("fmt,suffix", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg")])
def test_audio_from_an_open_file_equals_audio_from_its_path(tmp_path, fmt, suffix):
    clip = speech_clip(2.0, 22050, seed=1)
    path = tmp_path / f"clip{suffix}"
    soundfile.write(path, clip, 22050, format=fmt)
    from_path = load_audio(path, 16000, max_seconds=1.5)
    from_file = load_audio(io.BytesIO(path.read_bytes()), 16000, max_seconds=1.5, name=f"upload{suffix}")
    np.testing.assert_array_equal(from_file, from_path)
    assert from_file.shape == (24000,) and np.abs(from_file).max() > 0.1


def test_an_m4a_upload_is_decoded_by_pyav_from_memory(tmp_path):
    import av

    path = tmp_path / "clip.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(speech_clip(1.0, 16000)[None, :], format="flt", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    waveform = load_audio(io.BytesIO(path.read_bytes()), 16000, name="upload.m4a")
    assert abs(len(waveform) - 16000) < 2048 and np.abs(waveform).max() > 0.05
    # a multipart upload arrives as the parser's spooled file, opened "w+b": still read, never written
    import tempfile

    with tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b") as spooled:
        spooled.write(path.read_bytes())
        np.testing.assert_array_equal(load_audio(spooled, 16000, name="upload.m4a"), waveform)


def test_bad_uploads_are_named_as_the_upload_not_a_path():
    with pytest.raises(InputError, match=r"^upload\.wav: not a readable audio file"):
        load_audio(io.BytesIO(b"RIFF\x00\x00not really"), name="upload.wav")
    with pytest.raises(InputError, match=r"^upload: file is empty"):
        load_audio(io.BytesIO(b""), name="upload")
    with pytest.raises(InputError, match=r"^upload\.png: not an image PIL can read"):
        load_face(io.BytesIO(b"\x89PNG broken"), name="upload.png")


def test_a_photo_from_an_open_file_equals_the_photo_from_its_path():
    from_path = load_face(SAMPLE_FACE)
    from_file = load_face(io.BytesIO(SAMPLE_FACE.read_bytes()), name="upload.jpg")
    np.testing.assert_array_equal(from_file, from_path)
    assert from_file.ndim == 3 and from_file.std() > 10
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 30), (255, 0, 0, 0)).save(buffer, format="PNG")
    assert load_face(buffer, name="upload.png").max() == 0  # transparent -> black, as from a file


def test_metrics_are_prometheus_exposition_from_one_registry_per_service():
    from prometheus_client.parser import text_string_to_metric_families

    from s2f.runtime.serve.metrics import Metrics

    waiting = [3]
    metrics, other = Metrics(queue_depth=lambda: waiting[0]), Metrics()
    metrics.observe_request("/v1/speech2face", 200, 0.2)
    metrics.observe_request("/v1/speech2face", 400, 0.01)
    metrics.observe_batch(4)
    metrics.admit()
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert samples[("s2f_requests_total", (("route", "/v1/speech2face"), ("status", "400")))] == 1
    assert samples[("s2f_request_duration_seconds_bucket", (("le", "0.25"), ("route", "/v1/speech2face")))] == 2
    assert samples[("s2f_request_duration_seconds_bucket", (("le", "0.1"), ("route", "/v1/speech2face")))] == 1
    assert samples[("s2f_batch_size_bucket", (("le", "2.0"),))] == 0
    assert samples[("s2f_batch_size_bucket", (("le", "4.0"),))] == 1
    assert samples[("s2f_queue_depth", ())] == 3 and samples[("s2f_requests_in_flight", ())] == 1
    assert b"s2f_requests_total{" not in other.render()[0]  # another service counts nothing of these


def test_upload_slots_cap_all_uploads_and_each_client_and_free_them():
    from s2f.runtime.serve.uploads import RequestError, UploadSlots

    slots = UploadSlots(total=3, per_client=2)
    with slots.hold("10.0.0.1"), slots.hold("10.0.0.1"):
        with pytest.raises(RequestError) as per_client:
            with slots.hold("10.0.0.1"):
                pass
        assert per_client.value.status == 429 and per_client.value.headers == {"Retry-After": "1"}
        with slots.hold("10.0.0.2"):
            with pytest.raises(RequestError) as total:
                with slots.hold("10.0.0.3"):
                    pass
            assert total.value.status == 503 and slots.in_progress == 3
    assert slots.in_progress == 0 and slots.by_client == {}
    with pytest.raises(ValueError), slots.hold("10.0.0.1"):  # a failing upload frees its slot too
        raise ValueError("decoder failed")
    assert slots.in_progress == 0 and slots.by_client == {}


def test_a_body_that_falls_behind_the_pace_gets_408_and_one_that_keeps_up_does_not():
    import asyncio

    from s2f.runtime.serve.uploads import BodyPace, RequestError, _paced

    async def trickle(chunks: int, size: int, every: float):
        for _ in range(chunks):
            await asyncio.sleep(every)
            yield b"x" * size

    async def receive(stream, pace):
        return sum([len(chunk) async for chunk in _paced(stream, pace)])

    pace = BodyPace(grace_s=0.2, min_rate=1000)  # byte n due by 0.2 s + n ms
    assert asyncio.run(receive(trickle(5, 100, 0.05), pace)) == 500  # 2000 bytes/s: keeps up
    with pytest.raises(RequestError) as slow:
        asyncio.run(receive(trickle(50, 1, 0.05), pace))  # 20 bytes/s: behind after the grace
    assert slow.value.status == 408 and "request body too slow" in slow.value.message
    assert pace.deadline(0) == 0.2 and pace.deadline(1000) == pytest.approx(1.2)
