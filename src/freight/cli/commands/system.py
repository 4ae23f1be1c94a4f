"""``freight version`` and ``freight info``.

Owns: the client-side facts (our version, API version, Python, platform)
and laying out the daemon's ``/version`` and ``/info`` answers in docker's
shape (``Client:`` / ``Server:`` sections, aligned labels), or through
``--format`` as a Go template.
"""

from __future__ import annotations

import platform
import sys

from freight import __version__
from freight.cli.flags import Command, Flag
from freight.cli.gotemplate import Template, TemplateError
from freight.cli.main import build_id
from freight.cli.session import CliError, Session
from freight.cli.units import bytes_size
from freight.client.http import API_VERSION, ClientError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_FORMAT = [Flag("format", "f", "string", "Format output using a custom template")]
VERSION = Command(
    "version", "[OPTIONS]", "Show the freight version information", _FORMAT, max_args=0
)
INFO = Command("info", "[OPTIONS]", "Display system-wide information", _FORMAT, max_args=0)

_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def client_version() -> dict[str, Any]:
    machine = platform.machine()
    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "PythonVersion": platform.python_version(),
        "GitCommit": build_id(),
        "Os": sys.platform,
        "Arch": _ARCH.get(machine, machine),
        "Context": "default",
    }


def _section(rows: list[tuple[str, Any]], indent: str) -> list[str]:
    width = max(len(label) for label, _ in rows) + 2
    return [f"{indent}{(label + ':').ljust(width)}{value}".rstrip() for label, value in rows]


def _client_lines(client: dict[str, Any]) -> list[str]:
    return ["Client:"] + _section(
        [
            ("Version", client["Version"]),
            ("API version", client["ApiVersion"]),
            ("Python version", client["PythonVersion"]),
            ("Git commit", client["GitCommit"]),
            ("OS/Arch", f"{client['Os']}/{client['Arch']}"),
            ("Context", client["Context"]),
        ],
        " ",
    )


def _server_lines(server: dict[str, Any]) -> list[str]:
    name = (server.get("Platform") or {}).get("Name") or "freight"
    lines = ["", f"Server: {name}"]
    components = server.get("Components") or [
        {"Name": "Engine", "Version": server.get("Version", ""), "Details": server}
    ]
    for component in components:
        details = component.get("Details") or {}
        lines.append(f" {component.get('Name', '')}:")
        if component.get("Name") == "Engine":
            rows = [
                ("Version", component.get("Version", "")),
                (
                    "API version",
                    f"{server.get('ApiVersion', '')} (minimum version {server.get('MinAPIVersion', '')})",
                ),
                ("Python version", details.get("PythonVersion") or server.get("GoVersion", "")),
                ("Git commit", details.get("GitCommit") or server.get("GitCommit", "")),
                ("Built", server.get("BuildTime", "")),
                ("OS/Arch", f"{server.get('Os', '')}/{server.get('Arch', '')}"),
                ("Experimental", str(server.get("Experimental", False)).lower()),
            ]
        else:
            rows = [("Version", component.get("Version", ""))] + [
                (k, v) for k, v in details.items()
            ]
        lines += _section(rows, "  ")
    return lines


def _formatted(fmt: str, data: Any) -> str:
    try:
        return Template(fmt).execute(data) + "\n"
    except TemplateError as exc:
        raise CliError(f"template: {exc}") from None


def version_main(session: Session, argv: list[str]) -> int:
    opts, _ = VERSION.parse(argv)
    client = client_version()
    try:
        server = session.api.version()
    except ClientError as exc:
        server, error = None, exc
    if opts["format"]:
        session.out(_formatted(opts["format"], {"Client": client, "Server": server}))
    else:
        lines = _client_lines(client) + (_server_lines(server) if server else [])
        session.out("\n".join(lines) + "\n")
    if server is None:
        raise CliError(str(error), 1)
    return 0


def info_main(session: Session, argv: list[str]) -> int:
    opts, _ = INFO.parse(argv)
    try:
        info = session.api.info()
    except ClientError as exc:
        raise CliError(str(exc)) from None
    if opts["format"]:
        session.out(_formatted(opts["format"], info))
        return 0
    client = [
        ("Version", __version__),
        ("Context", "default"),
        ("Debug Mode", str(session.debug).lower()),
    ]
    lines = ["Client:", *_section(client, " "), "", "Server:", *server_info_lines(info)]
    session.out("\n".join(lines) + "\n")
    for warning in info.get("Warnings") or []:
        session.err(f"{warning}\n")
    return 0


def server_info_lines(info: dict[str, Any]) -> list[str]:
    lines = [f" Containers: {info.get('Containers', 0)}"]
    lines += [f"  {k}: {info.get(k, 0)}" for k in ("Running", "Paused", "Stopped")]
    runtimes = " ".join(sorted(info.get("Runtimes") or {}))
    rows = [
        ("Images", info.get("Images", 0)),
        ("Server Version", info.get("ServerVersion", "")),
        ("Storage Driver", info.get("Driver", "")),
        ("Logging Driver", info.get("LoggingDriver", "")),
        ("Cgroup Driver", info.get("CgroupDriver", "")),
        ("Cgroup Version", info.get("CgroupVersion", "")),
        ("Runtimes", runtimes),
        ("Default Runtime", info.get("DefaultRuntime", "")),
    ]
    lines += [f" {label}: {value}".rstrip() for label, value in rows]
    lines += _security_lines(info.get("SecurityOptions") or [])
    rows = [
        ("Kernel Version", info.get("KernelVersion", "")),
        ("Operating System", info.get("OperatingSystem", "")),
        ("OSType", info.get("OSType", "")),
        ("Architecture", info.get("Architecture", "")),
        ("CPUs", info.get("NCPU", 0)),
        ("Total Memory", bytes_size(info.get("MemTotal") or 0)),
        ("Name", info.get("Name", "")),
        ("ID", info.get("ID", "")),
        ("Docker Root Dir", info.get("DockerRootDir", "")),
        ("Debug Mode", str(info.get("Debug", False)).lower()),
    ]
    lines += [f" {label}: {value}".rstrip() for label, value in rows]
    return lines + _registry_and_restore_lines(info)


def _security_lines(options: list[str]) -> list[str]:
    """docker's block: each option's name, and its profile when it has one."""
    if not options:
        return []
    lines = [" Security Options:"]
    for option in options:
        fields = dict(kv.split("=", 1) for kv in option.split(",") if "=" in kv)
        lines.append(f"  {fields.get('name', option)}")
        if "profile" in fields:
            lines.append(f"   Profile: {fields['profile']}")
    return lines


def _registry_and_restore_lines(info: dict[str, Any]) -> list[str]:
    """The tail of docker's server section: registries, mirrors, live restore."""
    registry = info.get("RegistryConfig") or {}
    insecure = [
        name for name, index in (registry.get("IndexConfigs") or {}).items()
        if not index.get("Secure", True)
    ] + list(registry.get("InsecureRegistryCIDRs") or [])  # fmt: skip
    lines = [" Insecure Registries:", *[f"  {name}" for name in insecure]] if insecure else []
    mirrors = registry.get("Mirrors") or []
    if mirrors:
        lines += [" Registry Mirrors:", *[f"  {m}" for m in mirrors]]
    enabled = str(bool(info.get("LiveRestoreEnabled"))).lower()
    return [*lines, f" Live Restore Enabled: {enabled}"]
