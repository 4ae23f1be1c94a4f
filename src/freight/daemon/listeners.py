"""Where freightd listens and who may talk to it: TLS for tcp:// hosts, the
unix socket's group, and the refusal to serve the API on plain TCP.

The rules, after dockerd:

- ``--tlsverify`` implies ``--tls`` and makes the server require a client
  certificate signed by ``--tlscacert`` (``CERT_REQUIRED``).
- ``--tls`` alone: the server proves who it is, clients stay anonymous.
- Certificate files default to ``$DOCKER_CERT_PATH`` (else ``~/.docker``)
  ``/ca.pem``, ``/cert.pem``, ``/key.pem``, as dockerd's do.
- A ``tcp://`` host without TLS gives root on this machine to anyone who
  reaches the port, so the daemon refuses to start unless TLS was turned off
  *explicitly* with ``--tls=false`` (or ``"tls": false`` in the config file),
  which is also dockerd's opt-out since 27.0.
- Unix sockets are mode 0660, group ``--group``: by default ``freight`` when
  that group exists, else root, as dockerd does with ``docker``.
- ``-H fd://`` serves on the sockets systemd passed (socket activation,
  sd_listen_fds(3)): ``LISTEN_PID`` is our pid, ``LISTEN_FDS`` how many,
  numbered from 3. ``fd://`` takes them all, ``fd://N`` only fd N. They
  become ``fd://N`` listeners of the API server; TLS applies to the TCP ones.
"""

from __future__ import annotations

import fcntl
import grp
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from freight.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from freight.daemon.config import DaemonConfig

DEFAULT_GROUP = "freight"
SD_LISTEN_FDS_START = 3


@dataclass(frozen=True)
class TlsSettings:
    """The daemon's TLS flags after defaults; ``enabled`` covers --tls and --tlsverify."""

    enabled: bool
    verify: bool
    cacert: Path
    cert: Path
    key: Path


def server_options(cfg: DaemonConfig) -> dict[str, object]:
    """ApiServer's keyword arguments for ``cfg``; raises InvalidArgument on a bad setup."""
    tls = tls_settings(cfg.tls, cfg.tlsverify, cfg.tlscacert, cfg.tlscert, cfg.tlskey)
    check_hosts(cfg.hosts, tls, tls_explicitly_off=cfg.tls is False)
    return {"ssl_context": server_ssl_context(tls), "unix_gid": socket_gid(cfg.group)}


def activated_hosts(hosts: list[str], environ: dict[str, str] | None = None) -> list[str]:
    """``hosts`` with ``fd://`` and ``fd://N`` replaced by the inherited sockets' ``fd://N``.

    The LISTEN_* variables are removed from ``environ`` (os.environ by default)
    so no child inherits them, and the sockets get close-on-exec, as
    sd_listen_fds(unset_environment=1) does.
    """
    if not any(h.startswith("fd://") for h in hosts):
        return hosts
    fds = _listen_fds(os.environ if environ is None else environ)
    out: list[str] = []
    for host in hosts:
        if not host.startswith("fd://"):
            out.append(host)
            continue
        wanted = host.removeprefix("fd://")
        if wanted in ("", "*"):
            out += [f"fd://{fd}" for fd in fds]
        elif not wanted.isdigit():
            raise InvalidArgument(f"invalid -H {host}: want fd:// or fd://N")
        elif int(wanted) not in fds:
            raise InvalidArgument(
                f"-H {host}: too few socket activated files passed in by systemd "
                f"(have {', '.join(map(str, fds))})"
            )
        else:
            out.append(host)
    return out


def _listen_fds(env: dict[str, str] | os._Environ[str]) -> list[int]:
    pid, count = env.pop("LISTEN_PID", ""), env.pop("LISTEN_FDS", "")
    env.pop("LISTEN_FDNAMES", None)
    if not pid.isdigit() or int(pid) != os.getpid() or not count.isdigit() or not int(count):
        raise InvalidArgument(
            "no sockets found via socket activation: make sure the service was started by systemd"
        )
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)))
    for fd in fds:
        try:
            kind = socket.socket(fileno=os.dup(fd))
        except OSError as exc:
            raise InvalidArgument(f"socket activation: fd {fd}: {exc.strerror}") from None
        with kind:
            listening = kind.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if not listening:
            raise InvalidArgument(f"socket activation: fd {fd} is not a listening socket")
        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
    return fds


def cert_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("DOCKER_CERT_PATH") or Path.home() / ".docker")


def tls_settings(
    tls: bool | None,
    tlsverify: bool | None,
    cacert: str | None,
    cert: str | None,
    key: str | None,
    environ: dict[str, str] | None = None,
) -> TlsSettings:
    base = cert_dir(environ)
    verify = bool(tlsverify)
    return TlsSettings(
        enabled=verify or bool(tls),
        verify=verify,
        cacert=Path(cacert) if cacert else base / "ca.pem",
        cert=Path(cert) if cert else base / "cert.pem",
        key=Path(key) if key else base / "key.pem",
    )


def tcp_hosts(hosts: list[str]) -> list[str]:
    return [h for h in hosts if h.startswith("tcp://")]


def check_hosts(hosts: list[str], tls: TlsSettings, tls_explicitly_off: bool) -> None:
    """Refuse plain TCP unless TLS was switched off on purpose."""
    plain = tcp_hosts(hosts) if not tls.enabled else []
    if plain and not tls_explicitly_off:
        raise InvalidArgument(
            f"refusing to serve the API on {plain[0]} without TLS: anyone who can reach it "
            "gets root on this machine. Use --tlsverify --tlscacert CA --tlscert CERT "
            "--tlskey KEY, or pass --tls=false to accept that risk explicitly"
        )


def server_ssl_context(tls: TlsSettings) -> ssl.SSLContext | None:
    """The context for tcp:// listeners, or None without TLS; bad files are named."""
    if not tls.enabled:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # dockerd's floor too
    try:
        ctx.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(
            f"could not load the TLS certificate {tls.cert} and key {tls.key}: {_why(exc)}"
        ) from None
    if tls.verify:
        try:
            ctx.load_verify_locations(cafile=tls.cacert)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidArgument(
                f"could not read the TLS CA certificate {tls.cacert}: {_why(exc)}"
            ) from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)


def socket_gid(group: str | None) -> int:
    """The gid of the unix socket: ``group`` by name or number; the default falls back to root."""
    if group is None:
        try:
            return grp.getgrnam(DEFAULT_GROUP).gr_gid
        except KeyError:
            return 0
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise InvalidArgument(f"--group {group}: no such group") from None


def parse_bool(value: str) -> bool:
    """A Go-style boolean flag value (``--tls=false``), for argparse."""
    lowered = value.strip().lower()
    if lowered in ("1", "t", "true", "yes"):
        return True
    if lowered in ("0", "f", "false", "no"):
        return False
    raise ValueError(f"invalid boolean value {value!r}")
