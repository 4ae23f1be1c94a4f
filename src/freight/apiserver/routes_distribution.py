"""Engine API registry endpoints: pull (`POST /images/create?fromImage=`),
push (`POST /images/{name}/push`), `POST /auth`, `GET /images/search` and
`GET /distribution/{name}/json`.

Owns the wire edge: X-Registry-Auth decoding and the JSON-message stream.
As dockerd, a failure before any progress (unknown manifest, bad
credentials) is an HTTP error; one after is an error message in the stream.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from freight.apiserver.http import (
    AnyResponse,
    Request,
    Response,
    StreamingResponse,
    json_response,
)
from freight.apiserver.router import Router
from freight.distribution import platforms
from freight.distribution.auth import ANONYMOUS, Credentials
from freight.dockerapi.jsonmessage import JSONMessage, encode, error_message
from freight.errors import FreightError, InvalidArgument
from freight.oci import mediatypes
from freight.oci.image import Index, Manifest
from freight.services.pull import PullService, parse_pull_ref
from freight.services.push import PushService
from freight.services.registries import Registries

_DONE = object()


def decode_registry_auth(header: str | None) -> Credentials:
    """X-Registry-Auth: base64url JSON {username, password, identitytoken, registrytoken}."""
    if not header:
        return ANONYMOUS
    raw = header.strip()
    try:
        doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        try:  # some clients send the JSON as is
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidArgument("invalid X-Registry-Auth header: not base64 JSON") from None
    if not isinstance(doc, dict):
        return ANONYMOUS
    return credentials_of(doc)


def credentials_of(doc: dict[str, Any]) -> Credentials:
    return Credentials(
        username=str(doc.get("username") or ""),
        password=str(doc.get("password") or ""),
        identity_token=str(doc.get("identitytoken") or ""),
        registry_token=str(doc.get("registrytoken") or ""),
    )


class DistributionRoutes:
    def __init__(
        self,
        pulls: PullService,
        pushes: PushService,
        registries: Registries,
        fallback_create: Callable[[Request], Awaitable[AnyResponse]],
    ) -> None:
        self.pulls = pulls
        self.pushes = pushes
        self.registries = registries
        self.fallback_create = fallback_create

    def register(self, r: Router) -> None:
        # Before ImageRoutes: this create wins and hands fromSrc imports over.
        r.add("POST", "/images/create", self.create)
        r.add("POST", "/images/{name:path}/push", self.push)
        r.add("POST", "/auth", self.auth)
        r.add("GET", "/images/search", self.search)
        r.add("GET", "/distribution/{name:path}/json", self.distribution)
        r.add("GET", "/freight/distribution/{name:path}/manifest", self.manifest)

    async def create(self, req: Request) -> AnyResponse:
        q = req.query
        name = q.get("fromImage") or ""
        if not name:
            return await self.fallback_create(req)
        ref = parse_pull_ref(name, q.get("tag") or "")
        platform = q.get("platform") or ""
        creds = decode_registry_auth(req.headers.get("x-registry-auth"))
        pulls = self.pulls
        # No tag at all (docker pull -a): every tag of the repository.
        last = name.rsplit("/", 1)[-1]
        if not q.get("tag") and ":" not in last and "@" not in name:
            plans = await asyncio.to_thread(pulls.resolve_all_tags, ref, platform, creds)
            return _stream(lambda emit: pulls.execute_all(plans, emit))
        plan = await asyncio.to_thread(pulls.resolve, ref, platform, creds)
        return _stream(lambda emit: pulls.execute(plan, emit))

    async def push(self, req: Request) -> AnyResponse:
        creds = decode_registry_auth(req.headers.get("x-registry-auth"))
        targets = await asyncio.to_thread(
            self.pushes.targets, req.params["name"], req.query.get("tag") or ""
        )
        return _stream(lambda emit: self.pushes.push(targets, emit, creds))

    async def auth(self, req: Request) -> AnyResponse:
        doc = await req.json({}) or {}
        if not isinstance(doc, dict):
            raise InvalidArgument("the body must be a JSON object")
        creds = credentials_of(doc)
        server = str(doc.get("serveraddress") or "")
        status = await asyncio.to_thread(self.registries.login, server, creds)
        return json_response({"Status": status, "IdentityToken": ""})

    async def search(self, req: Request) -> AnyResponse:
        term = req.query.get("term") or ""
        limit = req.query.int("limit", 25) or 25
        if not 1 <= limit <= 100:
            raise InvalidArgument(f"limit {limit} is outside the range of [1, 100]")
        filters = req.query.filters()
        creds = decode_registry_auth(req.headers.get("x-registry-auth"))
        results = await asyncio.to_thread(self.registries.search, term, limit, creds)
        return json_response([r for r in results if _search_matches(r, filters)])

    async def distribution(self, req: Request) -> AnyResponse:
        """The descriptor and platforms of what a reference names on its registry."""
        ref = parse_pull_ref(req.params["name"])
        creds = decode_registry_auth(req.headers.get("x-registry-auth"))

        def work() -> dict[str, Any]:
            with self.registries.client(ref.domain, creds) as c:
                fetched = c.get_manifest(ref.path, str(ref.digest or ref.tag))
                desc = {
                    "mediaType": fetched.media_type,
                    "digest": str(fetched.digest),
                    "size": len(fetched.data),
                }
                if mediatypes.is_index(fetched.media_type):
                    plats = [
                        {"architecture": d.platform.architecture, "os": d.platform.os}
                        | ({"variant": d.platform.variant} if d.platform.variant else {})
                        for d in Index.from_json(fetched.data).manifests
                        if d.platform
                    ]
                else:
                    Manifest.from_json(fetched.data)
                    os_, arch, variant = platforms.host_platform()
                    plats = [{"architecture": arch, "os": os_}]
                return {"Descriptor": desc, "Platforms": plats}

        try:
            return json_response(await asyncio.to_thread(work))
        except FreightError as e:
            from freight.services.pull import _docker_error

            raise _docker_error(e, ref) from None

    async def manifest(self, req: Request) -> AnyResponse:
        """freight's own: the manifest or index a reference names, as the registry sent it
        (what `freight manifest inspect` prints; docker's CLI reads it from the registry)."""
        ref = parse_pull_ref(req.params["name"])
        creds = decode_registry_auth(req.headers.get("x-registry-auth"))

        def work() -> tuple[bytes, str]:
            with self.registries.client(ref.domain, creds) as c:
                fetched = c.get_manifest(ref.path, str(ref.digest or ref.tag))
                return fetched.data, fetched.media_type

        try:
            data, media_type = await asyncio.to_thread(work)
        except FreightError as e:
            from freight.services.pull import _docker_error

            raise _docker_error(e, ref) from None
        return Response(200, data, media_type)


def _search_matches(row: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        for v in values:
            if key == "stars":
                try:
                    if int(row.get("star_count") or 0) < int(v):
                        return False
                except ValueError:
                    raise InvalidArgument(f"invalid filter 'stars={v}'") from None
            elif key in ("is-official", "is-automated"):
                field = key.replace("-", "_")
                if bool(row.get(field)) != (v.lower() in ("true", "1")):
                    return False
            else:
                raise InvalidArgument(f"invalid filter '{key}'")
    return True


def _stream(work: Callable[[Callable[[JSONMessage], None]], object]) -> StreamingResponse:
    """Run `work(emit)` in a thread; each emitted message is a line as it comes."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def emit(message: JSONMessage) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, message)

    def run() -> None:
        try:
            work(emit)
        except FreightError as e:
            emit(error_message(str(e)))
        except Exception as e:  # a bug: still end the stream with a message
            emit(error_message(f"{type(e).__name__}: {e}"))
            raise
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    async def body() -> AsyncIterator[bytes]:
        task = asyncio.ensure_future(asyncio.to_thread(run))
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            yield encode(item)
        await asyncio.gather(task, return_exceptions=True)

    return StreamingResponse(body())
