"""What ADD fetches: http(s) downloads (conditional on a cached rebuild) and git checkouts.

A download goes to an unnamed temp file on the host, outside every root; with
`--checksum` a mismatch fails before anything is written; the file's name is
the URL path's last part (else Content-Disposition's), its mtime
Last-Modified's. `validators` turns what the last download of a URL said
(ETag, Last-Modified) into a conditional GET, so a cached rebuild asks the
server instead of downloading again.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import posixpath
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from freight import errors

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Download:
    file: BinaryIO  # positioned at 0
    filename: str
    mtime: float | None
    digest: str
    etag: str = ""
    last_modified: str = ""


def validators(known: dict[str, str] | None) -> dict[str, str]:
    """Conditional GET headers from what the last download of a URL said."""
    if not known:
        return {}
    headers = {}
    if known.get("etag"):
        headers["If-None-Match"] = known["etag"]
    if known.get("last_modified"):
        headers["If-Modified-Since"] = known["last_modified"]
    return headers


def git_checkout(url: str, dest: Path, keep_git_dir: bool) -> Path:
    from freight.builder import context  # lazily: it brings the git and http machinery

    return context.git_checkout(url, dest, keep_git_dir)


def checksum_of(checksum: str) -> tuple[str, str]:
    algorithm, _, value = checksum.partition(":")
    if algorithm not in ("sha256", "sha384", "sha512") or not re.fullmatch(
        r"[0-9a-f]+", value or "-"
    ):
        raise errors.InvalidArgument(f"invalid checksum digest format: {checksum}")
    return algorithm, value


@contextlib.contextmanager
def download(
    url: str, checksum: str | None, conditions: dict[str, str] | None = None
) -> Iterator[Download | None]:
    """GET `url` into an unnamed temp file (on the host, outside every root);
    with `checksum`, a mismatch raises before the caller writes anything.
    With `conditions` (If-None-Match...), None when the server answers 304."""
    import httpx  # lazily: only ADD of a URL needs it

    algorithm, expected = checksum_of(checksum) if checksum else ("sha256", "")
    h = hashlib.new(algorithm)
    with tempfile.TemporaryFile(prefix="freight-add-") as f:
        try:
            with httpx.stream(
                "GET", url, headers=conditions or {}, follow_redirects=True, timeout=60
            ) as resp:
                if resp.status_code == 304 and conditions:
                    yield None
                    return
                if resp.status_code >= 400:
                    raise errors.InvalidArgument(
                        f"failed to GET {url} with status {resp.status_code} "
                        f"{resp.reason_phrase}".rstrip()
                    )
                for chunk in resp.iter_bytes(_CHUNK):
                    h.update(chunk)
                    f.write(chunk)
                headers = resp.headers
        except httpx.HTTPError as e:
            raise errors.InvalidArgument(f"failed to GET {url}: {e}") from None
        actual = f"{algorithm}:{h.hexdigest()}"
        if checksum and h.hexdigest() != expected:
            raise errors.InvalidArgument(f"checksum mismatch: digest mismatch {actual}: {checksum}")
        f.flush()
        f.seek(0)
        yield Download(
            f,
            _filename(url, headers.get("content-disposition")),
            _last_modified(headers.get("last-modified")),
            actual,
            headers.get("etag") or "",
            headers.get("last-modified") or "",
        )


def _filename(url: str, disposition: str | None) -> str:
    """The URL path's last name, else Content-Disposition's filename (as docker)."""
    from urllib.parse import unquote, urlsplit

    name = posixpath.basename(unquote(urlsplit(url).path).rstrip("/"))
    if name or not disposition:
        return name
    found = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", disposition, re.IGNORECASE)
    return posixpath.basename(unquote(found.group(1))) if found else ""


def _last_modified(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
