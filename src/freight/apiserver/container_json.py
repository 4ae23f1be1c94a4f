"""Docker's container JSON ↔ the services' container model.

Create requests come in as Docker's `Config` + `HostConfig`; inspect and list
answers go out in the shapes of the Engine API spec (v1.45). Nothing here
decides behaviour: it only translates.
"""

from __future__ import annotations

import time
from typing import Any

from freight.apiserver import bodytypes, health_json
from freight.apiserver.mount_json import mounts_json
from freight.apiserver.network_json import parse_endpoints
from freight.dockerapi.humanize import human_duration
from freight.errors import InvalidArgument
from freight.services.clock import parse_rfc3339, unix_seconds
from freight.services.containers import CreateRequest
from freight.services.model import Container, ContainerConfig, HostSettings

# HostConfig keys we translate; the rest are echoed back in inspect untouched.
_HOST_FIELDS = {
    "AutoRemove": ("auto_remove", bool),
    "Memory": ("memory", int),
    "MemorySwap": ("memory_swap", int),
    "MemoryReservation": ("memory_reservation", int),
    "NanoCpus": ("nano_cpus", int),
    "CpuShares": ("cpu_shares", int),
    "CpuQuota": ("cpu_quota", int),
    "CpuPeriod": ("cpu_period", int),
    "Privileged": ("privileged", bool),
    "ReadonlyRootfs": ("readonly_rootfs", bool),
}


def _strings(value: Any, what: str) -> list[str] | None:
    """Docker accepts a string or a list of strings for Cmd/Entrypoint."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise InvalidArgument(f"invalid {what}: must be a string or a list of strings")


def parse_create(name: str, body: dict[str, Any], default_runtime: str) -> CreateRequest:
    if not isinstance(body, dict):
        raise InvalidArgument("invalid container config: must be a JSON object")
    bodytypes.check_create(body)  # wrong JSON types: a 400 naming the field, as dockerd
    host_raw = body.get("HostConfig") or {}
    image = body.get("Image") or ""
    if not image:
        raise InvalidArgument("No image was specified.")
    config = ContainerConfig(
        image=image,
        cmd=_strings(body.get("Cmd"), "Cmd"),
        entrypoint=_strings(body.get("Entrypoint"), "Entrypoint"),
        env=list(body.get("Env") or []),
        working_dir=body.get("WorkingDir") or "",
        user=body.get("User") or "",
        hostname=body.get("Hostname") or "",
        domainname=body.get("Domainname") or "",
        labels=dict(body.get("Labels") or {}),
        stop_signal=body.get("StopSignal") or "",
        stop_timeout=body.get("StopTimeout"),
        tty=bool(body.get("Tty")),
        open_stdin=bool(body.get("OpenStdin")),
        stdin_once=bool(body.get("StdinOnce")),
        attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout", True)),
        attach_stderr=bool(body.get("AttachStderr", True)),
        exposed_ports=dict(body.get("ExposedPorts") or {}),
        volumes=dict(body.get("Volumes") or {}),
        healthcheck=health_json.parse_healthcheck(body.get("Healthcheck")),
    )
    if config.entrypoint == [""]:
        config.entrypoint = []  # --entrypoint "" resets the image's entrypoint
    return CreateRequest(
        name=name,
        config=config,
        host=parse_host(host_raw, default_runtime),
        endpoints=parse_endpoints(body.get("NetworkingConfig")),
    )


def parse_host(raw: dict[str, Any], default_runtime: str) -> HostSettings:
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid HostConfig: must be a JSON object")
    host = HostSettings(runtime=raw.get("Runtime") or default_runtime, extra=dict(raw))
    for key, (attr, kind) in _HOST_FIELDS.items():
        value = raw.get(key)
        if value is not None:
            try:
                setattr(host, attr, kind(value))
            except (TypeError, ValueError) as e:
                raise InvalidArgument(f"invalid HostConfig.{key}: {value!r}") from e
    if raw.get("PidsLimit") is not None:
        host.pids_limit = int(raw["PidsLimit"])
    host.cap_add = list(raw.get("CapAdd") or [])
    host.cap_drop = list(raw.get("CapDrop") or [])
    host.security_opt = list(raw.get("SecurityOpt") or [])
    host.network_mode = raw.get("NetworkMode") or "default"
    host.restart_policy = raw.get("RestartPolicy") or {"Name": "no"}
    log_config = raw.get("LogConfig") or {}
    if not isinstance(log_config, dict):
        raise InvalidArgument("invalid HostConfig.LogConfig: must be a JSON object")
    host.log_type = log_config.get("Type") or ""  # "": the daemon's default driver
    host.log_opts = {str(k): str(v) for k, v in (log_config.get("Config") or {}).items()}
    return host


def config_json(c: Container) -> dict[str, Any]:
    cfg = c.config
    out: dict[str, Any] = {
        "Hostname": cfg.hostname or c.id[:12],
        "Domainname": cfg.domainname,
        "User": cfg.user,
        "AttachStdin": cfg.attach_stdin,
        "AttachStdout": cfg.attach_stdout,
        "AttachStderr": cfg.attach_stderr,
        "Tty": cfg.tty,
        "OpenStdin": cfg.open_stdin,
        "StdinOnce": cfg.stdin_once,
        "Env": cfg.env,
        "Cmd": cfg.cmd,
        "Image": cfg.image,
        "Volumes": cfg.volumes or None,
        "WorkingDir": cfg.working_dir,
        "Entrypoint": cfg.entrypoint,
        "OnBuild": None,
        "Labels": cfg.labels,
    }
    if cfg.exposed_ports:
        out["ExposedPorts"] = cfg.exposed_ports
    if cfg.stop_signal:
        out["StopSignal"] = cfg.stop_signal
    if cfg.stop_timeout is not None:
        out["StopTimeout"] = cfg.stop_timeout
    if cfg.healthcheck is not None:
        out["Healthcheck"] = health_json.healthcheck_json(cfg.healthcheck)
    return out


def host_config_json(c: Container) -> dict[str, Any]:
    h = c.host
    out = {
        "NetworkMode": h.network_mode,
        "PortBindings": {},
        "RestartPolicy": h.restart_policy,
        "LogConfig": {"Type": h.log_type, "Config": h.log_opts},
        "Binds": None,
        "CapAdd": h.cap_add or None,
        "CapDrop": h.cap_drop or None,
        "SecurityOpt": h.security_opt or None,
        "PidsLimit": h.pids_limit,
        "Runtime": h.runtime,
        **h.extra,
    }
    for key, (attr, _) in _HOST_FIELDS.items():
        out[key] = getattr(h, attr)
    out["LogConfig"] = {"Type": h.log_type, "Config": h.log_opts}  # the default filled in
    return out


def state_json(c: Container) -> dict[str, Any]:
    s = c.state
    out = {
        "Status": s.status,
        "Running": s.status in ("running", "paused", "restarting"),
        "Paused": s.status == "paused",
        "Restarting": s.status == "restarting",
        "OOMKilled": s.oom_killed,
        "Dead": s.status == "dead",
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": s.started_at,
        "FinishedAt": s.finished_at,
    }
    if s.health is not None:
        out["Health"] = health_json.health_json(s.health)
    return out


def inspect_json(c: Container, files_dir: str, graph: dict[str, str]) -> dict[str, Any]:
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": state_json(c),
        "Image": c.image_id,
        "ResolvConfPath": f"{files_dir}/resolv.conf",
        "HostnamePath": f"{files_dir}/hostname",
        "HostsPath": f"{files_dir}/hosts",
        "LogPath": c.log_path,
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlayfs",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config_json(c),
        "GraphDriver": {"Name": "overlayfs", "Data": graph},
        "Mounts": mounts_json(c),
        "Config": config_json(c),
        "NetworkSettings": network_settings_json(c),
    }


def network_settings_json(c: Container) -> dict[str, Any]:
    # Loopback only for now: the container sits on Docker's "none" network.
    return {
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": "",
        "Ports": {},
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": {"none": _none_endpoint()},
    }


def _none_endpoint() -> dict[str, Any]:
    return {
        "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DriverOpts": None, "DNSNames": None,
    }  # fmt: skip


def status_text(c: Container, now: float | None = None) -> str:
    """The STATUS column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created"."""
    now = now or time.time()
    s = c.state
    if s.status == "running":
        up = "Up " + human_duration(now - parse_rfc3339(s.started_at))
        return up + health_json.status_suffix(s.health)
    if s.status == "paused":
        return "Up " + human_duration(now - parse_rfc3339(s.started_at)) + " (Paused)"
    if s.status == "restarting":
        return (
            f"Restarting ({s.exit_code}) {human_duration(now - parse_rfc3339(s.finished_at))} ago"
        )
    if s.status == "removing":
        return "Removal In Progress"
    if s.status == "dead":
        return "Dead"
    if s.status == "exited":
        return f"Exited ({s.exit_code}) {human_duration(now - parse_rfc3339(s.finished_at))} ago"
    return "Created"


def summary_json(c: Container) -> dict[str, Any]:
    command = " ".join([c.path, *c.args])
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.config.image,
        "ImageID": c.image_id,
        "Command": command,
        "Created": unix_seconds(c.created),
        "Ports": [],
        "Labels": c.config.labels,
        "State": c.state.status,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host.network_mode},
        "NetworkSettings": {"Networks": {"none": _none_endpoint()}},
        "Mounts": mounts_json(c),
    }
