"""The Engine API's network endpoints, for the CLI (`network …`, `port`).

Functions over an `EngineAPI` rather than methods on it, so the network
commands live apart from the shared endpoint table.
"""

from __future__ import annotations

from freight.client.api import EngineAPI, _filters, _q

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    JSON = dict[str, Any]


def network_list(api: EngineAPI, filters: Mapping[str, list[str]] | None = None) -> list[JSON]:
    """GET /networks?filters="""
    return api.http.get_json("/networks", {"filters": _filters(filters)})


def network_inspect(api: EngineAPI, ref: str) -> JSON:
    """GET /networks/{id}"""
    return api.http.get_json(f"/networks/{_q(ref)}")


def network_create(api: EngineAPI, body: JSON) -> JSON:
    """POST /networks/create"""
    return api.http.post_json("/networks/create", body)


def network_remove(api: EngineAPI, ref: str) -> None:
    """DELETE /networks/{id}"""
    api.http.request("DELETE", f"/networks/{_q(ref)}").read()


def network_prune(api: EngineAPI, filters: Mapping[str, list[str]] | None = None) -> JSON:
    """POST /networks/prune?filters="""
    return api.http.post_json("/networks/prune", None, {"filters": _filters(filters)})


def network_connect(api: EngineAPI, ref: str, container: str, endpoint: JSON) -> None:
    """POST /networks/{id}/connect"""
    body = {"Container": container, "EndpointConfig": endpoint}
    api.http.request("POST", f"/networks/{_q(ref)}/connect", json_body=body).read()


def network_disconnect(api: EngineAPI, ref: str, container: str, force: bool = False) -> None:
    """POST /networks/{id}/disconnect"""
    body = {"Container": container, "Force": force}
    api.http.request("POST", f"/networks/{_q(ref)}/disconnect", json_body=body).read()
