"""Per-invocation state shared by every command.

Owns: the global options (host, context, TLS flags, debug, log level), the Engine API client,
made on first use so commands that never talk to the daemon (``--version``,
``--help``) never import ``socket`` or ``json``, and ``CliError``, the one
exception a command raises to stop with a message and an exit status.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from freight.cli.contexts import TlsFlags
    from freight.client.api import EngineAPI
    from freight.client.tlsconfig import TlsOptions


class CliError(Exception):
    """Stop the command: print ``freight: MESSAGE`` to stderr and exit ``status``.

    Without a status the command's own default applies: 125 for ``run`` and
    ``create`` (docker's StatusError), 1 for everything else, as in docker.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Session:
    """Global flags plus a lazily-connected API."""

    def __init__(
        self,
        host: str | None = None,
        debug: bool = False,
        log_level: str = "info",
        context: str | None = None,
        tls: TlsFlags | None = None,
    ) -> None:
        self.host = host
        self.debug = debug
        self.log_level = log_level
        self.context = context  # --context
        self.tls = tls  # the --tls* flags
        self._api: EngineAPI | None = None

    def endpoint(self) -> tuple[str, TlsOptions | None]:
        """The daemon address and TLS options, from -H/--context/env (cli.contexts)."""
        from freight.cli.contexts import ContextError, resolve_endpoint

        try:
            return resolve_endpoint(self.host, self.context, self.tls)
        except ContextError as exc:
            raise CliError(str(exc)) from None

    @property
    def api(self) -> EngineAPI:
        if self._api is None:
            from freight.client.api import EngineAPI
            from freight.client.http import EngineClient

            host, tls = self.endpoint()
            self._api = EngineAPI(EngineClient(host, tls=tls))
        return self._api

    def out(self, text: str) -> None:
        sys.stdout.write(text)

    def err(self, text: str) -> None:
        sys.stderr.write(text)

    def error(self, message: str) -> None:
        """A non-fatal error line, as docker prints one per failed target."""
        sys.stderr.write(f"freight: {message}\n")
