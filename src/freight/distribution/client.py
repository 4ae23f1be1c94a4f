"""An HTTP client for one registry (the OCI distribution / Docker registry v2 API).

Owns: endpoints, auth challenges and token fetch (Basic; Bearer with scopes,
anonymous or with credentials, tokens cached per scope and refreshed on a
401), manifest fetch capped at 4 MiB and checked against the digest asked
for, blob download checked for size (never more bytes than the descriptor
says) with Range resume after a dropped connection, blob HEAD, mount and
upload (monolithic or chunked), manifest PUT, tags and search.

httpx (sync) is used from worker threads: the daemon runs services in
threads (the content store and unpacking block anyway), httpx does
streaming, timeouts and connection pooling over HTTP/1.1, and it drops the
Authorization header on a redirect to another origin, so credentials only
go to the host they belong to.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import httpx

from freight.distribution.auth import ANONYMOUS, Challenge, Credentials, parse_challenges
from freight.errors import FreightError, InvalidArgument, NotFound, PermissionDenied, Unavailable
from freight.oci import mediatypes
from freight.oci.digest import Digest

log = logging.getLogger(__name__)

MAX_MANIFEST = 4 << 20
_DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
CHUNK = 1 << 20
RETRIES = 3  # then backoff 0.5+1+2 s gone: a clear error, a later pull resumes


class Unauthorized(PermissionDenied):
    """The registry refused the credentials (or wants some)."""


class RegistryError(FreightError):
    """An error the registry reported: its code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message if message else code.lower().replace('_', ' ')}")
        self.status = status
        self.code = code
        self.message = message


class Sink(Protocol):
    offset: int

    def write(self, data: bytes) -> int: ...


@dataclass(frozen=True)
class Endpoint:
    host: str  # as in references: "localhost:5000", "docker.io"
    url: str  # "https://registry-1.docker.io"
    verify: bool = True


@dataclass(frozen=True)
class FetchedManifest:
    data: bytes
    media_type: str
    digest: Digest


def api_host(host: str) -> str:
    return "registry-1.docker.io" if host in ("docker.io", "index.docker.io") else host


class RegistryClient:
    """Talks to one endpoint for one set of credentials; safe across threads."""

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Credentials = ANONYMOUS,
        timeout: float = 30.0,
        backoff: float = 0.5,
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.backoff = backoff
        self._http = httpx.Client(
            verify=endpoint.verify,
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            headers={"User-Agent": "freight (docker-compatible)"},
        )
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self._basic = False  # the registry asked for Basic

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # auth ---------------------------------------------------------------

    def _auth_header(self, scope: str) -> dict[str, str]:
        if self._basic and not self.credentials.empty:
            return {"Authorization": self.credentials.basic_header()}
        token = self._tokens.get(scope)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self.credentials.registry_token:
            return {"Authorization": f"Bearer {self.credentials.registry_token}"}
        return {}

    def _answer(self, response: httpx.Response, scope: str) -> bool:
        """Handle a 401's challenge; True when a retry may now succeed."""
        challenges = parse_challenges(response.headers.get("www-authenticate", ""))
        for ch in challenges:
            if ch.scheme == "bearer" and ch.realm:
                self._tokens[scope] = self._fetch_token(ch, scope)
                return True
            if ch.scheme == "basic":
                if self.credentials.empty or self._basic:
                    return False
                self._basic = True
                return True
        return False

    def _fetch_token(self, ch: Challenge, scope: str) -> str:
        params = {"service": ch.params.get("service", "")}
        wanted = scope or ch.params.get("scope", "")
        if wanted:
            params["scope"] = wanted
        headers: dict[str, str] = {}
        creds = self.credentials
        if creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "service": params["service"],
                "client_id": "freight",
            }
            if wanted:
                form["scope"] = wanted
            r = self._http.post(ch.realm, data=form)
        else:
            if creds.username or creds.password:
                headers["Authorization"] = creds.basic_header()
            r = self._http.get(ch.realm, params=params, headers=headers)
        if r.status_code in (401, 403):
            raise Unauthorized(_error_text(r) or "unauthorized: incorrect username or password")
        if r.status_code != 200:
            raise Unavailable(f"token service {ch.realm} answered {r.status_code}")
        try:
            doc = r.json()
        except ValueError:
            raise Unavailable(f"token service {ch.realm} sent no JSON") from None
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise Unavailable(f"token service {ch.realm} sent no token")
        return token

    # requests -------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.endpoint.url.rstrip("/") + path

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
        rewind: Callable[[], bytes | Iterator[bytes] | None] | None = None,
    ) -> httpx.Response:
        """One request, answering an auth challenge once. Streamed responses must be closed."""
        if not url.startswith(("http://", "https://")):
            url = self._url(url)
        for attempt in range(2):
            hdrs = dict(headers or {})
            # Only to our own host: a Location may point elsewhere (httpx strips
            # Authorization on cross-origin redirects too).
            if _same_host(url, self.endpoint.url):
                hdrs.update(self._auth_header(scope))
            req = self._http.build_request(
                method, _with_query(url, params), headers=hdrs, content=content
            )
            try:
                r = self._http.send(req, stream=stream)
            except httpx.TransportError as e:
                raise Unavailable(f"{method} {_redact(url)}: {e or type(e).__name__}") from e
            if r.status_code != 401 or attempt:
                return r
            r.read()  # small; read so that a caller may still look at the error
            if not self._answer(r, scope):
                return r
            if rewind is not None:
                content = rewind()
        return r

    def ping(self) -> None:
        """GET /v2/ (what login checks): Unauthorized on bad credentials."""
        r = self._send("GET", "/v2/", "")
        if r.status_code == 401:
            raise Unauthorized("unauthorized: " + (_error_text(r) or "authentication required"))
        if r.status_code >= 400:
            raise Unavailable(f"{self.endpoint.host} answered /v2/ with {r.status_code}")

    # manifests ------------------------------------------------------------

    def get_manifest(
        self, repo: str, reference: str, accept: tuple[str, ...] = ()
    ) -> FetchedManifest:
        accept = accept or mediatypes.MANIFEST_ACCEPT
        url = f"/v2/{repo}/manifests/{reference}"
        r = self._retrying(
            lambda: self._send(
                "GET", url, _pull(repo), headers={"Accept": ", ".join(accept)}, stream=True
            )
        )
        try:
            _raise_for(r, repo, reference)
            length = r.headers.get("content-length")
            if length and int(length) > MAX_MANIFEST:
                raise InvalidArgument(
                    f"manifest {reference} is too big: {length} bytes (limit 4 MiB)"
                )
            buf = bytearray()
            for chunk in r.iter_bytes(1 << 16):
                buf += chunk
                if len(buf) > MAX_MANIFEST:
                    raise InvalidArgument(f"manifest {reference} is too big: over 4 MiB")
        finally:
            r.close()
        data = bytes(buf)
        digest = Digest.of(data)
        if reference.startswith("sha256:") and digest != reference:
            raise InvalidArgument(
                f"manifest verification failed for digest {reference}: got {digest}"
            )
        header = r.headers.get("docker-content-digest")
        if header and header.startswith("sha256:") and header != digest:
            raise InvalidArgument(
                f"manifest verification failed: registry says {header}, content is {digest}"
            )
        media_type = r.headers.get("content-type", "").split(";")[0].strip()
        try:
            declared = json.loads(data).get("mediaType")
        except (ValueError, AttributeError):
            raise InvalidArgument(f"manifest {reference} is not JSON") from None
        media_type = declared or media_type
        if media_type in (mediatypes.DOCKER_MANIFEST_V1_SIGNED, _DOCKER_MANIFEST_V1):
            raise InvalidArgument(
                "Docker Image Format v1 and Docker Image manifest version 2, schema 1 "
                "support has been removed"
            )
        if media_type not in mediatypes.MANIFESTS | mediatypes.INDEXES:
            raise InvalidArgument(f"unsupported manifest media type: {media_type!r}")
        return FetchedManifest(data, media_type, digest)

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> Digest:
        r = self._send(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            _push(repo),
            headers={"Content-Type": media_type},
            content=data,
        )
        _raise_for(r, repo, reference)
        return Digest.of(data)

    def tags(self, repo: str) -> list[str]:
        r = self._send("GET", f"/v2/{repo}/tags/list", _pull(repo))
        _raise_for(r, repo, "")
        return list(r.json().get("tags") or [])

    # blobs ----------------------------------------------------------------

    def blob_exists(self, repo: str, digest: Digest, scope: str = "") -> bool:
        r = self._send("HEAD", f"/v2/{repo}/blobs/{digest}", scope or _pull(repo))
        if r.status_code == 404:
            return False
        _raise_for(r, repo, str(digest))
        return True

    def download_blob(
        self,
        repo: str,
        digest: Digest,
        size: int,
        open_sink: Callable[[], Sink],
        progress: Callable[[int], None] = lambda n: None,
    ) -> Sink:
        """Stream the blob into a sink; after a dropped connection, go on with Range.

        Never takes more than `size` bytes; the caller checks the digest (the
        sink hashes as it writes). A 200 to a Range request restarts the sink.
        """
        sink = open_sink()
        failures = 0
        while True:
            if sink.offset > size:
                sink = open_sink()  # more than the blob: what was kept is not it
            if sink.offset == size:
                return sink  # an earlier pull got it all; the digest check decides
            headers = {"Range": f"bytes={sink.offset}-"} if sink.offset else {}
            try:
                r = self._send(
                    "GET", f"/v2/{repo}/blobs/{digest}", _pull(repo), headers=headers, stream=True
                )
            except Unavailable:
                failures += 1
                if failures > RETRIES:
                    raise
                time.sleep(self.backoff * 2 ** (failures - 1))
                continue
            try:
                if r.status_code == 200 and sink.offset:
                    sink = open_sink()  # the registry ignored Range: from the start
                elif r.status_code not in (200, 206):
                    _raise_for(r, repo, str(digest))
                    raise Unavailable(f"blob {digest}: unexpected status {r.status_code}")
                for chunk in r.iter_raw():  # as received: a cut keeps every byte that came
                    if sink.offset + len(chunk) > size:
                        raise InvalidArgument(
                            f"blob {digest} is longer than the {size} bytes its descriptor says"
                        )
                    sink.write(chunk)
                    progress(sink.offset)
                if sink.offset < size:
                    raise httpx.RemoteProtocolError("body ended early")
                return sink
            except (httpx.TransportError, httpx.StreamError) as e:
                failures += 1
                if failures > RETRIES:
                    raise Unavailable(
                        f"downloading {digest}: {e or type(e).__name__} (after {RETRIES} retries)"
                    ) from e
                log.info("blob %s: %s at %d bytes, resuming", digest, e, sink.offset)
                time.sleep(self.backoff * 2 ** (failures - 1))
            finally:
                r.close()

    def mount_blob(self, repo: str, digest: Digest, source_repo: str) -> str | None:
        """Cross-repository mount: None when mounted, else an upload location to use."""
        scope = f"{_push(repo)} repository:{source_repo}:pull"
        r = self._send(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scope,
            params={"mount": str(digest), "from": source_repo},
        )
        if r.status_code == 201:
            return None
        _raise_for(r, repo, str(digest))
        return self._location(r)

    def upload_blob(
        self,
        repo: str,
        digest: Digest,
        size: int,
        open_file: Callable[[], BinaryIO],
        progress: Callable[[int], None] = lambda n: None,
        chunk_size: int = 0,
        location: str | None = None,
    ) -> None:
        """POST an upload, then PUT the blob whole, or PATCH it in chunks and PUT."""
        if location is None:
            r = self._send("POST", f"/v2/{repo}/blobs/uploads/", _push(repo))
            _raise_for(r, repo, str(digest))
            location = self._location(r)
        with open_file() as f:
            if chunk_size:
                sent = 0
                while sent < size:
                    data = f.read(chunk_size)
                    if not data:
                        break
                    r = self._send(
                        "PATCH",
                        location,
                        _push(repo),
                        headers={
                            "Content-Type": "application/octet-stream",
                            "Content-Range": f"{sent}-{sent + len(data) - 1}",
                        },
                        content=data,
                    )
                    _raise_for(r, repo, str(digest))
                    location = self._location(r)
                    sent += len(data)
                    progress(sent)
                body: bytes | Iterator[bytes] = b""
            else:
                body = _file_chunks(f, progress)
            r = self._send(
                "PUT",
                location,
                _push(repo),
                params={"digest": str(digest)},
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)}
                if not chunk_size
                else {"Content-Type": "application/octet-stream"},
                content=body,
            )
        _raise_for(r, repo, str(digest))

    def _location(self, r: httpx.Response) -> str:
        loc = r.headers.get("location")
        if not loc:
            raise Unavailable(f"registry sent no upload location ({r.status_code})")
        return urllib.parse.urljoin(str(r.url), loc)

    # search ---------------------------------------------------------------

    def search(self, term: str, limit: int) -> list[dict[str, object]]:
        """The v1 search API, else (registries without it) the v2 catalog filtered by name."""
        r = self._send("GET", "/v1/search", "", params={"q": term, "n": str(limit)})
        if r.status_code == 200:
            return list(r.json().get("results") or [])[:limit]
        r = self._send("GET", "/v2/_catalog", "registry:catalog:*", params={"n": "1000"})
        _raise_for(r, "", "")
        names = [n for n in r.json().get("repositories") or [] if term.lower() in n.lower()]
        return [
            {
                "name": n,
                "description": "",
                "star_count": 0,
                "is_official": False,
                "is_automated": False,
            }
            for n in names[:limit]
        ]

    def _retrying(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        for failures in range(RETRIES + 1):
            try:
                r = call()
            except Unavailable:
                if failures == RETRIES:
                    raise
                time.sleep(self.backoff * 2**failures)
                continue
            if r.status_code in (502, 503, 504) and failures < RETRIES:
                r.close()
                time.sleep(self.backoff * 2**failures)
                continue
            return r
        raise AssertionError("unreachable")


def _file_chunks(f: BinaryIO, progress: Callable[[int], None]) -> Iterator[bytes]:
    sent = 0
    while data := f.read(CHUNK):
        sent += len(data)
        yield data
        progress(sent)


def _with_query(url: str, params: dict[str, str] | None) -> str:
    """Add params to a URL that may already carry a query (upload locations do)."""
    if not params:
        return url
    sep = "&" if "?" in url else "?"
    return url + sep + urllib.parse.urlencode(params)


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def _same_host(url: str, base: str) -> bool:
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    return (a.hostname, a.port) == (b.hostname, b.port)


def _redact(url: str) -> str:
    return url.split("?", 1)[0]


def _error_text(r: httpx.Response) -> str:
    try:
        if not r.is_stream_consumed:
            r.read()
        errs = r.json().get("errors") or []
    except (ValueError, AttributeError, httpx.StreamError):
        return ""
    return "; ".join(
        f"{str(e.get('code', '')).lower()}: {e.get('message', '')}"
        for e in errs
        if isinstance(e, dict)
    )


def _first_code(r: httpx.Response) -> tuple[str, str]:
    try:
        errs = r.json().get("errors") or []
        e = errs[0]
        return str(e.get("code", "")), str(e.get("message", ""))
    except (ValueError, AttributeError, IndexError, KeyError, TypeError, httpx.HTTPError):
        return "", ""


def _raise_for(r: httpx.Response, repo: str, reference: str) -> None:
    if r.status_code < 400:
        return
    if not r.is_stream_consumed:
        with contextlib.suppress(httpx.HTTPError, httpx.StreamError):
            r.read()
    code, message = _first_code(r)
    if r.status_code in (401, 403) or code in ("UNAUTHORIZED", "DENIED", "NAME_UNKNOWN"):
        raise RegistryError(
            r.status_code, code or "UNAUTHORIZED", message or "authentication required"
        )
    if r.status_code == 404:
        raise RegistryError(404, code or "NOT_FOUND", message or "not found")
    raise RegistryError(
        r.status_code, code or str(r.status_code), message or f"{r.reason_phrase} ({r.status_code})"
    )


__all__ = [
    "Endpoint",
    "FetchedManifest",
    "NotFound",
    "RegistryClient",
    "RegistryError",
    "Unauthorized",
]
