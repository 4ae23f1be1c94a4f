"""Plain typed models of the daemon's objects: what a container *is* inside freight.

The HTTP edge translates Docker's Config/HostConfig JSON into these and back;
services never see wire JSON. A container record is stored as JSON of
`Container.to_record()` in the metadata DB.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HealthConfig:
    """Docker's HealthConfig (durations in nanoseconds, 0: the default; see services.health).

    `test`: [] inherits the image's, ["NONE"] disables, ["CMD", ...] or
    ["CMD-SHELL", "..."] probe. `on_failure` (none|kill|restart|stop) is
    freight's own: what to do when the container turns unhealthy.
    """

    test: list[str] = field(default_factory=list)
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0
    on_failure: str = "none"


@dataclass
class HealthResult:
    """One probe (Docker's HealthcheckResult); times are RFC 3339."""

    start: str
    end: str
    exit_code: int
    output: str


@dataclass
class HealthState:
    """Docker's State.Health: starting | healthy | unhealthy, and the last probes."""

    status: str = "starting"
    failing_streak: int = 0
    log: list[HealthResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log = [r if isinstance(r, HealthResult) else HealthResult(**r) for r in self.log]


@dataclass
class ContainerConfig:
    """What runs: Docker's `Config`, already merged field by field with nothing else."""

    image: str = ""
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    domainname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    stop_timeout: int | None = None
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    exposed_ports: dict[str, dict] = field(default_factory=dict)
    volumes: dict[str, dict] = field(default_factory=dict)
    healthcheck: HealthConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.healthcheck, dict):  # read back from a stored record
            self.healthcheck = HealthConfig(**self.healthcheck)


@dataclass
class HostSettings:
    """How it runs: the subset of Docker's `HostConfig` freight honours."""

    auto_remove: bool = False
    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    pids_limit: int | None = None
    runtime: str = "freight"
    privileged: bool = False
    readonly_rootfs: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    network_mode: str = "default"
    restart_policy: dict[str, Any] = field(default_factory=lambda: {"Name": "no"})
    log_type: str = "json-file"  # a LOG_DRIVERS name
    log_opts: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # accepted HostConfig keys echoed back


@dataclass
class MountPoint:
    """One mount of a container (Docker's MountPoint), settled at create.

    `source` is the host path of a bind; a volume's is looked up by `name` at
    start. `copy_data`: the image's content at `destination` is copied into
    the volume at the first start if the volume is empty (cleared after).
    """

    type: str  # bind | volume | tmpfs
    destination: str
    source: str = ""
    name: str = ""
    driver: str = ""
    rw: bool = True
    mode: str = ""  # as given: "ro", "z", "ro,Z" ("" for --mount)
    propagation: str = ""
    copy_data: bool = False
    anonymous: bool = False  # removed with the container (rm -v, --rm)
    create_source: bool = False  # -v: a missing host directory is created
    options: list[str] = field(default_factory=list)  # tmpfs: size=…, mode=…


@dataclass
class ContainerState:
    status: str = "created"  # created | running | paused | restarting | removing | exited | dead
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    health: HealthState | None = None  # only with a healthcheck (services.health)

    def __post_init__(self) -> None:
        if isinstance(self.health, dict):  # read back from a stored record
            self.health = HealthState(**self.health)

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


@dataclass
class Container:
    id: str
    name: str  # without the leading "/"
    created: str
    image_id: str
    config: ContainerConfig
    host: HostSettings
    path: str = ""
    args: list[str] = field(default_factory=list)
    state: ContainerState = field(default_factory=ContainerState)
    restart_count: int = 0
    # A user's stop/kill: no restart policy applies until the next start (services.restarts).
    manually_stopped: bool = False
    log_path: str = ""
    snapshot_key: str = ""
    mounts: list[MountPoint] = field(default_factory=list)

    def to_record(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_record(cls, text: str) -> Container:
        raw = json.loads(text)
        return cls(
            **{
                **raw,
                "config": ContainerConfig(**raw["config"]),
                "host": HostSettings(**raw["host"]),
                "state": ContainerState(**raw["state"]),
                "mounts": [MountPoint(**m) for m in raw.get("mounts") or []],
            }
        )


@dataclass
class ExecConfig:
    """A process to run in a running container (Docker's ExecConfig)."""

    cmd: list[str]
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    tty: bool = False
    privileged: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    detach_keys: str = ""
    console_size: tuple[int, int] | None = None


@dataclass
class Exec:
    id: str
    container_id: str
    config: ExecConfig
    running: bool = False
    exit_code: int | None = None
    pid: int = 0


@dataclass(frozen=True)
class ImageSummary:
    """An image as the services present it (the edge maps it to Docker's JSON)."""

    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    created: str
    size: int
    parent: str
    config: Any  # freight.oci.image.ImageConfig
    manifest_digest: str
    chain_id: str
