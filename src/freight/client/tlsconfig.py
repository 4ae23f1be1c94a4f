"""The client's TLS settings, with the docker CLI's rules, and the
``ssl.SSLContext`` made from them.

Rules (docker's ``cli/flags``):

- ``--tlsverify`` (or a non-empty ``DOCKER_TLS_VERIFY``) turns TLS on and
  checks the daemon's certificate against ``--tlscacert``; ``--tls`` alone
  encrypts without checking who answers.
- Files default to ``$DOCKER_CERT_PATH`` (else ``~/.docker``) ``/ca.pem``,
  ``/cert.pem``, ``/key.pem``; a default file that does not exist is left out
  (so a client without a certificate still connects to a ``--tls`` daemon),
  a file named on the command line must exist.

``ssl`` is imported only when a context is made: the CLI's unix-socket hot
path never pays for it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from ssl import SSLContext


class TlsOptions:
    """What the client presents and checks; ``verify`` False means any server is accepted."""

    __slots__ = ("verify", "cacert", "cert", "key")

    def __init__(
        self,
        verify: bool,
        cacert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
    ) -> None:
        self.verify = verify
        self.cacert = cacert
        self.cert = cert
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TlsOptions) and all(
            getattr(self, a) == getattr(other, a) for a in self.__slots__
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{a}={getattr(self, a)!r}" for a in self.__slots__)
        return f"TlsOptions({fields})"


class TlsConfigError(Exception):
    """A certificate file that cannot be used; the message names it."""


def cert_path(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker")


def from_flags(
    tls: bool = False,
    tlsverify: bool | None = None,
    cacert: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> TlsOptions | None:
    """The options for the global flags and environment; None means plain HTTP.

    ``tlsverify`` None means the flag was not given (the environment decides).
    """
    env = os.environ if environ is None else environ
    verify = bool(env.get("DOCKER_TLS_VERIFY")) if tlsverify is None else tlsverify
    if not (tls or verify or tlsverify is not None):
        return None
    base = cert_path(env)
    return TlsOptions(
        verify,
        cacert or _existing(os.path.join(base, "ca.pem")),
        cert or _existing(os.path.join(base, "cert.pem")),
        key or _existing(os.path.join(base, "key.pem")),
    )


def _existing(path: str) -> str | None:
    return path if os.path.exists(path) else None


def client_context(options: TlsOptions) -> SSLContext:
    """An SSLContext that presents the client certificate and checks the server as asked."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.verify:
        try:
            if options.cacert:
                ctx.load_verify_locations(cafile=options.cacert)
            else:
                ctx.load_default_certs()
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"could not read CA certificate {options.cacert!r}: {_why(exc)}"
            ) from None
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if options.cert or options.key:
        if not (options.cert and options.key):
            raise TlsConfigError("--tlscert and --tlskey must be given together")
        try:
            ctx.load_cert_chain(options.cert, options.key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"could not load X509 key pair ({options.cert}, {options.key}): {_why(exc)}"
            ) from None
    return ctx


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
