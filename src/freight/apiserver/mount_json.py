"""A container's mount points in Docker's `MountPoint` JSON (inspect and list)."""

from __future__ import annotations

from typing import Any

from freight.services.model import Container, MountPoint


def mount_point_json(m: MountPoint) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": m.type}
    if m.type == "volume":
        out["Name"] = m.name
    out["Source"] = m.source
    out["Destination"] = m.destination
    if m.type == "volume":
        out["Driver"] = m.driver or "local"
    out.update(Mode=m.mode, RW=m.rw, Propagation=m.propagation)
    return out


def mounts_json(c: Container) -> list[dict[str, Any]]:
    return [mount_point_json(m) for m in sorted(c.mounts, key=lambda m: m.destination)]
