"""Read speech from any common file into float32 mono at the model's rate, in bounded memory.

wav/flac/ogg/mp3 go through libsndfile (``soundfile``, codecs bundled in its wheel);
m4a/aac/mp4/webm (VoxCeleb2 ships m4a) through FFmpeg's libraries bundled in PyAV. No ffmpeg
binary is needed. Audio is decoded block by block, mixed down to mono and resampled with
soxr's streaming resampler, so a one-hour file costs memory only for what is kept:
``max_seconds`` stops decoding as soon as enough audio has been read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from s2f.core.errors import InputError

BLOCK_FRAMES = 1 << 16
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".webm"})
PYAV_SUFFIXES = {".m4a", ".aac", ".mp4", ".webm", ".opus", ".mka", ".mkv", ".wma"}
SILENCE_RMS = 1e-6  # -120 dBFS: below this a clip is treated as silent and left as is

# a file by name, or an open binary file (an HTTP upload): both decoders read either
AudioSource = str | Path | BinaryIO


def _soundfile_blocks(source: Path | BinaryIO, path: Path) -> tuple[int, Iterator[np.ndarray]]:
    import soundfile

    try:
        handle = soundfile.SoundFile(str(source) if isinstance(source, Path) else source)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise _Unreadable(str(err)) from None

    def blocks() -> Iterator[np.ndarray]:
        with handle:
            while True:
                try:
                    block = handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                except (soundfile.LibsndfileError, RuntimeError) as err:
                    raise InputError(path, f"cannot decode audio ({err})") from None
                if not len(block):
                    return
                yield block.mean(axis=1, dtype=np.float32)

    return handle.samplerate, blocks()


def _pyav_blocks(source: Path | BinaryIO, path: Path) -> tuple[int, Iterator[np.ndarray]]:
    import av

    try:
        container = av.open(str(source) if isinstance(source, Path) else source, mode="r")
        stream = next(s for s in container.streams if s.type == "audio")
    except StopIteration:
        raise _Unreadable("no audio stream") from None
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise _Unreadable(str(err).split(";")[0]) from None
    rate = stream.codec_context.sample_rate or stream.rate
    if not rate:
        container.close()
        raise _Unreadable("audio stream has no sample rate")
    converter = av.AudioResampler(format="fltp")  # planar float32, layout and rate kept

    def blocks() -> Iterator[np.ndarray]:
        with container:
            try:
                for frame in container.decode(stream):
                    for converted in converter.resample(frame):
                        yield converted.to_ndarray().mean(axis=0, dtype=np.float32)
            except av.FFmpegError as err:
                raise InputError(path, f"cannot decode audio ({err})") from None

    return rate, blocks()


class _Unreadable(Exception):
    pass


def _open_blocks(source: Path | BinaryIO, path: Path) -> tuple[int, Iterator[np.ndarray]]:
    readers = (_pyav_blocks, _soundfile_blocks) if path.suffix.lower() in PYAV_SUFFIXES else (
        _soundfile_blocks, _pyav_blocks)
    reasons = []
    for reader in readers:
        if not isinstance(source, Path):
            source.seek(0)  # the other reader may have read into it
        try:
            return reader(source, path)
        except _Unreadable as err:
            reasons.append(str(err).strip().splitlines()[0] if str(err).strip() else "unreadable")
    raise InputError(path, f"not a readable audio file ({reasons[0][:160]})")


def _checked_source(source: AudioSource, name: str | None) -> tuple[Path | BinaryIO, Path]:
    """The source to decode and the name its errors give: a file must exist and hold bytes."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise InputError(path, "file not found" if not path.exists() else "not a regular file")
        if path.stat().st_size == 0:
            raise InputError(path, "file is empty")
        return path, path
    path = Path(name or getattr(source, "name", None) or "the upload")
    source.seek(0, 2)
    if source.tell() == 0:
        raise InputError(path, "file is empty")
    source.seek(0)
    return source, path


def load_audio(source: AudioSource, sample_rate: int = 16000, max_seconds: float | None = None,
               name: str | None = None) -> np.ndarray:
    """Decode ``source`` (a path, or an open binary file named ``name`` in errors; its suffix
    picks the decoder to try first) to float32 mono at ``sample_rate``, in [-1, 1].

    Multichannel audio is averaged to mono; any input rate is resampled with soxr (VHQ).
    ``max_seconds`` reads only the first that many seconds (decoding stops there).
    Raises ``InputError`` for missing, empty, undecodable or non-finite audio.
    """
    import soxr

    source, path = _checked_source(source, name)
    rate, blocks = _open_blocks(source, path)
    if rate <= 0:
        raise InputError(path, f"invalid sample rate {rate}")
    wanted = None if max_seconds is None else int(round(max_seconds * sample_rate))
    resampler = None if rate == sample_rate else soxr.ResampleStream(rate, sample_rate, 1, dtype="float32",
                                                                     quality="VHQ")
    pieces: list[np.ndarray] = []
    kept = 0
    source_limit = None if max_seconds is None else int(np.ceil(max_seconds * rate)) + 1024
    read = 0
    for block in blocks:
        if not np.isfinite(block).all():
            raise InputError(path, "audio contains NaN or infinite samples")
        if source_limit is not None and read + len(block) > source_limit:
            block = block[: max(source_limit - read, 0)]
        read += len(block)
        out = resampler.resample_chunk(block) if resampler else block
        pieces.append(out)
        kept += len(out)
        if source_limit is not None and read >= source_limit:
            break
    if resampler is not None:
        pieces.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    waveform = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if wanted is not None:
        waveform = waveform[:wanted]
    if waveform.size == 0:
        raise InputError(path, "no audio samples (zero-length recording)")
    return np.clip(waveform, -1.0, 1.0).astype(np.float32, copy=False)


def rms_dbfs(waveform: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3 dBFS)."""
    rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))
    return -np.inf if rms == 0 else 20.0 * np.log10(rms)


def normalize_loudness(waveform: np.ndarray, target_dbfs: float = -23.0) -> np.ndarray:
    """RMS-normalise to ``target_dbfs`` (the original used ffmpeg-normalize at -23 dBFS).

    Silence (RMS below -120 dBFS) is returned unchanged instead of being amplified into
    noise or divided by zero. If the gain would clip, it is reduced so the peak is exactly
    full scale: loudness then falls short of the target rather than distorting.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))) if waveform.size else 0.0
    if rms < SILENCE_RMS:
        return waveform.copy()
    gain = 10.0 ** (target_dbfs / 20.0) / rms
    peak = float(np.max(np.abs(waveform)))
    gain = min(gain, 1.0 / peak)
    return (waveform * np.float32(gain)).astype(np.float32)


PCM16_SCALE = 32768.0


def to_pcm16(waveform: np.ndarray) -> np.ndarray:
    """The waveform as a 16-bit PCM file holds it, read back as float (FFmpeg's conversion:
    round half to even of ``x * 32768``, clipped to the int16 range)."""
    steps = np.clip(np.rint(np.asarray(waveform, np.float32) * np.float32(PCM16_SCALE)), -32768, 32767)
    return (steps / np.float32(PCM16_SCALE)).astype(np.float32)


def fit_duration(waveform: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """Exactly ``seconds`` long: loop a short clip (as the paper does), crop a long one."""
    target = int(round(seconds * sample_rate))
    if waveform.size == 0:
        raise ValueError("cannot fit an empty waveform")
    if waveform.size >= target:
        return waveform[:target]
    repeats = -(-target // waveform.size)
    return np.tile(waveform, repeats)[:target]
