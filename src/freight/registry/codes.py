"""The distribution spec's error codes, statuses and body shape.

Every failure a client sees is `{"errors": [{"code", "message", "detail"}]}` with one of
the codes below and its status (distribution-spec "Error Codes"); nothing reaches a client
as a 500 unless it is a bug.
"""

from __future__ import annotations

import json

BLOB_UNKNOWN = ("BLOB_UNKNOWN", 404, "blob unknown to registry")
BLOB_UPLOAD_INVALID = ("BLOB_UPLOAD_INVALID", 400, "blob upload invalid")
BLOB_UPLOAD_UNKNOWN = ("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")
DIGEST_INVALID = ("DIGEST_INVALID", 400, "provided digest did not match uploaded content")
MANIFEST_BLOB_UNKNOWN = ("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry")  # fmt: skip
MANIFEST_INVALID = ("MANIFEST_INVALID", 400, "manifest invalid")
MANIFEST_UNKNOWN = ("MANIFEST_UNKNOWN", 404, "manifest unknown to registry")
NAME_INVALID = ("NAME_INVALID", 400, "invalid repository name")
NAME_UNKNOWN = ("NAME_UNKNOWN", 404, "repository name not known to registry")
SIZE_INVALID = ("SIZE_INVALID", 400, "provided length did not match content length")
TAG_INVALID = ("TAG_INVALID", 400, "manifest tag did not match URI")
UNAUTHORIZED = ("UNAUTHORIZED", 401, "authentication required")
DENIED = ("DENIED", 403, "requested access to the resource is denied")
UNSUPPORTED = ("UNSUPPORTED", 405, "the operation is unsupported")
PAGINATION_NUMBER_INVALID = ("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested")  # fmt: skip
RANGE_INVALID = ("BLOB_UPLOAD_INVALID", 416, "requested range not satisfiable")
TOO_LARGE = ("SIZE_INVALID", 413, "payload too large")
UNKNOWN = ("UNKNOWN", 500, "unknown error")
NOT_FOUND = ("NOT_FOUND", 404, "not found")


class RegistryError(Exception):
    """A failure with its spec code; `headers` go on the response (WWW-Authenticate…)."""

    def __init__(
        self,
        kind: tuple[str, int, str],
        detail: object = None,
        *,
        message: str | None = None,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.code, default_status, default_message = kind
        self.status = status or default_status
        self.message = message or default_message
        self.detail = detail
        self.headers = headers or []
        super().__init__(f"{self.code}: {self.message}")

    def body(self) -> bytes:
        entry = {"code": self.code, "message": self.message, "detail": self.detail}
        return json.dumps({"errors": [entry]}).encode()
