"""freight.apiserver: the Docker Engine API over HTTP.

The framework lives in `http` (server, requests, responses), `router`
(route table, API versions, errors → responses), `errors` (the status
table) and `streams` (request bodies, hijacked connections). Endpoint
handlers live in `routes_*` modules on top and depend on narrow backends.
"""

from freight.apiserver.http import (
    AnyResponse,
    ApiServer,
    HijackResponse,
    Request,
    Response,
    StreamingResponse,
    empty_response,
    json_response,
    text_response,
)
from freight.apiserver.router import Router
from freight.apiserver.streams import BodyStream, HijackedStream

__all__ = [
    "AnyResponse",
    "ApiServer",
    "BodyStream",
    "HijackResponse",
    "HijackedStream",
    "Request",
    "Response",
    "Router",
    "StreamingResponse",
    "empty_response",
    "json_response",
    "text_response",
]
