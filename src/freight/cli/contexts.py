"""Named daemon endpoints ("contexts") in docker's own store, so ``docker context``
and ``freight context`` see the same ones, and the choice of endpoint for a
command.

Store layout (docker's ``cli/context/store``), under ``$DOCKER_CONFIG``
(default ``~/.docker``)::

    config.json                       "currentContext": NAME (absent = default)
    contexts/
        meta/<sha256(NAME)>/meta.json {"Name", "Metadata": {"Description"},
                                       "Endpoints": {"docker": {"Host", "SkipTLSVerify"}}}
        tls/<sha256(NAME)>/docker/    ca.pem, cert.pem, key.pem (0600)

Which endpoint a command uses, as docker decides it:
``--context`` (an error together with ``-H``), then ``-H``, ``FREIGHT_HOST``
or ``DOCKER_HOST`` (the "default" context), then ``DOCKER_CONTEXT``, then
``currentContext``, then "default". The default context's address is the
``-H``/environment host and its TLS comes from the ``--tls*`` flags and
``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``.

Hot path: only ``os`` at import; ``config.json`` is read (with wirejson) only
when neither a host nor a context was named.
"""

from __future__ import annotations

import os

from freight.client import wirejson
from freight.client.tlsconfig import TlsOptions, from_flags

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DEFAULT = "default"
DEFAULT_DESCRIPTION = "Current DOCKER_HOST based configuration"
NAME_RULE = "^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$"
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")
_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.+-")


class ContextError(Exception):
    """A context that does not exist, clashes, or is malformed; the text is docker's."""


class TlsFlags:
    """The global ``--tls*`` flags as given."""

    __slots__ = ("tls", "tlsverify", "cacert", "cert", "key")

    def __init__(
        self,
        tls: bool = False,
        tlsverify: bool | None = None,
        cacert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
    ) -> None:
        self.tls, self.tlsverify = tls, tlsverify
        self.cacert, self.cert, self.key = cacert, cert, key


class Context:
    """One stored context (or the default one, which lives in memory)."""

    def __init__(
        self,
        name: str,
        host: str,
        description: str = "",
        skip_tls_verify: bool = False,
        tls_files: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.description = description
        self.skip_tls_verify = skip_tls_verify
        self.tls_files = tls_files or {}  # file name -> path
        self.metadata = metadata if metadata is not None else {}

    def tls(self) -> TlsOptions | None:
        if not self.tls_files and not self.skip_tls_verify:
            return None
        return TlsOptions(
            not self.skip_tls_verify,
            self.tls_files.get("ca.pem"),
            self.tls_files.get("cert.pem"),
            self.tls_files.get("key.pem"),
        )


def config_dir(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def context_id(name: str) -> str:
    import hashlib

    return hashlib.sha256(name.encode()).hexdigest()


def meta_dir(name: str, environ: Mapping[str, str] | None = None) -> str:
    return os.path.join(config_dir(environ), "contexts", "meta", context_id(name))


def tls_dir(name: str, environ: Mapping[str, str] | None = None) -> str:
    return os.path.join(config_dir(environ), "contexts", "tls", context_id(name))


def check_name(name: str) -> None:
    ok = len(name) >= 2 and name[0] in _NAME_FIRST and all(c in _NAME_REST for c in name[1:])
    if not ok:
        raise ContextError(
            f'context name "{name}" is invalid, names are validated against regexp "{NAME_RULE}"'
        )
    if name == DEFAULT:
        raise ContextError('"default" is a reserved context name')


def current_in_config(environ: Mapping[str, str] | None = None) -> str | None:
    path = os.path.join(config_dir(environ), "config.json")
    try:
        with open(path, "rb") as f:
            doc = wirejson.loads(f.read() or b"{}")
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ContextError(f"loading config file {path}: {exc}") from None
    name = doc.get("currentContext") if isinstance(doc, dict) else None
    return name or None


def current_name(
    context_flag: str | None,
    host_flag: str | None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The name of the context a command uses (see the module docstring)."""
    env = os.environ if environ is None else environ
    if context_flag:
        if host_flag:
            raise ContextError("conflicting options: cannot specify both --host and --context")
        return context_flag
    if host_flag or env.get("FREIGHT_HOST") or env.get("DOCKER_HOST"):
        return DEFAULT
    return env.get("DOCKER_CONTEXT") or current_in_config(env) or DEFAULT


def default_context(
    host_flag: str | None, flags: TlsFlags | None, environ: Mapping[str, str] | None = None
) -> tuple[Context, TlsOptions | None]:
    from freight.client.http import resolve_host

    host = resolve_host(host_flag, environ)
    f = flags or TlsFlags()
    tls = from_flags(f.tls, f.tlsverify, f.cacert, f.cert, f.key, environ)
    return Context(DEFAULT, host, DEFAULT_DESCRIPTION), tls


def load(name: str, environ: Mapping[str, str] | None = None) -> Context:
    path = os.path.join(meta_dir(name, environ), "meta.json")
    try:
        with open(path, "rb") as f:
            doc = wirejson.loads(f.read())
    except FileNotFoundError:
        raise ContextError(
            f'context "{name}": context not found: open {path}: no such file or directory'
        ) from None
    except ValueError as exc:
        raise ContextError(f'context "{name}": {path}: {exc}') from None
    endpoint = ((doc.get("Endpoints") or {}).get("docker")) or {}
    metadata = doc.get("Metadata") or {}
    tls_path = os.path.join(tls_dir(name, environ), "docker")
    files = {n: os.path.join(tls_path, n) for n in TLS_FILES if os.path.exists(os.path.join(tls_path, n))}  # fmt: skip
    return Context(
        doc.get("Name") or name,
        endpoint.get("Host") or "",
        metadata.get("Description") or "",
        bool(endpoint.get("SkipTLSVerify")),
        files,
        metadata,
    )


def resolve_endpoint(
    host_flag: str | None,
    context_flag: str | None,
    flags: TlsFlags | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, TlsOptions | None]:
    """The daemon address and TLS options a command talks to."""
    name = current_name(context_flag, host_flag, environ)
    if name == DEFAULT:
        ctx, tls = default_context(host_flag, flags, environ)
        return ctx.host, tls
    try:
        ctx = load(name, environ)
    except ContextError:
        if context_flag or (os.environ if environ is None else environ).get("DOCKER_CONTEXT"):
            raise
        path = os.path.join(config_dir(environ), "config.json")
        raise ContextError(
            f'Current context "{name}" is not found on the file system, '
            f"please check your config file at {path}"
        ) from None
    return ctx.host, ctx.tls()


def list_all(environ: Mapping[str, str] | None = None) -> list[Context]:
    """Stored contexts, by name (the default one not included)."""
    base = os.path.join(config_dir(environ), "contexts", "meta")
    found = []
    for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        meta = os.path.join(base, entry, "meta.json")
        if not os.path.exists(meta):
            continue
        with open(meta, "rb") as f:
            try:
                name = wirejson.loads(f.read()).get("Name")
            except ValueError:
                continue
        if name:
            found.append(load(name, environ))
    return sorted(found, key=lambda c: c.name)


def save(
    ctx: Context, tls_sources: dict[str, str], environ: Mapping[str, str] | None = None
) -> None:
    """Write ``ctx`` (meta.json 0644, TLS copies 0600) as docker does."""
    mdir = meta_dir(ctx.name, environ)
    os.makedirs(mdir, exist_ok=True)
    metadata = dict(ctx.metadata)
    if ctx.description:
        metadata["Description"] = ctx.description
    doc = {
        "Name": ctx.name,
        "Metadata": metadata,
        "Endpoints": {"docker": {"Host": ctx.host, "SkipTLSVerify": ctx.skip_tls_verify}},
    }
    _write(
        os.path.join(mdir, "meta.json"), wirejson.dumps(doc, separators=(",", ":")).encode(), 0o644
    )
    if tls_sources:
        tdir = os.path.join(tls_dir(ctx.name, environ), "docker")
        os.makedirs(tdir, mode=0o700, exist_ok=True)
        for file_name, source in tls_sources.items():
            with open(source, "rb") as f:
                _write(os.path.join(tdir, file_name), f.read(), 0o600)


def _write(path: str, data: bytes, mode: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def remove(name: str, environ: Mapping[str, str] | None = None) -> None:
    import shutil

    shutil.rmtree(meta_dir(name, environ), ignore_errors=True)
    shutil.rmtree(tls_dir(name, environ), ignore_errors=True)


def exists(name: str, environ: Mapping[str, str] | None = None) -> bool:
    return os.path.exists(os.path.join(meta_dir(name, environ), "meta.json"))
