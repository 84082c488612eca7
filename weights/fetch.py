"""Download a registry file with resume, a progress bar, and verification.

A partial download lives beside the target as ``NAME.part`` and is continued with an HTTP
Range request; the finished file is verified (Content-Length, file signature, and the size
and sha256 where the registry knows them) before it is renamed into place, and its sha256 is
written next to it (``NAME.sha256``) so later runs can detect corruption.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from s2f.core.cache import cache_dir
from s2f.core.errors import InputError
from s2f.core.progress import progress_bar
from s2f.runtime.bundle.reader import sha256_of
from s2f.weights.registry import WeightFile

CHUNK = 1 << 20


def default_cache_dir() -> Path:
    return cache_dir() / "weights"


def _download(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Append the rest of ``url`` to ``part``; raises URLError/OSError on network trouble."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "speech2face"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # already complete
            return
        raise
    with response:
        if have and response.status != 206:  # server ignored Range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as out, progress_bar(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress,
        ) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size != total:
            raise urllib.error.URLError(f"connection closed after {part.stat().st_size} of {total} bytes")


def verify(entry: WeightFile, path: Path) -> str:
    """Check what can be checked; returns the sha256."""
    with open(path, "rb") as handle:
        head = handle.read(len(entry.signature))
    if head != entry.signature:
        raise InputError(path, f"downloaded file does not start with the {entry.filename} "
                               "signature (an HTML error page?)")
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise InputError(path, f"size {size} bytes, expected {entry.size}")
    digest = sha256_of(path)
    if entry.sha256 is not None and digest != entry.sha256:
        raise InputError(path, f"sha256 {digest} does not match the registry's {entry.sha256}")
    return digest


def fetch(entry: WeightFile, cache_dir: Path | None = None, mirror: str | None = None,
          progress: bool = True, timeout: float = 60.0, attempts: int = 3) -> Path:
    """Return the path of ``entry`` in the cache, downloading it if needed.

    ``mirror`` replaces the upstream URLs by ``MIRROR/<filename>`` (a local or corporate copy).
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / entry.filename
    if target.exists():
        stored = target.with_name(target.name + ".sha256")
        if stored.exists() and stored.read_text().split()[0] != sha256_of(target):
            raise InputError(target, f"cached file no longer matches its recorded sha256 ({stored.name}); "
                                     "delete it and fetch again")
        return target
    part = target.with_name(target.name + ".part")
    urls = (mirror.rstrip("/") + "/" + entry.filename,) if mirror else entry.urls
    errors: list[str] = []
    if not _download_from_any(urls, part, progress, timeout, attempts, errors):
        hint = "; rerun to resume from the partial file" if part.exists() else ""
        raise InputError(target, "download failed (" + "; ".join(errors[-2:]) + ")" + hint)
    try:
        digest = verify(entry, part)
    except InputError:
        part.unlink()
        raise
    os.replace(part, target)
    target.with_name(target.name + ".sha256").write_text(f"{digest}  {entry.filename}\n")
    return target


def _download_from_any(urls: tuple[str, ...], part: Path, progress: bool, timeout: float,
                       attempts: int, errors: list[str]) -> bool:
    """Try each URL up to ``attempts`` times, resuming the same partial file throughout."""
    for url in urls:
        for _ in range(attempts):
            try:
                _download(url, part, progress, timeout)
                return True
            except (urllib.error.URLError, OSError, TimeoutError) as err:
                reason = (f"HTTP {err.code} {err.reason}" if isinstance(err, urllib.error.HTTPError)
                          else getattr(err, "reason", None) or err)
                errors.append(f"{url}: {reason}")
                if isinstance(err, urllib.error.HTTPError) and err.code in (403, 404):
                    break
    return False
