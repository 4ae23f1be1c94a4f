"""``freight update``: change containers' resources and restart policy like
``docker update``, and (freight's own) their published ports and mounts.

Owns: the flags and turning them into the ``POST /containers/{id}/update``
body (see apiserver/routes_update.py for the extension fields). As docker's
CLI: each container is updated in turn, its name echoed on success; the
failures are reported together at the end, exit status 1.

    freight update --publish 9090:80 web         80/tcp is now published on 9090
    freight update --publish-rm 80 web           and no longer
    freight update -v /srv/data:/data:ro web     a bind mount, live if it runs
    freight update --mount-rm /data web
"""

from __future__ import annotations

from freight.cli.flags import Command, Flag
from freight.cli.mountflags import apply_mount_flags, parse_mount_csv
from freight.cli.resourceflags import HOST_KEYS, resource_flags
from freight.cli.session import CliError, Session
from freight.client.http import ApiError, quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_PUBLISH_HELP = "Publish a container's port to the host (replaces that port's bindings)"
_MOUNT_HELP = "Attach a filesystem mount to the container"

UPDATE = Command(
    "update",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Update configuration of one or more containers",
    [
        *resource_flags(),
        Flag("restart", "", "string", "Restart policy to apply when a container exits"),
        Flag("publish", "p", "list", _PUBLISH_HELP),
        Flag("publish-add", "", "list", _PUBLISH_HELP, hidden=True),  # docker service's spelling
        Flag("publish-rm", "", "list", "Stop publishing a container port (PORT[/PROTO])"),
        Flag("mount", "", "list", _MOUNT_HELP, type_name="mount", convert=parse_mount_csv),
        Flag(
            "mount-add",
            "",
            "list",
            _MOUNT_HELP,
            type_name="mount",
            convert=parse_mount_csv,
            hidden=True,
        ),  # fmt: skip
        Flag("volume", "v", "list", "Bind mount a volume (SRC:DST[:OPTS])"),
        Flag("mount-rm", "", "list", "Remove the mount at a container path"),
    ],
    min_args=1,
    aliases=("freight container update", "freight update"),
)

_LIST_FLAGS = ("publish", "publish_add", "publish_rm", "mount", "mount_add", "volume", "mount_rm")


def parse_restart_policy(text: str) -> dict[str, Any]:
    """``on-failure:3`` → {"Name": "on-failure", "MaximumRetryCount": 3} (docker's opts)."""
    name, colon, count = text.partition(":")
    if colon and not name:
        raise CliError("invalid restart policy format: no policy provided before colon")
    policy: dict[str, Any] = {"Name": name}
    if colon:
        try:
            policy["MaximumRetryCount"] = int(count)
        except ValueError:
            raise CliError("invalid restart policy format: maximum retry count must be an integer") from None  # fmt: skip
    return policy


def update_body(opts: dict[str, Any]) -> dict[str, Any]:
    """The request body for the flags that were given (absent: unchanged)."""
    body: dict[str, Any] = {}
    for dest, key in HOST_KEYS.items():
        if opts.get(dest) is not None:
            body[key] = opts[dest]
    if opts.get("restart") is not None:
        body["RestartPolicy"] = parse_restart_policy(opts["restart"])
    _port_fields(opts, body)
    _mount_fields(opts, body)
    return body


def _port_fields(opts: dict[str, Any], body: dict[str, Any]) -> None:
    from freight.errors import InvalidArgument
    from freight.network import portspec

    bindings = []
    for spec in opts.get("publish", []) + opts.get("publish_add", []):
        try:
            bindings += portspec.parse(spec)
        except InvalidArgument as exc:
            raise CliError(str(exc)) from None
    if bindings:
        body["PortBindings"] = portspec.to_api(bindings)[1]
    if opts.get("publish_rm"):
        body["RemovePorts"] = list(opts["publish_rm"])


def _mount_fields(opts: dict[str, Any], body: dict[str, Any]) -> None:
    """-v SRC:DST → Binds, --mount → Mounts (as `run` reads them), --mount-rm → RemoveMounts."""
    config: dict[str, Any] = {}
    mounts = opts.get("mount", []) + opts.get("mount_add", [])
    apply_mount_flags({"volume": opts.get("volume", []), "mount": mounts}, config, body)
    if config.get("Volumes"):
        spec = next(iter(config["Volumes"]))
        raise CliError(f"invalid volume specification: '{spec}': update needs SRC:DST")
    if opts.get("mount_rm"):
        body["RemoveMounts"] = list(opts["mount_rm"])


def main(session: Session, argv: list[str]) -> int:
    opts, names = UPDATE.parse(argv)
    given = any(opts.get(d) is not None for d in (*HOST_KEYS, "restart")) or any(
        opts.get(d) for d in _LIST_FLAGS
    )
    if not given:
        raise CliError("you must provide one or more flags when using this command")
    body = update_body(opts)
    warnings: list[str] = []
    errors: list[str] = []
    for name in names:
        try:
            path = f"/containers/{quote(name, safe='/:@')}/update"
            answer = session.api.http.post_json(path, body)
        except ApiError as exc:
            errors.append(str(exc))
            continue
        session.out(f"{name}\n")
        warnings += (answer or {}).get("Warnings") or []
    if warnings:
        session.out("\n".join(warnings) + "\n")
    if errors:
        raise CliError("\n".join(errors))
    return 0
