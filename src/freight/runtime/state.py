"""The freight runtime's state directory and the OCI state it reports.

Layout (root defaults to /run/freight/runtime; paths are built only here)::

    <root>/
      <id>/
        state.json   what create recorded: pid, its start time, bundle, cgroup
        exec.fifo    exists from create until start; the init blocks opening it

Status is derived, never stored: a live init with the fifo present is
"created", without it "running"; a dead (or reused) pid is "stopped". The
init's start time (field 22 of /proc/PID/stat) guards against pid reuse.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from freight.errors import AlreadyExists, InvalidArgument, NotFound

OCI_VERSION = "1.0.2"
DEFAULT_ROOT = Path("/run/freight/runtime")


@dataclass
class RuntimeState:
    """The OCI runtime state (specs/oci-runtime/state-schema.json)."""

    id: str
    status: str
    pid: int
    bundle: str
    annotations: dict[str, str] = field(default_factory=dict)
    oci_version: str = OCI_VERSION

    def to_dict(self) -> dict[str, object]:
        return {
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": self.status,
            "pid": self.pid,
            "bundle": self.bundle,
            "annotations": self.annotations,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RuntimeState:
        return cls(
            d["id"],
            d["status"],
            d.get("pid", 0),
            d["bundle"],
            d.get("annotations") or {},
            d.get("ociVersion", OCI_VERSION),
        )


@dataclass
class Record:
    """What create leaves behind for later commands."""

    id: str
    pid: int
    pid_start: int
    bundle: str
    cgroups_path: str
    created: str
    annotations: dict[str, str] = field(default_factory=dict)


def proc_start_time(pid: int) -> int | None:
    """Start time of a live (non-zombie) process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def check_id(container_id: str) -> None:
    if not container_id or "/" in container_id or container_id in (".", ".."):
        raise InvalidArgument(f"invalid container id {container_id!r}")


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def dir(self, container_id: str) -> Path:
        check_id(container_id)
        return self.root / container_id

    def fifo(self, container_id: str) -> Path:
        return self.dir(container_id) / "exec.fifo"

    def make(self, container_id: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o711)
        d = self.dir(container_id)
        try:
            d.mkdir(mode=0o711)
        except FileExistsError:
            raise AlreadyExists(f"container with id exists: {container_id}") from None
        # 0622: the init may have switched to an unprivileged user before it opens this.
        os.mkfifo(self.fifo(container_id), 0o622)
        os.chmod(self.fifo(container_id), 0o622)
        return d

    def save(self, rec: Record) -> None:
        path = self.dir(rec.id) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec.__dict__))
        tmp.rename(path)

    def load(self, container_id: str) -> Record:
        try:
            raw = (self.dir(container_id) / "state.json").read_text()
        except FileNotFoundError:
            raise NotFound(f"container does not exist: {container_id}") from None
        return Record(**json.loads(raw))

    def status(self, rec: Record) -> str:
        if proc_start_time(rec.pid) != rec.pid_start:
            return "stopped"
        return "created" if self.fifo(rec.id).exists() else "running"

    def remove(self, container_id: str) -> None:
        shutil.rmtree(self.dir(container_id), ignore_errors=True)
