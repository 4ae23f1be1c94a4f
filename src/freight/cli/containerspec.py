"""What ``run`` and ``create`` accept, and the create request they make of it.

Owns: the run/create flag table, env and label files (docker's
``parseKeyValueFile`` rules), ``-e K`` taking K from our environment, and
building the ``POST /containers/create`` body (Config + HostConfig).
"""

from __future__ import annotations

import os

from freight.cli.flags import Command, Flag
from freight.cli.lifecycleflags import apply_lifecycle_flags, lifecycle_flags
from freight.cli.mountflags import apply_mount_flags, parse_mount_csv
from freight.cli.netflags import apply_network_options, network_flags
from freight.cli.resourceflags import resource_flags, resources_given
from freight.cli.securityflags import apply_security_flags, security_flags
from freight.cli.session import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t"
_STREAMS = ("stdin", "stdout", "stderr")
PULL_POLICIES = ("always", "missing", "never")


def _attach_stream(text: str) -> str:
    if text.lower() not in _STREAMS:
        raise ValueError("valid streams are STDIN, STDOUT and STDERR")
    return text.lower()


def _pull_policy(text: str) -> str:
    if text not in PULL_POLICIES:
        raise ValueError(
            f'invalid pull option: \'{text}\': must be one of "always", "missing" or "never"'
        )
    return text


def container_flags() -> list[Flag]:
    """The options run and create share."""
    return [
        Flag("attach", "a", "list", "Attach to STDIN, STDOUT or STDERR", convert=_attach_stream),
        Flag("cap-add", "", "list", "Add Linux capabilities"),
        Flag("cap-drop", "", "list", "Drop Linux capabilities"),
        *resource_flags(),
        Flag("entrypoint", "", "string", "Overwrite the default ENTRYPOINT of the image"),
        Flag("env", "e", "list", "Set environment variables"),
        Flag("env-file", "", "list", "Read in a file of environment variables"),
        Flag("hostname", "h", "string", "Container host name"),
        Flag("interactive", "i", help="Keep STDIN open even if not attached"),
        Flag("label", "l", "list", "Set meta data on a container"),
        Flag("label-file", "", "list", "Read in a line delimited file of labels"),
        Flag("log-driver", "", "string", "Logging driver for the container"),
        Flag("log-opt", "", "list", "Log driver options"),
        Flag(
            "mount",
            "",
            "list",
            "Attach a filesystem mount to the container",
            type_name="mount",
            convert=parse_mount_csv,
        ),
        Flag("name", "", "string", "Assign a name to the container"),
        Flag(
            "rm",
            "",
            help="Automatically remove the container and its associated anonymous volumes when it exits",
        ),
        Flag(
            "pull",
            "",
            "string",
            'Pull image before running ("always", "missing", "never") (default "missing")',
            convert=_pull_policy,
        ),
        Flag("read-only", "", help="Mount the container's root filesystem as read only"),
        Flag("runtime", "", "string", "Runtime to use for this container"),
        Flag("security-opt", "", "list", "Security Options"),
        Flag("stop-signal", "", "string", "Signal to stop the container"),
        Flag("stop-timeout", "", "int", "Timeout (in seconds) to stop a container"),
        Flag("tmpfs", "", "list", "Mount a tmpfs directory"),
        Flag("tty", "t", help="Allocate a pseudo-TTY"),
        Flag("user", "u", "string", "Username or UID (format: <name|uid>[:<group|gid>])"),
        Flag("volume", "v", "list", "Bind mount a volume"),
        Flag("volumes-from", "", "list", "Mount volumes from the specified container(s)"),
        Flag("workdir", "w", "string", "Working directory inside the container"),
        *network_flags(),
        *security_flags(),
        *lifecycle_flags(),
    ]


DETACH_KEYS_HELP = "Override the key sequence for detaching a container"

RUN = Command(
    "run",
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    "Create and run a new container from an image",
    [
        *container_flags(),
        Flag("detach", "d", help="Run container in background and print container ID"),
        Flag("detach-keys", "", "string", DETACH_KEYS_HELP),
        Flag(
            "sig-proxy",
            "",
            help="Proxy received signals to the process (default true)",
            default=True,
        ),
    ],
    min_args=1,
    interspersed=False,
    aliases=("freight container run", "freight run"),
)
RUN.flags.sort(key=lambda f: f.long)

CREATE = Command(
    "create",
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    "Create a new container",
    container_flags(),
    min_args=1,
    interspersed=False,
    aliases=("freight container create", "freight create"),
)
CREATE.flags.sort(key=lambda f: f.long)


def read_kv_file(path: str, from_env: bool) -> list[str]:
    """Lines ``K=V``; a bare ``K`` takes our environment's value (env files only).

    Blank lines and ``#`` comments are skipped; the value is kept verbatim.
    Errors use docker's wording, naming the bad variable or line.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise CliError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from None
    lines: list[str] = []
    for number, line_bytes in enumerate(raw.splitlines(), 1):
        try:
            line = line_bytes.decode("utf-8").lstrip()
        except UnicodeDecodeError:
            raise CliError(
                f"invalid env file ({path}): invalid utf8 bytes at line {number}"
            ) from None
        entry = _kv_line(line, from_env)
        if entry is not None:
            lines.append(entry)
    return lines


def _kv_line(line: str, from_env: bool) -> str | None:
    if not line or line.startswith("#"):
        return None
    variable, has_value, value = line.partition("=")
    variable = variable.lstrip(_WHITESPACE)
    if any(c in variable for c in _WHITESPACE):
        raise CliError(f"poorly formatted environment: variable '{variable}' contains whitespaces")
    if not variable:
        raise CliError(f"poorly formatted environment: no variable name on line '{line}'")
    if has_value:
        return f"{variable}={value}"
    if from_env and variable in os.environ:
        return f"{variable}={os.environ[variable]}"
    return None


def env_list(files: list[str], values: list[str]) -> list[str]:
    """Env files first, then ``-e`` (docker's order, so ``-e`` wins)."""
    env: list[str] = []
    for path in files:
        env += read_kv_file(path, from_env=True)
    for item in values:
        key, has_value, _ = item.partition("=")
        if not key:
            raise CliError(f"invalid environment variable: {item}")
        if not has_value and key in os.environ:
            item = f"{key}={os.environ[key]}"
        env.append(item)
    return env


def label_map(files: list[str], values: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in [line for path in files for line in read_kv_file(path, from_env=False)] + values:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def log_config(opts: dict[str, Any]) -> dict[str, Any] | None:
    """--log-driver/--log-opt k=v → HostConfig.LogConfig."""
    if not (opts.get("log_driver") or opts.get("log_opt")):
        return None
    options = {}
    for item in opts["log_opt"]:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(
                f'invalid argument "{item}" for "--log-opt" flag: expected key=value', 125
            )
        options[key] = value
    return {"Type": opts["log_driver"] or "", "Config": options}


def create_body(opts: dict[str, Any], image: str, cmd: list[str], detach: bool) -> dict[str, Any]:
    """The JSON body of POST /containers/create for these options."""
    streams = set(opts["attach"])
    attach_stdin = "stdin" in streams or opts["interactive"]
    if not streams:
        streams = {"stdout", "stderr"}
    config: dict[str, Any] = {
        "Hostname": opts["hostname"] or "",
        "User": opts["user"] or "",
        "AttachStdin": attach_stdin and not detach,
        "AttachStdout": "stdout" in streams and not detach,
        "AttachStderr": "stderr" in streams and not detach,
        "Tty": opts["tty"],
        "OpenStdin": opts["interactive"],
        "StdinOnce": opts["interactive"] and attach_stdin and not detach,
        "Env": env_list(opts["env_file"], opts["env"]),
        "Cmd": cmd or None,
        "Image": image,
        "WorkingDir": opts["workdir"] or "",
        "Labels": label_map(opts["label_file"], opts["label"]),
    }
    if opts["entrypoint"] is not None:
        # An empty --entrypoint "" resets the image's entrypoint, as in docker.
        config["Entrypoint"] = [opts["entrypoint"]]
    if opts["stop_signal"]:
        config["StopSignal"] = opts["stop_signal"]
    if opts["stop_timeout"] is not None:
        config["StopTimeout"] = opts["stop_timeout"]
    config["HostConfig"] = host_config(opts)
    apply_network_options(opts, config)
    apply_mount_flags(opts, config, config["HostConfig"])
    apply_lifecycle_flags(opts, config)  # --restart, --health-*
    return config


def host_config(opts: dict[str, Any]) -> dict[str, Any]:
    host: dict[str, Any] = {"AutoRemove": bool(opts.get("rm")), **resources_given(opts)}
    if opts["runtime"]:
        host["Runtime"] = opts["runtime"]
    for flag, key in (
        ("cap_add", "CapAdd"),
        ("cap_drop", "CapDrop"),
        ("security_opt", "SecurityOpt"),
    ):
        if opts.get(flag):
            host[key] = opts[flag]
    if opts.get("read_only"):
        host["ReadonlyRootfs"] = True
    if (logging := log_config(opts)) is not None:
        host["LogConfig"] = logging
    apply_security_flags(opts, host)
    return host
