"""Error kinds shared by every layer.

Each kind says *what went wrong* in terms a caller can act on; the HTTP edge
maps kinds to status codes in one table (apiserver), the CLI maps them to exit
codes. Messages that Docker clients match on are kept word for word by the
code that raises them ("No such container: x").
"""


class FreightError(Exception):
    """Base of every error freight raises on purpose."""


class NotFound(FreightError):
    """The named object does not exist (HTTP 404)."""


class AlreadyExists(FreightError):
    """An object with that name or id exists already (HTTP 409)."""


class Conflict(FreightError):
    """The object is in a state that forbids the operation (HTTP 409)."""


class InvalidArgument(FreightError):
    """The request itself is wrong: bad value, malformed input (HTTP 400)."""


class Unavailable(FreightError):
    """A resource or service needed is not there right now (HTTP 503)."""


class PermissionDenied(FreightError):
    """The caller may not do this (HTTP 403)."""


class NotImplementedYet(FreightError):
    """A known API that freight does not provide (HTTP 501)."""


class ExecError(FreightError):
    """The container's process could not be started.

    `exit_code` follows Docker's convention: 127 when the command was not
    found, 126 when it exists but cannot be executed, 125 otherwise.
    """

    def __init__(self, message: str, exit_code: int = 125) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Internal(FreightError):
    """A bug or an unexpected system failure (HTTP 500)."""
