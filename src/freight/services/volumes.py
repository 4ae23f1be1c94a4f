"""Volumes: named and anonymous data directories that outlive containers (local driver).

On disk, like dockerd's local driver::

    <data-root>/volumes/
        <name>/
            volume.json   {"Name", "Driver", "Labels", "Options", "CreatedAt"}
                          written to a temp file, fsync'd and renamed (crash-safe)
            _data/        the volume's content, or the mount point of the
                          filesystem its options describe (--opt type/device/o)

A directory without a volume.json is a half-made volume (the daemon died in
create) and is removed when the service opens.

Options of the local driver (docker's): `type` (tmpfs, ext4, none...),
`device` (what to mount: a block device, a host directory with o=bind, or
"tmpfs"), `o` (mount options, fstab style: "size=10m,uid=1000", "bind").
Such a volume is mounted when its first container starts and unmounted when
the last one using it stops (a reference count per volume).

In use: a volume any container references (running or not) cannot be
removed; who references it is asked of the container side through `users`,
so this module knows nothing of containers.

`prune()` returns the names removed and the bytes reclaimed, `usage()` sizes
every volume; `system prune` / `system df` call these.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from freight.errors import Conflict, InvalidArgument, NotFound
from freight.linux import syscalls
from freight.linux.mountopts import parse_mount_options
from freight.services.clock import now_rfc3339
from freight.services.events import EventBus

log = logging.getLogger(__name__)

LOCAL_DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
LOCAL_OPTIONS = ("type", "device", "o", "size")
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_META = "volume.json"
_DATA = "_data"


@dataclass
class Volume:
    name: str
    driver: str = LOCAL_DRIVER
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    mountpoint: str = ""

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels


@dataclass(frozen=True)
class VolumeUsage:
    volume: Volume
    size: int  # bytes of content, -1 when it cannot be measured
    ref_count: int  # containers referencing it


@dataclass(frozen=True)
class PruneReport:
    deleted: list[str]
    reclaimed: int  # bytes


def validate_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            f'"{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path"
        )


def validate_options(driver: str, options: dict[str, str]) -> None:
    if driver != LOCAL_DRIVER:
        raise NotFound(f'plugin "{driver}" not found')
    for key in options:
        if key not in LOCAL_OPTIONS:
            raise InvalidArgument(f'invalid option key: "{key}"')
    if options and "type" not in options and "device" not in options and "size" not in options:
        raise InvalidArgument('missing required option: "device"')


class VolumeService:
    def __init__(self, root: Path, events: EventBus | None = None) -> None:
        self.root = root
        self.events = events or EventBus()  # the daemon's bus (wiring.py)
        self.root.mkdir(parents=True, exist_ok=True)
        # Who references a volume (container ids); wired by the daemon.
        self.users: Callable[[str], list[str]] = lambda name: []
        self._lock = threading.RLock()
        self._mounted_by: dict[str, set[str]] = {}
        self._volumes: dict[str, Volume] = {}
        self._load()

    # paths ------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / name

    def data_path(self, name: str) -> Path:
        return self._dir(name) / _DATA

    def _load(self) -> None:
        for entry in sorted(self.root.iterdir()):
            meta = entry / _META
            if not meta.is_file():
                log.warning("removing half-made volume %s", entry.name)
                self._unmount_data(entry / _DATA)
                shutil.rmtree(entry, ignore_errors=True)
                continue
            raw = json.loads(meta.read_text())
            self._volumes[entry.name] = Volume(
                name=raw["Name"],
                driver=raw.get("Driver") or LOCAL_DRIVER,
                labels=raw.get("Labels") or {},
                options=raw.get("Options") or {},
                created_at=raw.get("CreatedAt") or "",
                mountpoint=str(entry / _DATA),
            )

    # lifecycle --------------------------------------------------------------

    def create(
        self,
        name: str = "",
        driver: str = LOCAL_DRIVER,
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> Volume:
        """Create a volume; an existing one of that name is returned as it is (as docker)."""
        name = name or os.urandom(32).hex()
        driver = driver or LOCAL_DRIVER
        options = dict(options or {})
        labels = dict(labels or {})
        if anonymous:
            labels[ANONYMOUS_LABEL] = ""
        validate_name(name)
        with self._lock:
            existing = self._volumes.get(name)
            if existing is not None:
                if existing.driver != driver:
                    raise Conflict(
                        f"create {name}: a volume with the name {name} already exists "
                        f"with driver {existing.driver!r}"
                    )
                return existing
            validate_options(driver, options)
            directory = self._dir(name)
            (directory / _DATA).mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o701)
            os.chmod(directory / _DATA, 0o755)
            volume = Volume(name, driver, labels, options, now_rfc3339(), str(directory / _DATA))
            _write_json_atomic(
                directory / _META,
                {
                    "Name": name,
                    "Driver": driver,
                    "Labels": labels,
                    "Options": options,
                    "CreatedAt": volume.created_at,
                },
            )
            self._volumes[name] = volume
        self.events.publish("volume", "create", name, {"driver": driver})
        return volume

    def get(self, name: str) -> Volume:
        with self._lock:
            volume = self._volumes.get(name)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def list(self) -> list[Volume]:
        with self._lock:
            return sorted(self._volumes.values(), key=lambda v: v.name)

    def remove(self, name: str, force: bool = False) -> None:
        """Docker's rules: in use is a conflict even with force; force hides not-found."""
        with self._lock:
            if name not in self._volumes:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self._delete(name)

    def _delete(self, name: str) -> None:
        directory = self._dir(name)
        self._unmount_data(directory / _DATA)
        self._mounted_by.pop(name, None)
        # The metadata goes first: a crash midway leaves a half-made volume
        # that the next start cleans, never a listed volume without content.
        (directory / _META).unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
        volume = self._volumes.pop(name)
        self.events.publish("volume", "destroy", name, {"driver": volume.driver})

    # mounting (containers) --------------------------------------------------

    def acquire(self, name: str, user: str) -> Path:
        """The volume's host directory for container `user`, mounted first if its
        options say so."""
        with self._lock:
            volume = self.get(name)
            data = self.data_path(name)
            holders = self._mounted_by.setdefault(name, set())
            if _needs_mount(volume) and not os.path.ismount(data):
                _mount_options(volume, data)
            holders.add(user)
            return data

    def release(self, name: str, user: str) -> None:
        """Container `user` stopped using the volume; the last one out unmounts it."""
        with self._lock:
            holders = self._mounted_by.get(name)
            if holders is None:
                return
            if user in holders:
                volume = self._volumes.get(name)
                driver = volume.driver if volume is not None else LOCAL_DRIVER
                attrs = {"driver": driver, "container": user}
                self.events.publish("volume", "unmount", name, attrs)
            holders.discard(user)
            if holders:
                return
            del self._mounted_by[name]
            volume = self._volumes.get(name)
            if volume is not None and _needs_mount(volume):
                self._unmount_data(self.data_path(name))

    def close(self) -> None:
        """Daemon shutdown: unmount option volumes no running container holds."""
        with self._lock:
            for volume in self._volumes.values():
                if _needs_mount(volume) and not self._mounted_by.get(volume.name):
                    self._unmount_data(self.data_path(volume.name))

    @staticmethod
    def _unmount_data(data: Path) -> None:
        while os.path.ismount(data):
            syscalls.umount(str(data), syscalls.MNT_DETACH)

    # sizes and pruning ------------------------------------------------------

    def size(self, name: str) -> int:
        return directory_size(self.data_path(name))

    def usage(self) -> list[VolumeUsage]:
        return [VolumeUsage(v, self.size(v.name), len(self.users(v.name))) for v in self.list()]

    def prune(self, labels: list[str] | None = None, all_volumes: bool = False) -> PruneReport:
        """Remove unused volumes (only anonymous ones unless `all_volumes`, as
        API ≥ 1.42); `labels` are docker's `label=` / `label!=` filters."""
        deleted, reclaimed = [], 0
        with self._lock:
            for volume in self.list():
                if not (all_volumes or volume.anonymous):
                    continue
                if not matches_labels(volume.labels, labels or []):
                    continue
                if self.users(volume.name):
                    continue
                size = self.size(volume.name)
                self._delete(volume.name)
                deleted.append(volume.name)
                reclaimed += max(size, 0)
        return PruneReport(deleted, reclaimed)


def matches_labels(labels: dict[str, str], filters: list[str]) -> bool:
    """Each filter is "key", "key=value", "!key" or "!key=value" (negated)."""
    for item in filters:
        negate = item.startswith("!")
        key, eq, value = item.lstrip("!").partition("=")
        hit = key in labels and (not eq or labels[key] == value)
        if hit == negate:
            return False
    return True


def directory_size(path: Path) -> int:
    """Bytes of the files under `path` (hard links counted once); -1 if unreadable."""
    total, seen = 0, set()
    try:
        stack = [os.fspath(path)]
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    st = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif st.st_nlink > 1:
                        if (st.st_dev, st.st_ino) in seen:
                            continue
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
                    else:
                        total += st.st_size
    except OSError:
        return -1
    return total


def _needs_mount(volume: Volume) -> bool:
    return bool(volume.options.get("type") or volume.options.get("device"))


def _mount_options(volume: Volume, data: Path) -> None:
    opts = volume.options
    fstype = opts.get("type") or "none"
    device = opts.get("device") or fstype
    options = [o for o in (opts.get("o") or "").split(",") if o]
    if opts.get("size"):
        options.append(f"size={opts['size']}")
    flags, _propagation, fsdata = parse_mount_options(options)
    if flags & syscalls.MS_BIND:
        fstype = None
    try:
        syscalls.mount(
            device, str(data), None if fstype == "none" else fstype, flags, fsdata or None
        )
    except OSError as e:
        raise InvalidArgument(
            f"error while mounting volume '{data}': failed to mount local volume: "
            f"mount {device}:{data}, data: {fsdata}: {e.strerror.lower() if e.strerror else e}"
        ) from None


def _write_json_atomic(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
