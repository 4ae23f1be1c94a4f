"""The Engine API route table: path patterns, API version prefix, errors to responses.

    router = Router()
    router.add("GET", "/containers/{id}/json", inspect_container)
    router.add("GET", "/images/{name:path}/json", inspect_image)

    @router.route("DELETE", "/images/{name:path}")
    async def remove_image(req: Request) -> AnyResponse: ...

Patterns: `{id}` matches one path segment; `{name:path}` matches greedily
across slashes, so `/images/{name:path}/json` takes
`/images/localhost:5000/a/b:tag/json` with name "localhost:5000/a/b:tag".
Paths match after percent-decoding. Static patterns win over ones with
placeholders; otherwise the first registered match wins (as gorilla/mux).

Every path is served with and without a `/vX.Y` prefix. The version (1.45
when absent) lands in `request.api_version`; outside 1.24–1.45 the answer
is 400 with moby's words. As in moby, an unknown path or a known path with
the wrong method is 404 `{"message":"page not found"}`; HEAD is served by the
GET handler (the server drops the body).

Handlers raise freight.errors kinds; the router answers them through the one
table in `freight.apiserver.errors`. Any other exception is logged with its
traceback and answered 500; the connection carries on.

Every response carries the headers dockerd's middlewares set, with Go's
canonical spelling: Api-Version, Docker-Experimental, Ostype, Server.
"""

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from freight import __version__, errors
from freight.apiserver.errors import error_response, status_for
from freight.apiserver.http import AnyResponse, HeaderList, Request, json_response
from freight.dockerapi import versions

Handler = Callable[[Request], Awaitable[AnyResponse]]

SERVER_NAME = f"Freight/{__version__} (linux)"

_VERSION_PREFIX = re.compile(r"/v([0-9.]+)(/.*)", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(path))?\}")

_log = logging.getLogger(__name__)


def split_version(path: str) -> tuple[str | None, str]:
    """("1.45", "/containers/json") from "/v1.45/containers/json"; (None, path) without prefix."""
    match = _VERSION_PREFIX.fullmatch(path)
    if match is None:
        return None, path
    return match.group(1), match.group(2)


def check_version(version: str) -> None:
    """InvalidArgument, in dockerd's words, when the client's version is out of range."""
    if versions.less_than(version, versions.MIN_API_VERSION):
        raise errors.InvalidArgument(
            f"client version {version} is too old. Minimum supported API version is "
            f"{versions.MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if versions.greater_than(version, versions.API_VERSION):
        raise errors.InvalidArgument(
            f"client version {version} is too new. Maximum supported API version is "
            f"{versions.API_VERSION}"
        )


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A regex for a route pattern; placeholders become named groups."""
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        name, greedy = match.group(1), match.group(2)
        parts.append(f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)")
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    regex: re.Pattern[str]

    @property
    def static(self) -> bool:
        return self.regex.groups == 0


class Router:
    """Matches requests to handlers; callable as the `App` of an ApiServer."""

    def __init__(self, *, experimental: bool = False, server_name: str = SERVER_NAME) -> None:
        self._routes: list[Route] = []
        self.common_headers: HeaderList = [
            ("Api-Version", versions.API_VERSION),
            ("Docker-Experimental", "true" if experimental else "false"),
            ("Ostype", "linux"),
            ("Server", server_name),
        ]

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        self._routes.append(Route(method.upper(), pattern, handler, compile_pattern(pattern)))
        # Stable sort: static routes first, registration order otherwise.
        self._routes.sort(key=lambda route: not route.static)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator form of `add`."""

        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for `method` on a version-less `path`, with its params; HEAD falls back to GET."""
        wanted = [method] if method != "HEAD" else ["HEAD", "GET"]
        for candidate in wanted:
            for route in self._routes:
                if route.method != candidate:
                    continue
                found = route.regex.fullmatch(path)
                if found is not None:
                    return route, found.groupdict()
        return None

    async def __call__(self, request: Request) -> AnyResponse:
        response = await self._dispatch(request)
        response.headers[:0] = self.common_headers
        return response

    async def _dispatch(self, request: Request) -> AnyResponse:
        version, request.path = split_version(request.path)
        found = self.match(request.method, request.path)
        if found is None:
            return json_response({"message": "page not found"}, 404)
        route, request.params = found
        request.api_version = version or versions.API_VERSION
        try:
            check_version(request.api_version)
            return await route.handler(request)
        except ConnectionError:
            raise  # the client is gone: nobody to answer
        except errors.FreightError as exc:
            # 501/503 are expected answers (no swarm, not implemented), not failures.
            level = logging.ERROR if status_for(exc) == 500 else logging.DEBUG
            _log.log(
                level, "Handler for %s %s returned error: %s", request.method, request.path, exc
            )
            return error_response(exc)
        except Exception as exc:
            _log.exception("Handler for %s %s failed", request.method, request.path)
            return error_response(exc)
