"""The registry's HTTP API: OCI Distribution Spec v1.1 endpoints, token service, hub extras.

Routes (every `/v2/` response carries `Docker-Distribution-API-Version: registry/2.0`):

    GET        /v2/                                   API check (401 + challenge with accounts)
    GET        /v2/_catalog?n=&last=                  repositories the caller may pull
    GET        /v2/<name>/tags/list?n=&last=
    GET/HEAD   /v2/<name>/manifests/<tag|digest>      content negotiation on Accept
    PUT/DELETE /v2/<name>/manifests/<tag|digest>
    GET/HEAD   /v2/<name>/blobs/<digest>              Range; sent with sendfile
    DELETE     /v2/<name>/blobs/<digest>
    POST       /v2/<name>/blobs/uploads/              ?digest= monolithic, ?mount=&from=
    GET/PATCH/PUT/DELETE /v2/<name>/blobs/uploads/<uuid>
    GET        /v2/<name>/referrers/<digest>?artifactType=
    GET        /token?service=&scope=                 JWTs (freight.registry.tokens)
    GET        /v1/search?q=&n=&page=                 Docker Hub's search shape
    GET        /healthz, /metrics                     operations

`Handlers` holds the endpoints; `Registry` (the HTTP app) routes, authenticates, maps
failures to the spec's error bodies and writes the access log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

from freight import errors
from freight.oci import mediatypes
from freight.oci.digest import Digest
from freight.registry import codes
from freight.registry.accounts import Accounts, Policy, User
from freight.registry.codes import RegistryError
from freight.registry.config import Config
from freight.registry.httpserver import ClientGone, FileBody, Request, Response, StreamBody
from freight.registry.hub import Hub
from freight.registry.storage import (
    BlobStat,
    NameInvalid,
    RangeInvalid,
    UploadUnknown,
    check_name,
    is_tag,
)
from freight.registry.storagebase import BlobInfo, RegistryStorage, auth_dir, open_storage
from freight.registry.tokens import Scope, TokenService, parse_scope
from freight.registry.web import WebUI

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
JSON = "application/json"
PAGE_MAX = 1000
SEARCH_PAGE_DEFAULT = 25
MANIFEST_TYPES = mediatypes.MANIFESTS | mediatypes.INDEXES

_ROUTES = [
    ("base", re.compile(r"/v2/?")),
    ("catalog", re.compile(r"/v2/_catalog")),
    ("tags", re.compile(r"/v2/(?P<name>.+)/tags/list")),
    ("manifest", re.compile(r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)")),
    ("uploads", re.compile(r"/v2/(?P<name>.+)/blobs/uploads/?")),
    ("upload", re.compile(r"/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)")),
    ("blob", re.compile(r"/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)")),
    ("referrers", re.compile(r"/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)")),
    ("token", re.compile(r"/token/?")),
    ("search", re.compile(r"/v1/search")),
    ("health", re.compile(r"/healthz|/health")),
    ("metrics", re.compile(r"/metrics")),
    ("web", re.compile(r"/|/ui/.*|/r/.+")),
]
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?")

_access_log = logging.getLogger("freight.registry.access")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: a user (None: anonymous) and, with a token, what it grants."""

    user: User | None
    token_scopes: list[Scope] | None = None
    authenticated: bool = False

    @property
    def name(self) -> str:
        return self.user.name if self.user else ""


def _json(obj: object, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, [("Content-Type", JSON), *(headers or [])], json.dumps(obj).encode())


def _parse_digest(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except errors.InvalidArgument as exc:
        raise RegistryError(codes.DIGEST_INVALID, str(exc), message="invalid digest") from None


def _page_size(req: Request, default: int | None) -> int | None:
    raw = req.arg("n")
    if raw is None or raw == "":
        return default
    try:
        n = int(raw)
    except ValueError:
        raise RegistryError(codes.PAGINATION_NUMBER_INVALID, {"n": raw}) from None
    if n < 0:
        raise RegistryError(codes.PAGINATION_NUMBER_INVALID, {"n": raw})
    return min(n, PAGE_MAX)


def _paginate(items: list[str], req: Request, path: str) -> tuple[list[str], list[tuple[str, str]]]:
    last = req.arg("last")
    if last:
        items = [i for i in items if i > last]
    n = _page_size(req, None)
    if n is None or len(items) <= n:
        return items, []
    page = items[:n]
    link = f'<{path}?n={n}&last={page[-1] if page else ""}>; rel="next"'
    return page, [("Link", link)]


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.bytes_sent = 0
        self.bytes_received = 0
        self.started = time.time()

    def render(self, uploads: int) -> bytes:
        lines = [
            "# HELP freight_registry_requests_total HTTP requests by method and status.",
            "# TYPE freight_registry_requests_total counter",
        ]
        for (method, status), n in sorted(self.requests.items()):
            lines.append(
                f'freight_registry_requests_total{{method="{method}",code="{status}"}} {n}'
            )
        lines += [
            "# TYPE freight_registry_sent_bytes_total counter",
            f"freight_registry_sent_bytes_total {self.bytes_sent}",
            "# TYPE freight_registry_received_bytes_total counter",
            f"freight_registry_received_bytes_total {self.bytes_received}",
            "# TYPE freight_registry_uploads_in_progress gauge",
            f"freight_registry_uploads_in_progress {uploads}",
            "# TYPE freight_registry_start_time_seconds gauge",
            f"freight_registry_start_time_seconds {self.started:.0f}",
        ]
        return ("\n".join(lines) + "\n").encode()


class Registry:
    """The HTTP application (`freight.registry.httpserver.App`)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.storage: RegistryStorage = open_storage(config)
        self.accounts = Accounts(auth_dir(config))
        self.policy = Policy(self.accounts, config.public)
        self.tokens = TokenService(auth_dir(config), config.service, config.token_expiry)
        self.metrics = Metrics()
        self.hub = Hub(self.storage)
        self.web = WebUI(self.storage, self.accounts, self.policy, self.tokens, self.hub)
        self.access_log = True

    async def __call__(self, req: Request) -> Response:
        started = time.monotonic()
        caller: Caller | None = None
        try:
            route, match = self._route(req.path)
            caller = await self._identify(req)
            resp = await getattr(self, f"_{route}")(req, caller, **match)
        except RegistryError as exc:
            resp = Response(exc.status, [("Content-Type", JSON), *exc.headers], exc.body())
        except ClientGone:
            raise
        except Exception:
            _log.exception("registry request %s %s failed", req.method, req.path)
            exc = RegistryError(codes.UNKNOWN)
            resp = Response(500, [("Content-Type", JSON)], exc.body())
        resp.headers.append(API_VERSION)
        self._record(req, resp, caller, started)
        return resp

    def _record(self, req: Request, resp: Response, caller: Caller | None, started: float) -> None:
        body = resp.body
        size = body.length if isinstance(body, FileBody | StreamBody) else len(body)
        if req.method == "HEAD":
            size = 0
        self.metrics.requests[(req.method, resp.status)] += 1
        self.metrics.bytes_sent += size
        if self.access_log and _access_log.isEnabledFor(logging.INFO):
            entry = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "remote": req.remote,
                "user": caller.name if caller else "",
                "method": req.method,
                "path": req.raw_path,
                "status": resp.status,
                "bytes": size,
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
            }
            _access_log.info(json.dumps(entry))

    def _route(self, path: str) -> tuple[str, dict[str, str]]:
        for name, pattern in _ROUTES:
            m = pattern.fullmatch(path)
            if m:
                groups = m.groupdict()
                if "name" in groups:
                    try:
                        check_name(groups["name"])
                    except NameInvalid as exc:
                        raise RegistryError(codes.NAME_INVALID, str(exc)) from None
                return name, groups
        raise RegistryError(codes.NOT_FOUND, path, message="no such endpoint")

    # --- authentication ------------------------------------------------------------

    async def _identify(self, req: Request) -> Caller:
        header = req.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and value:
            verified = self.tokens.verify(value.strip())
            if verified is None:
                raise RegistryError(
                    codes.UNAUTHORIZED,
                    message="invalid or expired token",
                    headers=[self._challenge(req, None, 'error="invalid_token"')],
                )
            sub, scopes = verified
            return Caller(self.accounts.get(sub) if sub else None, scopes, authenticated=bool(sub))
        if scheme == "basic" and value:
            user = await self._basic(value)
            if user is None:
                raise RegistryError(
                    codes.UNAUTHORIZED,
                    message="invalid username or password",
                    headers=[self._challenge(req, None)],
                )
            return Caller(user, None, authenticated=True)
        return Caller(None)

    async def _basic(self, value: str) -> User | None:
        try:
            name, _, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            return None
        return await asyncio.to_thread(self.accounts.verify, name, password)

    def _challenge(self, req: Request, scope: str | None, extra: str = "") -> tuple[str, str]:
        realm = self.config.realm or f"{self._scheme()}://{req.header('host') or 'localhost'}/token"
        parts = [f'realm="{realm}"', f'service="{self.config.service}"']
        if scope:
            parts.append(f'scope="{scope}"')
        if extra:
            parts.append(extra)
        return ("WWW-Authenticate", "Bearer " + ",".join(parts))

    def _scheme(self) -> str:
        return "https" if self.config.tls_cert else "http"

    def _granted(self, caller: Caller, repo: str, actions: list[str]) -> bool:
        if caller.token_scopes is not None and not self.policy.open():
            held = {
                a
                for s in caller.token_scopes
                if s.type == "repository" and s.name == repo
                for a in s.actions
            }
            return all(a in held for a in actions)
        return self.policy.allowed(caller.user, repo, actions) == actions

    def _authorize(self, req: Request, caller: Caller, repo: str, actions: list[str]) -> None:
        if self.config.read_only and req.method in _WRITES:
            raise RegistryError(codes.UNSUPPORTED, message="the registry is in read-only mode")
        if self._granted(caller, repo, actions):
            return
        scope = f"repository:{repo}:{','.join(actions)}"
        if caller.token_scopes is None and caller.authenticated:
            raise RegistryError(codes.DENIED, {"repository": repo, "actions": actions})
        raise RegistryError(
            codes.UNAUTHORIZED,
            [{"Type": "repository", "Name": repo, "Action": a} for a in actions],
            headers=[
                self._challenge(
                    req, scope, 'error="insufficient_scope"' if caller.authenticated else ""
                )
            ],  # fmt: skip
        )

    # --- base, catalog, tags ---------------------------------------------------------

    async def _base(self, req: Request, caller: Caller) -> Response:
        if not self.policy.open() and not caller.authenticated:
            raise RegistryError(codes.UNAUTHORIZED, headers=[self._challenge(req, None)])
        return _json({})

    async def _catalog(self, req: Request, caller: Caller) -> Response:
        _method(req, "GET")
        repos = [r for r in self.storage.repositories() if self._may_list(caller, r)]
        page, link = _paginate(repos, req, "/v2/_catalog")
        return _json({"repositories": page}, headers=link)

    def _may_list(self, caller: Caller, repo: str) -> bool:
        # Listing follows the user's rights, whatever the token says about the catalog.
        return self.policy.allowed(caller.user, repo, ["pull"]) == ["pull"]

    async def _tags(self, req: Request, caller: Caller, name: str) -> Response:
        _method(req, "GET")
        self._authorize(req, caller, name, ["pull"])
        if not self.storage.repo_exists(name):
            raise RegistryError(codes.NAME_UNKNOWN, {"name": name})
        page, link = _paginate(self.storage.tags(name), req, f"/v2/{name}/tags/list")
        return _json({"name": name, "tags": page}, headers=link)

    # --- manifests --------------------------------------------------------------------

    async def _manifest(self, req: Request, caller: Caller, name: str, ref: str) -> Response:
        if req.method in ("GET", "HEAD"):
            self._authorize(req, caller, name, ["pull"])
            return self._get_manifest(req, name, ref)
        if req.method == "PUT":
            self._authorize(req, caller, name, ["pull", "push"])
            return await self._put_manifest(req, name, ref)
        if req.method == "DELETE":
            self._authorize(req, caller, name, ["delete"])
            return self._delete_manifest(name, ref)
        raise _unsupported(req)

    def _resolve(self, name: str, ref: str) -> Digest:
        if ":" in ref:
            digest = _parse_digest(ref)
        elif is_tag(ref):
            found = self.storage.resolve_tag(name, ref)
            if found is None:
                raise self._unknown_manifest(name, ref)
            digest = found
        else:
            raise RegistryError(codes.TAG_INVALID, {"tag": ref}, message="invalid tag")
        return digest

    def _unknown_manifest(self, name: str, ref: str) -> RegistryError:
        if not self.storage.repo_exists(name):
            return RegistryError(codes.NAME_UNKNOWN, {"name": name})
        return RegistryError(codes.MANIFEST_UNKNOWN, {"name": name, "reference": ref})

    def _get_manifest(self, req: Request, name: str, ref: str) -> Response:
        digest = self._resolve(name, ref)
        media_type = self.storage.manifest_type(name, digest)
        if media_type is None:
            raise self._unknown_manifest(name, ref)
        if not _accepts(req.header("accept"), media_type):
            raise RegistryError(
                codes.MANIFEST_UNKNOWN,
                {"mediaType": media_type, "accept": req.header("accept")},
                message=f"manifest is a {media_type}, which the request does not accept",
            )
        body = self.storage.read_blob(digest)
        if req.method == "GET":
            self.hub.count_pull(name)
        headers = [
            ("Content-Type", media_type),
            ("Docker-Content-Digest", digest),
            ("ETag", f'"{digest}"'),
        ]
        return Response(200, headers, body)

    async def _put_manifest(self, req: Request, name: str, ref: str) -> Response:
        limit = self.config.max_manifest_size
        try:
            data = await req.read(limit)
        except ValueError:
            raise RegistryError(codes.TOO_LARGE, {"limit": limit}, message=f"manifest larger than {limit} bytes") from None  # fmt: skip
        expected = _parse_digest(ref) if ":" in ref else None
        if expected is None and not is_tag(ref):
            raise RegistryError(codes.TAG_INVALID, {"tag": ref}, message="invalid tag")
        manifest, media_type = _parse_manifest(data, req.header("content-type"))
        self._check_references(name, manifest, media_type)
        try:
            digest = self.storage.put_manifest(name, data, media_type, expected)
        except errors.InvalidArgument as exc:
            raise RegistryError(codes.DIGEST_INVALID, str(exc)) from None
        headers = [
            ("Location", f"/v2/{name}/manifests/{digest}"),
            ("Docker-Content-Digest", digest),
        ]
        subject = manifest.get("subject")
        if isinstance(subject, dict):
            subject_digest = _parse_digest(str(subject.get("digest", "")))
            self.storage.add_referrer(name, subject_digest, digest, _referrer(manifest, media_type, digest, len(data)))  # fmt: skip
            headers.append(("OCI-Subject", subject_digest))
        if expected is None:
            self.storage.set_tag(name, ref, digest)
        return Response(201, headers)

    def _check_references(self, name: str, manifest: dict, media_type: str) -> None:
        if media_type in mediatypes.INDEXES:
            for child in _descriptors(manifest.get("manifests"), "manifests"):
                if self.storage.manifest_type(name, child) is None:
                    raise RegistryError(codes.MANIFEST_BLOB_UNKNOWN, {"digest": child})
            return
        config = manifest.get("config")
        if not isinstance(config, dict):
            raise RegistryError(codes.MANIFEST_INVALID, "manifest has no config descriptor")
        refs = _descriptors([config], "config")
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            raise RegistryError(codes.MANIFEST_INVALID, "manifest has no layers list")
        # Foreign layers (with urls) live elsewhere by definition.
        local = [layer for layer in layers if not (isinstance(layer, dict) and layer.get("urls"))]
        refs += _descriptors(local, "layers")
        for digest in refs:
            if self.storage.repo_blob(name, digest) is None:
                raise RegistryError(codes.MANIFEST_BLOB_UNKNOWN, {"digest": digest})

    def _delete_manifest(self, name: str, ref: str) -> Response:
        if ":" in ref:
            digest = _parse_digest(ref)
            if not self.storage.delete_manifest(name, digest):
                raise self._unknown_manifest(name, ref)
        elif is_tag(ref):
            if not self.storage.delete_tag(name, ref):
                raise self._unknown_manifest(name, ref)
        else:
            raise RegistryError(codes.TAG_INVALID, {"tag": ref}, message="invalid tag")
        return Response(202)

    # --- blobs ------------------------------------------------------------------------

    async def _blob(self, req: Request, caller: Caller, name: str, digest: str) -> Response:
        if req.method in ("GET", "HEAD"):
            self._authorize(req, caller, name, ["pull"])
            d = _parse_digest(digest)
            blob = self.storage.repo_blob(name, d)
            if blob is None:
                raise RegistryError(codes.BLOB_UNKNOWN, {"digest": d})
            return _blob_response(req, self.storage, blob)
        if req.method == "DELETE":
            self._authorize(req, caller, name, ["delete"])
            d = _parse_digest(digest)
            if not self.storage.unlink_blob(name, d):
                raise RegistryError(codes.BLOB_UNKNOWN, {"digest": d})
            return Response(202, [("Docker-Content-Digest", d)])
        raise _unsupported(req)

    async def _uploads(self, req: Request, caller: Caller, name: str) -> Response:
        _method(req, "POST")
        self._authorize(req, caller, name, ["pull", "push"])
        mount, source = req.arg("mount"), req.arg("from")
        if mount:
            d = _parse_digest(mount)
            if source and self._mountable(caller, source, d):
                self.storage.link_blob(name, d)
                return _created(name, d)
        state = self.storage.start_upload(name)
        monolithic = req.arg("digest")
        if monolithic is None:
            return _upload_status(name, state.uuid, 0, 202)
        expected = _parse_digest(monolithic)
        return await self._write_and_finish(req, state.uuid, name, expected, cancel_on_error=True)

    def _mountable(self, caller: Caller, source: str, digest: Digest) -> bool:
        try:
            check_name(source)
        except NameInvalid:
            return False
        if not self._granted(caller, source, ["pull"]):
            return False
        return self.storage.repo_blob(source, digest) is not None

    async def _upload(self, req: Request, caller: Caller, name: str, uuid: str) -> Response:
        needed = ["pull", "push"]
        self._authorize(req, caller, name, needed)
        try:
            state = self.storage.upload_state(name, uuid)
        except UploadUnknown as exc:
            raise RegistryError(codes.BLOB_UPLOAD_UNKNOWN, str(exc)) from None
        if req.method == "GET":
            return _upload_status(name, uuid, state.offset, 204)
        if req.method == "DELETE":
            self.storage.cancel_upload(uuid)
            return Response(204)
        if req.method == "PATCH":
            offset = await self._append(req, name, uuid)
            return _upload_status(name, uuid, offset, 202)
        if req.method == "PUT":
            raw = req.arg("digest")
            if not raw:
                raise RegistryError(codes.DIGEST_INVALID, "digest query parameter missing")
            expected = _parse_digest(raw)
            return await self._write_and_finish(req, uuid, name, expected, cancel_on_error=False)
        raise _unsupported(req)

    async def _append(self, req: Request, name: str, uuid: str) -> int:
        """Write the request body at the end of the upload; return the new offset."""
        state = self.storage.upload_state(name, uuid)
        start, end = _content_range(req.header("content-range"))
        try:
            writer = self.storage.open_upload(state, start)
        except RangeInvalid as exc:
            raise RegistryError(codes.RANGE_INVALID, str(exc), headers=_range_headers(name, uuid, state.offset)) from None  # fmt: skip
        try:
            async for chunk in req.body():
                writer.write(chunk)
                self.metrics.bytes_received += len(chunk)
        finally:
            writer.close()
        if end is not None and start is not None and writer.offset != end + 1:
            raise RegistryError(codes.SIZE_INVALID, {"range": f"{start}-{end}", "received": writer.offset - start})  # fmt: skip
        length = req.header("content-length")
        if length and length.isdigit() and writer.offset - state.offset != int(length):
            raise RegistryError(codes.SIZE_INVALID, {"content-length": int(length)})
        return writer.offset

    async def _write_and_finish(
        self, req: Request, uuid: str, name: str, expected: Digest, *, cancel_on_error: bool
    ) -> Response:
        try:
            await self._append(req, name, uuid)
            state = self.storage.upload_state(name, uuid)
            await asyncio.to_thread(self.storage.finish_upload, state, expected)
        except errors.InvalidArgument as exc:
            self.storage.cancel_upload(uuid)
            raise RegistryError(codes.DIGEST_INVALID, str(exc)) from None
        except BaseException:
            if cancel_on_error:
                self.storage.cancel_upload(uuid)
            raise
        return _created(name, expected)

    # --- referrers ------------------------------------------------------------------

    async def _referrers(self, req: Request, caller: Caller, name: str, digest: str) -> Response:
        _method(req, "GET")
        self._authorize(req, caller, name, ["pull"])
        subject = _parse_digest(digest)
        descriptors = [json.loads(raw) for raw in self.storage.referrers(name, subject)]
        headers = [("Content-Type", mediatypes.OCI_INDEX)]
        wanted = req.arg("artifactType")
        if wanted:
            descriptors = [d for d in descriptors if d.get("artifactType") == wanted]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": descriptors}
        return Response(200, headers, json.dumps(index).encode())

    # --- token service ----------------------------------------------------------------

    async def _token(self, req: Request, caller: Caller) -> Response:
        if req.method == "POST":
            caller = await self._token_form(req)
        else:
            _method(req, "GET")
        scopes = []
        for raw in req.query.get("scope", []):
            for text in raw.split(" "):
                scope = parse_scope(text)
                if scope is None:
                    continue
                if scope.type == "repository":
                    try:
                        check_name(scope.name)
                    except NameInvalid:
                        continue
                    scopes.append(Scope(scope.type, scope.name, self.policy.allowed(caller.user, scope.name, scope.actions)))  # fmt: skip
                elif scope.type == "registry" and scope.name == "catalog":
                    scopes.append(
                        Scope("registry", "catalog", ["*"] if caller.authenticated else [])
                    )
        return _json(self.tokens.issue(caller.name, scopes))

    async def _token_form(self, req: Request) -> Caller:
        # containerd/buildkit's OAuth2 password grant: form fields instead of Basic auth.
        import urllib.parse

        form = urllib.parse.parse_qs((await req.read(64 * 1024)).decode(errors="replace"))
        for key, values in form.items():
            req.query.setdefault(key, values)
        user = await asyncio.to_thread(
            self.accounts.verify, form.get("username", [""])[0], form.get("password", [""])[0]
        )
        if user is None:
            raise RegistryError(codes.UNAUTHORIZED, message="invalid username or password")
        return Caller(user, None, authenticated=True)

    # --- hub and operations -----------------------------------------------------------

    async def _search(self, req: Request, caller: Caller) -> Response:
        _method(req, "GET")
        query = (req.arg("q") or "").lower()
        n = _page_size(req, SEARCH_PAGE_DEFAULT) or SEARCH_PAGE_DEFAULT
        try:
            page = max(1, int(req.arg("page") or 1))
        except ValueError:
            raise RegistryError(
                codes.PAGINATION_NUMBER_INVALID, {"page": req.arg("page")}
            ) from None
        hits = [r for r in self.storage.repositories() if query in r and self._may_list(caller, r)]
        results = []
        for r in hits[(page - 1) * n : page * n]:
            info = self.hub.info(r)
            results.append(
                {
                    "name": r,
                    "description": info.description,
                    "star_count": len(info.stars),
                    "is_official": False,
                    "is_automated": False,
                }
            )
        return _json(
            {
                "query": query,
                "num_results": len(hits),
                "num_pages": max(1, math.ceil(len(hits) / n)),
                "page": page,
                "page_size": n,
                "results": results,
            }
        )

    async def _health(self, req: Request, caller: Caller) -> Response:
        return _json({"status": "ok", "read_only": self.config.read_only})

    async def _web(self, req: Request, caller: Caller) -> Response:
        if self.config.read_only and req.method == "POST":
            raise RegistryError(codes.UNSUPPORTED, message="the registry is in read-only mode")
        return await self.web.handle(req)

    async def _metrics(self, req: Request, caller: Caller) -> Response:
        body = self.metrics.render(len(self.storage.uploads_in_progress()))
        return Response(200, [("Content-Type", "text/plain; version=0.0.4")], body)


# --- helpers ---------------------------------------------------------------------------


def _method(req: Request, *allowed: str) -> None:
    if req.method not in allowed and not (req.method == "HEAD" and "GET" in allowed):
        raise _unsupported(req)


def _unsupported(req: Request) -> RegistryError:
    return RegistryError(codes.UNSUPPORTED, {"method": req.method}, message=f"method {req.method} not allowed here")  # fmt: skip


def _accepts(accept: str | None, media_type: str) -> bool:
    if not accept:
        return True
    types = {part.split(";")[0].strip() for part in accept.split(",")}
    return media_type in types or "*/*" in types or "application/*" in types or not types - {""}


def _parse_manifest(data: bytes, content_type: str | None) -> tuple[dict, str]:
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(codes.MANIFEST_INVALID, f"manifest is not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise RegistryError(codes.MANIFEST_INVALID, "manifest is not a JSON object")
    declared = manifest.get("mediaType")
    header = (content_type or "").split(";")[0].strip()
    media_type = declared or header
    if declared and header and header != declared and header in MANIFEST_TYPES:
        raise RegistryError(codes.MANIFEST_INVALID, f"Content-Type {header} does not match mediaType {declared}")  # fmt: skip
    if media_type not in MANIFEST_TYPES:
        raise RegistryError(codes.MANIFEST_INVALID, f"unsupported manifest media type {media_type!r}")  # fmt: skip
    if manifest.get("schemaVersion") != 2:
        raise RegistryError(codes.MANIFEST_INVALID, "schemaVersion must be 2")
    return manifest, media_type


def _descriptors(entries: object, field: str) -> list[Digest]:
    if not isinstance(entries, list):
        raise RegistryError(codes.MANIFEST_INVALID, f"{field} must be a list of descriptors")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            raise RegistryError(codes.MANIFEST_INVALID, f"{field}: descriptor without a digest")
        if not isinstance(entry.get("size"), int) or entry["size"] < 0:
            raise RegistryError(codes.MANIFEST_INVALID, f"{field}: descriptor without a valid size")
        try:
            out.append(Digest.parse(entry["digest"]))
        except errors.InvalidArgument as exc:
            raise RegistryError(codes.MANIFEST_INVALID, f"{field}: {exc}") from None
    return out


def _referrer(manifest: dict, media_type: str, digest: Digest, size: int) -> bytes:
    artifact_type = manifest.get("artifactType")
    config = manifest.get("config")
    if not artifact_type and isinstance(config, dict):
        artifact_type = config.get("mediaType")
    descriptor = {"mediaType": media_type, "digest": digest, "size": size}
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if isinstance(manifest.get("annotations"), dict):
        descriptor["annotations"] = manifest["annotations"]
    return json.dumps(descriptor).encode()


def _created(name: str, digest: Digest) -> Response:
    return Response(201, [("Location", f"/v2/{name}/blobs/{digest}"), ("Docker-Content-Digest", digest)])  # fmt: skip


def _range_headers(name: str, uuid: str, offset: int) -> list[tuple[str, str]]:
    return [
        ("Location", f"/v2/{name}/blobs/uploads/{uuid}"),
        ("Range", f"0-{max(offset - 1, 0)}"),
        ("Docker-Upload-UUID", uuid),
    ]


def _upload_status(name: str, uuid: str, offset: int, status: int) -> Response:
    return Response(status, _range_headers(name, uuid, offset))


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    if not header:
        return None, None
    m = _CONTENT_RANGE.fullmatch(header.strip())
    if not m or int(m.group(2)) < int(m.group(1)):
        raise RegistryError(codes.RANGE_INVALID, {"Content-Range": header})
    return int(m.group(1)), int(m.group(2))


def _blob_response(req: Request, storage: RegistryStorage, blob: BlobInfo) -> Response:
    size, digest = blob.size, blob.digest
    headers = [
        ("Content-Type", "application/octet-stream"),
        ("Docker-Content-Digest", digest),
        ("ETag", f'"{digest}"'),
        ("Accept-Ranges", "bytes"),
        ("Cache-Control", "max-age=31536000"),
    ]
    spec = req.header("range")
    if not spec:
        return Response(200, headers, _blob_body(storage, blob, 0, size))
    m = _RANGE.fullmatch(spec.strip())
    if not m or (not m.group(1) and not m.group(2)):
        raise RegistryError(codes.RANGE_INVALID, {"Range": spec}, headers=[("Content-Range", f"bytes */{size}")])  # fmt: skip
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:  # "bytes=-N": the last N bytes
        start, end = max(size - int(m.group(2)), 0), size - 1
    if start >= size or end < start:
        raise RegistryError(codes.RANGE_INVALID, {"Range": spec}, headers=[("Content-Range", f"bytes */{size}")])  # fmt: skip
    headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
    return Response(206, headers, _blob_body(storage, blob, start, end - start + 1))


def _blob_body(
    storage: RegistryStorage, blob: BlobInfo, offset: int, length: int
) -> FileBody | StreamBody:
    """A local file goes out with sendfile; anything else is streamed from the driver."""
    if isinstance(blob, BlobStat):
        return FileBody(str(blob.path), offset, length)
    return StreamBody(length, _stream(storage, blob.digest, offset, length))


async def _stream(
    storage: RegistryStorage, digest: Digest, offset: int, length: int
) -> AsyncIterator[bytes]:
    # The driver blocks (boto3): every chunk is fetched in a worker thread. Nothing is
    # opened until the first chunk is wanted, so a HEAD costs no object read.
    chunks = storage.read_blob_range(digest, offset, length)
    try:
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
