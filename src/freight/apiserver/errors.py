"""The one table from freight error kinds to HTTP status, and the error response body.

Mirrors moby's `httpstatus.FromError`: the kind of error, not its text,
chooses the status; the body is always `{"message": "<text>"}` with
Content-Type exactly application/json (docker-py and the CLI print the
message verbatim, so the text raised is the text shown).

ExecError is the one kind whose status depends on the error: moby's
`setExitCodeFromError` turns "executable file not found" / "no such file"
(exit 127) and "permission denied" / "is a directory" (exit 126) into
InvalidParameter, i.e. 400, and everything else from the runtime into
Unknown, i.e. 500. The CLI shows both the same way; `docker run` then exits
with 127/126/125 from the exit code the daemon recorded, not from the status.

Anything that is not a FreightError is a bug: logged with its traceback by
the caller and answered 500.
"""

from freight import errors
from freight.apiserver.http import BodyTooLarge, Response, json_response

STATUS_BY_KIND: dict[type[errors.FreightError], int] = {
    BodyTooLarge: 413,
    errors.InvalidArgument: 400,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
    errors.Internal: 500,
    errors.NotImplementedYet: 501,
    errors.Unavailable: 503,
}

EXEC_ERROR_CLIENT_CODES = frozenset({126, 127})
"""ExecError exit codes that moby reports as the caller's mistake (400)."""


def status_for(exc: BaseException) -> int:
    """The HTTP status for an exception; 500 for anything unknown."""
    if isinstance(exc, errors.ExecError):
        return 400 if exc.exit_code in EXEC_ERROR_CLIENT_CODES else 500
    for kind in type(exc).__mro__:
        status = STATUS_BY_KIND.get(kind)  # type: ignore[call-overload]
        if status is not None:
            return status
    return 500


def error_message(exc: BaseException) -> str:
    """The text for the body: the error's own words, or its class for a bare exception."""
    return str(exc) or type(exc).__name__


def error_response(exc: BaseException) -> Response:
    """`{"message": ...}` with the status from the table."""
    return json_response({"message": error_message(exc)}, status_for(exc))
