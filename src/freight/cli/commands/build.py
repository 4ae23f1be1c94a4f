"""``freight build``: build an image from a Dockerfile and a context.

Owns: the command's flags, turning them into ``POST /build``'s query (the
legacy builder protocol, ``EngineAPI.build``), the ``X-Registry-Config``
header (every login in docker's config file, so ``FROM`` can pull private
images), reading ``--secret`` values, and showing the daemon's message stream:

- ``plain``: docker's classic stream text, each line prefixed with the step it
  belongs to, BuildKit-plain style (``#3 [stage-0 3/5] RUN make``, ``#3 CACHED``,
  ``#3 DONE 0.3s``);
- ``tty`` (``auto`` on a terminal): a live view redrawn in place, one line per
  step with its state and time and the last output lines of running steps;
- ``quiet`` (or ``-q``): only the image ID.

The context itself (folder with ``.dockerignore``, tarball, ``-``, URL, git) is
packed by ``cli.buildcontext``; the three views are ``cli.buildprogress``. Exit status: 1 when the build fails (docker's),
125 for a bad flag.

freight extensions of the API (dockerd ignores both): ``freightsteps=1`` asks
for ``{"aux": {"freight": {step, total, stage, instruction, state, seconds}}}``
messages that drive the step views; with a daemon that does not send them the
output is the classic stream unchanged. ``secrets`` carries ``--secret``: the
legacy ``/build`` API has no field for secrets (BuildKit passes them over its
session protocol), so the CLI reads each secret's file or environment variable
itself and sends a JSON map ``id -> base64(content)``, for the daemon to mount
at ``RUN --mount=type=secret``. Being in the query, the values travel in the
request line: fine on the local socket, but a daemon must not log the target.
"""

from __future__ import annotations

import os
import sys

from freight.cli.buildprogress import (  # noqa: F401 - the views, named here too
    LOG_TAIL,
    BuildView,
    LiveView,
    PlainView,
    QuietView,
    drive,
    make_view,
)
from freight.cli.flags import Command, Flag, key_value_map
from freight.cli.session import CliError, Session
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO

    from freight.cli.buildcontext import BuildContext

PROGRESS_MODES = ("auto", "plain", "tty", "quiet")


def _progress_mode(text: str) -> str:
    if text not in PROGRESS_MODES:
        raise ValueError(f"invalid progress mode, expected one of {', '.join(PROGRESS_MODES)}")
    return text


def _extra_host(text: str) -> str:
    """docker's ValidateExtraHost: ``name:ip`` or ``name=ip`` -> ``name:ip``."""
    sep = "=" if "=" in text else ":"
    name, found, address = text.partition(sep)
    address = address.strip("[]")
    if not found or not name or not address:
        raise ValueError(f'bad format for add-host: "{text}"')
    if address != "host-gateway" and not _is_ip(address):
        raise ValueError(f'invalid IP address in add-host: "{address}"')
    return f"{name}:{address}"


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _secret_spec(text: str) -> tuple[str, str, str]:
    """``id=x,src=path`` / ``id=x,env=VAR`` / ``id=x`` -> (id, "file"|"env", path or var)."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in ("id", "type", "src", "source", "env"):
            raise ValueError(f"unexpected key '{key}' in '{item}'")
        fields["src" if key == "source" else key] = value
    ident = fields.get("id", "")
    kind = fields.get("type") or ("env" if "env" in fields else "file")
    if not ident:
        raise ValueError("secret id is required")
    if kind not in ("file", "env"):
        raise ValueError(f"unsupported secret type {kind!r}")
    if "src" in fields:
        return ident, "file", fields["src"]
    # Neither src nor env: the environment variable named like the secret, as buildx.
    return ident, "env", fields.get("env") or ident


BUILD = Command(
    "build",
    "[OPTIONS] PATH | URL | -",
    "Build an image from a Dockerfile",
    [
        Flag(
            "add-host",
            "",
            "list",
            'Add a custom host-to-IP mapping ("host:ip")',
            convert=_extra_host,
        ),
        Flag("build-arg", "", "list", "Set build-time variables"),
        Flag("cache-from", "", "list", "Images to consider as cache sources", type_name="strings"),
        Flag("file", "f", "string", 'Name of the Dockerfile (Default is "PATH/Dockerfile")'),
        Flag("force-rm", "", help="Always remove intermediate containers"),
        Flag("iidfile", "", "string", "Write the image ID to the file"),
        Flag("label", "", "list", "Set metadata for an image"),
        Flag(
            "network",
            "",
            "string",
            'Set the networking mode for the RUN instructions during build (default "default")',
            default="default",
        ),
        Flag("no-cache", "", help="Do not use cache when building the image"),
        Flag("platform", "", "string", "Set platform if server is multi-platform capable"),
        Flag(
            "progress",
            "",
            "string",
            'Set type of progress output ("auto", "plain", "tty", "quiet") (default "auto")',
            default="auto",
            convert=_progress_mode,
        ),
        Flag("pull", "", help="Always attempt to pull a newer version of the image"),
        Flag("quiet", "q", help="Suppress the build output and print image ID on success"),
        Flag(
            "rm",
            "",
            help="Remove intermediate containers after a successful build (default true)",
            default=True,
        ),
        Flag(
            "secret",
            "",
            "list",
            'Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")',
            type_name="stringArray",
            convert=_secret_spec,
        ),
        Flag("tag", "t", "list", 'Name and optionally a tag in the "name:tag" format'),
        Flag("target", "", "string", "Set the target build stage to build."),
    ],
    min_args=1,
    max_args=1,
    aliases=("freight image build", "freight build", "freight builder build"),
)


# ------------------------------------------------------------------ the request


def build_args(items: list[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    """``--build-arg K=V``; a bare ``K`` takes the client's $K, or null when unset (docker)."""
    out: dict[str, str | None] = {}
    for item in items:
        key, eq, value = item.partition("=")
        out[key] = value if eq else environ.get(key)
    return out


def read_secrets(specs: list[tuple[str, str, str]], environ: Mapping[str, str]) -> dict[str, bytes]:
    """The secrets' contents, read here: the daemon may not see the client's files."""
    out = {}
    for ident, kind, where in specs:
        if kind == "env":
            if where not in environ:
                raise CliError(f"secret {ident}: environment variable {where} is not set")
            out[ident] = environ[where].encode()
            continue
        try:
            with open(os.path.expanduser(where), "rb") as f:
                out[ident] = f.read()
        except OSError as e:
            raise CliError(f"failed to read secret {ident} from {where}: {e.strerror}") from None
    return out


def registry_config() -> dict[str, dict[str, str]]:
    """Every saved login, keyed by server, as docker sends X-Registry-Config."""
    from freight.cli import dockerconfig

    try:
        doc = dockerconfig.load()
    except ValueError:
        return {}
    servers = set(doc.get("auths") or {}) | set(doc.get("credHelpers") or {})
    out = {}
    for server in sorted(servers):
        try:
            creds = dockerconfig.get(server)
        except (OSError, RuntimeError, ValueError):
            # docker ignores a failing helper here too: one broken login
            # must not stop builds that pull only public images.
            continue
        if creds:
            out[creds.get("serveraddress") or server] = creds
    return out


def request_options(opts: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of ``EngineAPI.build`` for parsed flags (context aside)."""
    quiet = bool(opts["quiet"]) or opts["progress"] == "quiet"
    args = build_args(opts["build_arg"], environ)
    if environ.get("SOURCE_DATE_EPOCH") and "SOURCE_DATE_EPOCH" not in args:
        args["SOURCE_DATE_EPOCH"] = environ["SOURCE_DATE_EPOCH"]  # as buildx: reproducible
    return {
        "tags": list(opts["tag"]),
        "quiet": quiet,
        "no_cache": bool(opts["no_cache"]),
        "pull": bool(opts["pull"]),
        "rm": bool(opts["rm"]),
        "force_rm": bool(opts["force_rm"]),
        "build_args": args,
        "labels": key_value_map(opts["label"]),
        "cache_from": list(opts["cache_from"]),
        "network_mode": opts["network"] or None,
        "extra_hosts": list(opts["add_host"]),
        "platform": opts["platform"] or environ.get("DOCKER_DEFAULT_PLATFORM") or None,
        "target": opts["target"] or None,
        "secrets": read_secrets(opts["secret"], environ),
        "freight_steps": not quiet,
    }


def choose_mode(progress: str, quiet: bool, out: TextIO) -> str:
    if quiet or progress == "quiet":
        return "quiet"
    if progress == "auto":
        return "tty" if out.isatty() and os.environ.get("TERM") != "dumb" else "plain"
    return progress


# ------------------------------------------------------------------ the command


def build_main(session: Session, argv: list[str]) -> int:
    opts, args = BUILD.parse(argv)
    options = request_options(opts, os.environ)
    mode = choose_mode(opts["progress"], options["quiet"], sys.stdout)
    iidfile = opts["iidfile"]
    if iidfile:
        _remove(iidfile)  # a failed build must not leave the previous build's ID
    from freight.builder.context import LOCAL_CONTEXT_REFUSED
    from freight.cli.buildcontext import prepare

    local = os.path.isdir(args[0]) and session.api.reads_local_folders()
    context = prepare(args[0], opts["file"], sys.stdin.buffer, local=local)
    try:
        view = make_view(mode, sys.stdout, options["tags"])
        try:
            image_id = _send(session, context, view, options)
        except ApiError as exc:
            if context.upload is None or LOCAL_CONTEXT_REFUSED not in str(exc):
                raise
            image_id = _send(session, context.upload(), view, options)  # not the same folder there
    except ApiError as exc:
        raise CliError(str(exc), 1) from None
    finally:
        context.cleanup()
    if iidfile:
        _write_iidfile(iidfile, image_id)
    return 0


def _send(session: Session, context: BuildContext, view: BuildView, options: dict) -> str:
    body = context.body
    if body is not None and context.local_path is None:
        body = view.sending(body)
    local = (context.local_path, context.local_id) if context.local_path else None
    messages = session.api.build(
        body,
        dockerfile=context.dockerfile,
        remote=context.remote,
        registry_config=registry_config(),
        local_context=local,
        **options,
    )
    return drive(messages, view)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise CliError(f"removing image ID file: {e}") from None


def _write_iidfile(path: str, image_id: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(image_id)
    except OSError as e:
        raise CliError(f"failed to write image ID to file: {e}") from None
