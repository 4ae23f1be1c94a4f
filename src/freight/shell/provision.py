"""Bringing up a user's container: create if missing, start if stopped, reuse if running.

Owns: the container's create request (image, keep-alive command, user,
hostname, label, limits, binds), the decision from its inspected state
(``decide``), and carrying it out against an ``Engine`` (``ensure``). The
engine is a narrow role, so the decision logic is tested with a fake;
``DaemonEngine`` is the real one over ``freight.client.http.EngineClient``.

Two logins racing to create the same container: the loser's create answers
409, and it carries on with the winner's container (start of a running
container answers 304, which is success).
"""

from __future__ import annotations

from freight.client.http import ApiError, quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    from freight.client.http import EngineClient
    from freight.shell.account import Account
    from freight.shell.config import Settings

    JSON = dict[str, Any]

    class Engine(Protocol):
        """What provisioning needs from the daemon."""

        def inspect(self, name: str) -> JSON | None: ...
        def create(self, name: str, body: JSON) -> str: ...
        def start(self, cid: str) -> None: ...
        def pull(self, image: str) -> None: ...


USER_LABEL = "org.freight.shell.user"
# busybox's sleep needs a number; the trap makes `stop` quick instead of 10 s.
KEEPALIVE = "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"

CREATE, START, REUSE = "create", "start", "reuse"


class ProvisionError(Exception):
    """The user's container cannot be brought up; ``str()`` says why."""


class NameTaken(Exception):
    """Create answered 409: someone created the name first."""


class ImageMissing(Exception):
    """Create answered 404 for the image."""


def container_name(settings: Settings, account: Account) -> str:
    return settings.name_prefix + account.name


def binds(settings: Settings, account: Account) -> list[str]:
    """``HostConfig.Binds``: the home (same path inside) and the configured mounts."""
    out = [f"{account.home}:{account.home}"] if settings.home else []
    for spec in settings.mounts:
        out.append(spec.replace("{user}", account.name).replace("{home}", account.home))
    return out


def create_body(settings: Settings, account: Account) -> JSON:
    """The POST /containers/create body for ``account``'s container."""
    limits = settings.limits
    host_config: JSON = {
        "Binds": binds(settings, account),
        # setuid binaries in the image must not hand the user root.
        "SecurityOpt": ["no-new-privileges"],
    }
    if limits.get("memory"):
        host_config["Memory"] = limits["memory"]
    if limits.get("nano_cpus"):
        host_config["NanoCpus"] = limits["nano_cpus"]
    if limits.get("pids"):
        host_config["PidsLimit"] = limits["pids"]
    return {
        "Image": settings.image,
        # Entrypoint, not Cmd: an image's own entrypoint must not wrap the loop.
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": [KEEPALIVE],
        "User": account.user_spec,
        "Hostname": account.name,
        "Labels": {USER_LABEL: account.name},
        "HostConfig": host_config,
    }


def decide(state: JSON | None, account: Account, name: str) -> str:
    """CREATE, START or REUSE from the inspected container (None: missing)."""
    if state is None:
        return CREATE
    owner = ((state.get("Config") or {}).get("Labels") or {}).get(USER_LABEL)
    if owner != account.name:
        raise ProvisionError(
            f"container {name} exists but is not {account.name}'s shell container "
            f"(label {USER_LABEL}={owner or '<none>'}); remove or rename it"
        )
    status = state.get("State") or {}
    if status.get("Paused"):
        raise ProvisionError(f"container {name} is paused; an administrator must unpause it")
    if status.get("Running"):
        return REUSE
    if status.get("Status", "exited") in ("created", "exited"):
        return START
    raise ProvisionError(f"container {name} is {status.get('Status')}; try again shortly")


def ensure(engine: Engine, settings: Settings, account: Account) -> tuple[str, str]:
    """Bring the container up; returns (container id, what was done)."""
    name = container_name(settings, account)
    state = engine.inspect(name)
    action = decide(state, account, name)
    if action == REUSE:
        return _id(state, name), REUSE
    cid = _create(engine, settings, account, name) if action == CREATE else _id(state, name)
    engine.start(cid)
    return cid, action


def _create(engine: Engine, settings: Settings, account: Account, name: str) -> str:
    body = create_body(settings, account)
    try:
        try:
            return engine.create(name, body)
        except ImageMissing:
            engine.pull(settings.image)
            return engine.create(name, body)
    except NameTaken:
        # A concurrent login won the race: use its container, if it is ours.
        state = engine.inspect(name)
        if decide(state, account, name) == CREATE:
            raise ProvisionError(f"container {name} vanished while being created") from None
        return _id(state, name)


def _id(state: JSON | None, name: str) -> str:
    if not state or not state.get("Id"):
        raise ProvisionError(f"container {name} disappeared; try again")
    return state["Id"]


class DaemonEngine:
    """``Engine`` over the blocking Engine API client."""

    def __init__(self, client: EngineClient) -> None:
        self.http = client

    def inspect(self, name: str) -> JSON | None:
        try:
            return self.http.get_json(f"/containers/{quote(name)}/json")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, name: str, body: JSON) -> str:
        try:
            return self.http.post_json("/containers/create", body, {"name": name})["Id"]
        except ApiError as exc:
            if exc.status == 409:
                raise NameTaken(name) from None
            if exc.status == 404 and "image" in exc.message.lower():
                raise ImageMissing(body["Image"]) from None
            raise

    def start(self, cid: str) -> None:
        self.http.request("POST", f"/containers/{quote(cid)}/start").read()

    def pull(self, image: str) -> None:
        """POST /images/create; the stream's "error" message becomes ProvisionError."""
        if "@" not in image and ":" not in image.rsplit("/", 1)[-1]:
            image += ":latest"  # without a tag the API would pull every tag
        response = self.http.request("POST", "/images/create", params={"fromImage": image})
        for message in response.iter_json():
            if isinstance(message, dict) and message.get("error"):
                raise ProvisionError(f"pulling {image}: {message['error']}")
