"""``freight context create/ls/use/rm/inspect/show`` and ``freight system dial-stdio``.

The store and the choice of endpoint are ``cli.contexts``; this module is the
commands' faces, with docker's output (names on stdout, "Successfully
created context" and "Current context is now" on stderr) and its error
messages, printed bare as docker prints them.
"""

from __future__ import annotations

import os

from freight.cli import contexts
from freight.cli.contexts import DEFAULT, Context, ContextError
from freight.cli.flags import Command, Flag
from freight.cli.formatter import render, resolve_format
from freight.cli.session import CliError, Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CREATE = Command(
    "context create",
    "[OPTIONS] CONTEXT",
    "Create a context",
    [
        Flag("description", "", "string", "Description of the context"),
        Flag("docker", "", "string", "set the docker endpoint", type_name="stringToString"),
    ],
    min_args=1,
    max_args=1,
)
LS = Command(
    "context ls",
    "[OPTIONS]",
    "List contexts",
    [
        Flag("format", "", "string", "Format output using a custom template"),
        Flag("quiet", "q", help="Only show context names"),
    ],
    max_args=0,
)
USE = Command("context use", "CONTEXT", "Set the current docker context", min_args=1, max_args=1)
RM = Command(
    "context rm",
    "CONTEXT [CONTEXT...]",
    "Remove one or more contexts",
    [Flag("force", "f", help="Force the removal of a context in use")],
    min_args=1,
)
INSPECT = Command(
    "context inspect",
    "[OPTIONS] [CONTEXT] [CONTEXT...]",
    "Display detailed information on one or more contexts",
    [Flag("format", "f", "string", "Format output using a custom template")],
)
SHOW = Command("context show", "", "Print the name of the current context", max_args=0)
DIAL_STDIO = Command(
    "system dial-stdio",
    "",
    "Proxy the stdio stream to the daemon connection. Should not be invoked manually.",
    max_args=0,
)

LS_TABLE = (
    "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}"
)
LS_HEADERS = {
    "Name": "NAME",
    "Description": "DESCRIPTION",
    "DockerEndpoint": "DOCKER ENDPOINT",
    "Error": "ERROR",
    "Current": "CURRENT",
}
ENDPOINT_KEYS = ("from", "host", "ca", "cert", "key", "skip-tls-verify")


def _current(session: Session) -> str:
    try:
        return contexts.current_name(session.context, session.host)
    except ContextError as exc:
        raise CliError(str(exc)) from None


def _fail(session: Session, message: str) -> int:
    session.err(f"{message}\n")
    return 1


def parse_endpoint(spec: str) -> dict[str, str]:
    """``host=tcp://h:2376,ca=FILE,...`` -> {key: value}; unknown keys are refused."""
    import csv

    fields = next(csv.reader([spec])) if spec else []
    parsed: dict[str, str] = {}
    for item in fields:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise ContextError(f"unable to create docker endpoint config: invalid value {item!r}")
        if key not in ENDPOINT_KEYS:
            raise ContextError(
                f"unable to create docker endpoint config: unrecognized config key: {key}"
            )
        parsed[key] = value
    return parsed


def _endpoint_from(session: Session, name: str) -> tuple[str, bool, dict[str, str]]:
    """The endpoint of an existing context (or of the default one): host, skip, TLS files."""
    if name == DEFAULT:
        ctx, tls = contexts.default_context(session.host, session.tls)
        files = {}
        if tls is not None:
            files = {n: p for n, p in zip(contexts.TLS_FILES, (tls.cacert, tls.cert, tls.key), strict=True) if p}  # fmt: skip
        return ctx.host, bool(tls and not tls.verify), files
    ctx = contexts.load(name)
    return ctx.host, ctx.skip_tls_verify, dict(ctx.tls_files)


def create_main(session: Session, argv: list[str]) -> int:
    opts, args = CREATE.parse(argv)
    name = args[0]
    try:
        contexts.check_name(name)
        if contexts.exists(name):
            raise ContextError(f'context "{name}" already exists')
        spec = parse_endpoint(opts["docker"] or "")
        base = spec.get("from") or (None if "host" in spec else _current(session))
        host, skip, files = _endpoint_from(session, base) if base else ("", False, {})
        host = spec.get("host", host)
        if "skip-tls-verify" in spec:
            skip = spec["skip-tls-verify"].strip().lower() in ("1", "t", "true")
        for key, file_name in (("ca", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem")):
            if key in spec:
                files[file_name] = _readable(spec[key])
        if not host:
            raise ContextError("unable to create docker endpoint config: no host given")
        _check_host(host)
        ctx = Context(name, host, opts["description"] or "", skip)
        contexts.save(ctx, files)
    except (ContextError, OSError) as exc:
        return _fail(session, str(exc))
    session.out(f"{name}\n")
    session.err(f'Successfully created context "{name}"\n')
    return 0


def _readable(path: str) -> str:
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise ContextError(
            f"unable to create docker endpoint config: open {path}: no such file or directory"
        )
    return path


def _check_host(host: str) -> None:
    scheme = host.partition("://")[0] if "://" in host else ""
    if scheme not in ("unix", "tcp", "ssh", "npipe", "fd"):
        raise ContextError(
            f"unable to create docker endpoint config: unable to parse docker host `{host}`"
        )


def _rows(session: Session) -> list[dict[str, Any]]:
    current = _current(session)
    default, _ = contexts.default_context(None if session.context else session.host, session.tls)
    rows = [_row(default, current)]
    rows += [_row(ctx, current) for ctx in contexts.list_all()]
    return rows


def _row(ctx: Context, current: str) -> dict[str, Any]:
    return {
        "Current": ctx.name == current,
        "Description": ctx.description,
        "DockerEndpoint": ctx.host,
        "Error": "",
        "Name": ctx.name,
    }


def ls_main(session: Session, argv: list[str]) -> int:
    opts, _ = LS.parse(argv)
    fmt = resolve_format(opts["format"], LS_TABLE, opts["quiet"], "{{.Name}}")
    session.out(render(fmt, _rows(session), LS_HEADERS))
    return 0


def use_main(session: Session, argv: list[str]) -> int:
    _, args = USE.parse(argv)
    name = args[0]
    if name != DEFAULT and not contexts.exists(name):
        return _fail(session, f'context "{name}" does not exist')
    from freight.cli import dockerconfig

    doc = dockerconfig.load()
    if name == DEFAULT:
        doc.pop("currentContext", None)
    else:
        doc["currentContext"] = name
    dockerconfig.save(doc)
    session.out(f"{name}\n")
    session.err(f'Current context is now "{name}"\n')
    if os.environ.get("DOCKER_HOST") or os.environ.get("FREIGHT_HOST"):
        session.err(
            "Warning: DOCKER_HOST environment variable overrides the active context. "
            "To use a context, either set the global --context flag, or unset DOCKER_HOST environment variable.\n"
        )
    return 0


def rm_main(session: Session, argv: list[str]) -> int:
    opts, args = RM.parse(argv)
    current = contexts.current_in_config()
    status = 0
    for name in args:
        if name == DEFAULT:
            status = _fail(session, 'default: context "default" cannot be removed')
            continue
        if not contexts.exists(name):
            status = _fail(session, f'context "{name}" does not exist')
            continue
        if name == current:
            if not opts["force"]:
                status = _fail(session, f'context "{name}" is in use, set -f flag to force remove')
                continue
            from freight.cli import dockerconfig

            doc = dockerconfig.load()
            doc.pop("currentContext", None)
            dockerconfig.save(doc)
        contexts.remove(name)
        session.out(f"{name}\n")
    return status


def inspect_doc(session: Session, name: str) -> dict[str, Any]:
    if name == DEFAULT:
        ctx, tls = contexts.default_context(session.host, session.tls)
        storage = {"MetadataPath": "<IN MEMORY>", "TLSPath": "<IN MEMORY>"}
        skip = bool(tls and not tls.verify)
    else:
        ctx = contexts.load(name)
        storage = {"MetadataPath": contexts.meta_dir(name), "TLSPath": contexts.tls_dir(name)}
        skip = ctx.skip_tls_verify
    metadata = dict(ctx.metadata)
    if ctx.description and name != DEFAULT:
        metadata["Description"] = ctx.description
    return {
        "Name": ctx.name,
        "Metadata": metadata,
        "Endpoints": {"docker": {"Host": ctx.host, "SkipTLSVerify": skip}},
        "TLSMaterial": {"docker": sorted(ctx.tls_files)} if ctx.tls_files else {},
        "Storage": storage,
    }


def inspect_main(session: Session, argv: list[str]) -> int:
    import json

    opts, args = INSPECT.parse(argv)
    docs, status = [], 0
    for name in args or [_current(session)]:
        try:
            docs.append(inspect_doc(session, name))
        except ContextError as exc:
            status = _fail(session, str(exc))
    if opts["format"]:
        session.out(render(opts["format"], docs, {}))
    else:
        session.out(json.dumps(docs, indent=4) + "\n")
    return status


def show_main(session: Session, argv: list[str]) -> int:
    SHOW.parse(argv)
    session.out(f"{_current(session)}\n")
    return 0


def dial_stdio_main(session: Session, argv: list[str]) -> int:
    """Copy stdin to the daemon's socket and the socket to stdout, with half-close."""
    DIAL_STDIO.parse(argv)
    from freight.cli.dialstdio import proxy
    from freight.client.http import EngineClient

    host, tls = session.endpoint()
    sock = EngineClient(host, tls=tls).connect()
    try:
        proxy(sock, 0, 1)
    finally:
        sock.close()
    return 0
