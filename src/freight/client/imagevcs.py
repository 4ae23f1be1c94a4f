"""Engine API endpoints of "the image as version control", for the freight CLI:
commit, diff, export, save, load, prune and disk usage.

Owns: their paths and query parameters (as ``client.api`` does for the rest).
Values are the API's JSON as decoded; tar streams come back as a ``Response``
to read chunk by chunk.
"""

from __future__ import annotations

from freight.client.api import _filters, _q
from freight.client.http import EngineClient, Response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any, BinaryIO

    JSON = dict[str, Any]
    Filters = Mapping[str, list[str]] | None


class VcsAPI:
    def __init__(self, client: EngineClient) -> None:
        self.http = client

    def container_changes(self, cid: str) -> list[JSON]:
        """GET /containers/{id}/changes"""
        return self.http.get_json(f"/containers/{_q(cid)}/changes") or []

    def commit(
        self,
        cid: str,
        *,
        repo: str | None = None,
        tag: str | None = None,
        comment: str | None = None,
        author: str | None = None,
        changes: list[str] | None = None,
        pause: bool = True,
    ) -> JSON:
        """POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause="""
        params: dict[str, Any] = {"container": cid, "repo": repo, "tag": tag}
        params.update(comment=comment, author=author, changes=changes or None)
        params["pause"] = "1" if pause else "0"
        return self.http.request("POST", "/commit", params=params, json_body={}).json()

    def container_export(self, cid: str) -> Response:
        """GET /containers/{id}/export : a tar stream."""
        return self.http.request("GET", f"/containers/{_q(cid)}/export")

    def images_get(self, names: list[str]) -> Response:
        """GET /images/get?names=… : a tar stream."""
        return self.http.request("GET", "/images/get", params={"names": names})

    def images_load(self, data: BinaryIO, *, quiet: bool = False) -> Iterator[JSON]:
        """POST /images/load : a JSON-message stream."""
        headers = {"Content-Type": "application/x-tar"}
        return self.http.request(
            "POST", "/images/load", params={"quiet": quiet or None}, data=data, headers=headers
        ).iter_json()

    def prune(self, what: str, filters: Filters = None) -> JSON:
        """POST /{containers,images,volumes,networks,build}/prune"""
        return self.http.request(
            "POST", f"/{what}/prune", params={"filters": _filters(filters)}
        ).json()

    def system_df(self, types: list[str] | None = None) -> JSON:
        """GET /system/df"""
        return self.http.get_json("/system/df", {"type": types or None})
