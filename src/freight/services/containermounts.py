"""A container's mounts: from Docker's request to mount points, and at start to OCI mounts.

At create (`plan`), in moby's order of precedence::

    VolumesFrom  → the other container's mount points (":ro"/":rw" overrides)
    Binds        → "/host:/ctr[:opts]" binds, "name:/ctr[:opts]" named volumes
    Mounts       → --mount type=bind|volume|tmpfs (a duplicate of a Bind is an error)
    Tmpfs        → --tmpfs /path[:opts]
    Config.Volumes (the image's VOLUMEs and `-v /ctr`) → an anonymous volume
                   for every destination nothing above covers

Named volumes are created when first used, anonymous ones for every
container. New volumes are filled from the image (copy-up) at the first start,
unless `nocopy` / `volume-nocopy`.

At start (`prepare`) volumes are acquired (mounted if their driver options
say so), copy-up runs, missing `-v` host directories are created, and the
OCI mounts are returned sorted so a parent is mounted before its children.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freight.errors import Conflict, InvalidArgument, NotFound
from freight.linux import openat2
from freight.services import userns
from freight.services.model import Container, MountPoint
from freight.services.volumes import VolumeService, validate_name

BIND_MODES = ("ro", "rw", "z", "Z", "nocopy")
PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
DEFAULT_PROPAGATION = "rprivate"
TMPFS_DEFAULTS = ["noexec", "nosuid", "nodev"]


# parsing ---------------------------------------------------------------------


def parse_bind(spec: str) -> MountPoint:
    """One `HostConfig.Binds` entry: `src:dst[:mode,...]`, src a host path or a volume name."""
    parts = spec.split(":")
    if len(parts) == 2 and parts[0].startswith("/") and _is_mode_list(parts[1]):
        parts = ["", parts[0], parts[1]]  # "/ctr:ro": an anonymous volume, as moby reads it
    if len(parts) == 1 or (len(parts) == 3 and not parts[0]):
        return _anonymous_bind(spec, parts)
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    source, dest = parts[0], parts[1]
    modes = [m for m in parts[2].split(",") if m] if len(parts) == 3 else []
    for m in modes:
        if m not in BIND_MODES and m not in PROPAGATIONS:
            raise InvalidArgument(f"invalid mode: {m}")
    if sum(m in ("ro", "rw") for m in modes) > 1:
        raise InvalidArgument(f"invalid mode: {parts[2]}")
    kind = "bind" if source.startswith("/") else "volume"
    if not dest.startswith("/"):
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': invalid mount config for type "
            f"\"{kind}\": invalid mount path: '{dest}' mount path must be absolute"
        )
    if dest == "/":
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': invalid mount config for type "
            f"\"{kind}\": invalid specification: destination can't be '/'"
        )
    propagation = next((m for m in modes if m in PROPAGATIONS), "")
    mp = MountPoint(
        type=kind,
        destination=posixpath.normpath(dest),
        rw="ro" not in modes,
        mode=parts[2] if len(parts) == 3 else "",
    )
    if kind == "bind":
        mp.source = posixpath.normpath(source)
        mp.propagation = propagation or DEFAULT_PROPAGATION
        mp.create_source = True
        if "nocopy" in modes:
            raise InvalidArgument(f"invalid mode: {parts[2]}")
    else:
        validate_name(source)
        mp.name, mp.driver = source, "local"
        mp.copy_data = "nocopy" not in modes
        if not mp.mode:
            mp.mode = "z"
    return mp


def _is_mode_list(text: str) -> bool:
    modes = [m for m in text.split(",") if m]
    return bool(modes) and all(m in BIND_MODES or m in PROPAGATIONS for m in modes)


def _anonymous_bind(spec: str, parts: list[str]) -> MountPoint:
    """`/ctr` or `/ctr:ro` in Binds (docker-py's `volumes=["/ctr"]`): a new anonymous volume."""
    dest = parts[-2] if len(parts) == 3 else parts[0]
    modes = [m for m in parts[2].split(",") if m] if len(parts) == 3 else []
    if not dest.startswith("/"):
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': invalid mount config for type "
            f"\"volume\": invalid mount path: '{dest}' mount path must be absolute"
        )
    return MountPoint(
        type="volume",
        destination=posixpath.normpath(dest),
        driver="local",
        rw="ro" not in modes,
        mode=parts[2] if len(parts) == 3 else "",
        copy_data="nocopy" not in modes,
        anonymous=True,
    )


def _mount_error(kind: str, text: str) -> InvalidArgument:
    return InvalidArgument(f'invalid mount config for type "{kind}": {text}')


def parse_mount(raw: Any) -> MountPoint:
    """One `HostConfig.Mounts` entry (Docker's mount.Mount JSON)."""
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid mount config: must be a JSON object")
    kind = raw.get("Type") or ""
    if kind not in ("bind", "volume", "tmpfs"):
        raise _mount_error(kind, "mount type unknown")
    target = raw.get("Target") or ""
    if not target:
        raise _mount_error(kind, "field Target must not be empty")
    if not target.startswith("/"):
        raise _mount_error(kind, f"invalid mount path: '{target}' mount path must be absolute")
    source = raw.get("Source") or ""
    mp = MountPoint(type=kind, destination=posixpath.normpath(target), rw=not raw.get("ReadOnly"))
    if kind == "bind":
        if not source:
            raise _mount_error(kind, "field Source must not be empty")
        if not source.startswith("/"):
            raise _mount_error(kind, f"invalid mount path: '{source}' mount path must be absolute")
        bind = raw.get("BindOptions") or {}
        mp.source = posixpath.normpath(source)
        mp.propagation = bind.get("Propagation") or DEFAULT_PROPAGATION
        if mp.propagation not in PROPAGATIONS:
            raise _mount_error(kind, f"invalid propagation mode: {mp.propagation}")
        mp.create_source = bool(bind.get("CreateMountpoint"))
        if not mp.create_source and not os.path.exists(mp.source):
            raise _mount_error(kind, f"bind source path does not exist: {mp.source}")
    elif kind == "volume":
        if source:
            validate_name(source)
        opts = raw.get("VolumeOptions") or {}
        mp.name, mp.driver = source, (opts.get("DriverConfig") or {}).get("Name") or "local"
        mp.copy_data = not opts.get("NoCopy")
        mp.anonymous = not source
    else:
        if source:
            raise _mount_error(kind, "field Source must not be specified")
        mp.options = tmpfs_options(raw.get("TmpfsOptions") or {})
    return mp


def tmpfs_options(opts: dict[str, Any]) -> list[str]:
    out = []
    if opts.get("SizeBytes"):
        out.append(f"size={int(opts['SizeBytes'])}")
    if opts.get("Mode"):
        out.append(f"mode={int(opts['Mode']):o}")
    return out


def parse_tmpfs(dest: str, options: str) -> MountPoint:
    """One `HostConfig.Tmpfs` entry: {"/run": "size=64m,mode=1777"}."""
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid mount path: '{dest}' mount path must be absolute")
    opts = [o for o in (options or "").split(",") if o]
    return MountPoint(
        type="tmpfs", destination=posixpath.normpath(dest), rw="ro" not in opts, options=opts
    )


def _volume_mount_info(raw: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    opts = raw.get("VolumeOptions") or {}
    return dict(opts.get("Labels") or {}), dict(
        (opts.get("DriverConfig") or {}).get("Options") or {}
    )


# the service -------------------------------------------------------------------


class ContainerMounts:
    """Mount points of containers, over the volume service."""

    def __init__(
        self,
        volumes: VolumeService,
        containers: Callable[[], list[Container]],
        lookup: Callable[[str], Container],
    ) -> None:
        self.volumes = volumes
        self._containers = containers
        self._lookup = lookup
        volumes.users = self.users

    def users(self, name: str) -> list[str]:
        """Ids of the containers that reference volume `name`."""
        return [
            c.id
            for c in self._containers()
            if any(m.type == "volume" and m.name == name for m in c.mounts)
        ]

    def plan(self, extra: dict[str, Any], config_volumes: dict[str, Any]) -> list[MountPoint]:
        """The container's mount points; named and anonymous volumes are created here."""
        by_dest: dict[str, MountPoint] = {}
        for ref in extra.get("VolumesFrom") or []:
            for mp in self._volumes_from(ref):
                by_dest[mp.destination] = mp
        binds: set[str] = set()
        for spec in extra.get("Binds") or []:
            mp = parse_bind(spec)
            if mp.destination in binds:
                raise InvalidArgument(f"Duplicate mount point: {mp.destination}")
            binds.add(mp.destination)
            by_dest[mp.destination] = mp
        volume_info: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        for raw in extra.get("Mounts") or []:
            mp = parse_mount(raw)
            if mp.destination in binds:
                raise InvalidArgument(f"Duplicate mount point: {mp.destination}")
            binds.add(mp.destination)
            by_dest[mp.destination] = mp
            volume_info[mp.destination] = _volume_mount_info(raw)
        tmpfs = extra.get("Tmpfs") or {}
        if not isinstance(tmpfs, dict):
            raise InvalidArgument("invalid HostConfig.Tmpfs: must be an object")
        for dest, options in tmpfs.items():
            mp = parse_tmpfs(dest, options)
            if mp.destination in binds:
                raise InvalidArgument(f"Duplicate mount point: {mp.destination}")
            by_dest[mp.destination] = mp
        for dest in config_volumes:
            dest = posixpath.normpath(dest) if dest.startswith("/") else dest
            if not dest.startswith("/"):
                raise InvalidArgument(f"invalid mount path: '{dest}' mount path must be absolute")
            if dest not in by_dest:
                by_dest[dest] = MountPoint(
                    type="volume", destination=dest, driver="local", copy_data=True, anonymous=True
                )
        mounts = list(by_dest.values())
        self._create_volumes(mounts, volume_info)
        return mounts

    def _volumes_from(self, ref: str) -> list[MountPoint]:
        name, _, mode = ref.partition(":")
        if mode not in ("", "ro", "rw"):
            raise InvalidArgument(f"invalid mode: {mode}")
        try:
            other = self._lookup(name)
        except NotFound:
            raise NotFound(f"No such container: {name}") from None
        out = []
        for m in other.mounts:
            if m.type == "tmpfs":
                continue
            copy = MountPoint(**{**m.__dict__, "options": list(m.options)})
            copy.anonymous = False  # it belongs to the other container
            copy.copy_data = False
            if mode:
                copy.rw = mode == "rw"
            out.append(copy)
        return out

    def _create_volumes(
        self, mounts: list[MountPoint], info: dict[str, tuple[dict[str, str], dict[str, str]]]
    ) -> None:
        created: list[str] = []
        try:
            for mp in mounts:
                if mp.type != "volume":
                    continue
                labels, options = info.get(mp.destination, ({}, {}))
                if mp.name:
                    try:
                        mp.source = self.volumes.get(mp.name).mountpoint
                        continue
                    except NotFound:
                        pass
                volume = self.volumes.create(
                    mp.name, mp.driver or "local", options, labels, anonymous=mp.anonymous
                )
                mp.name, mp.source = volume.name, volume.mountpoint
                created.append(volume.name)
        except BaseException:
            for name in created:
                with contextlib.suppress(Exception):
                    self.volumes.remove(name, force=True)
            raise

    # start / stop -------------------------------------------------------------

    def prepare(self, c: Container, rootfs: Path) -> list[dict[str, Any]]:
        """Acquire volumes, copy up, create -v sources; the OCI mounts, parents first."""
        out = []
        try:
            for mp in sorted(c.mounts, key=lambda m: _depth(m.destination)):
                out.append(self._oci_mount(c, mp, rootfs))
        except BaseException:
            self.release(c)
            raise
        return out

    def _oci_mount(self, c: Container, mp: MountPoint, rootfs: Path) -> dict[str, Any]:
        ro = [] if mp.rw else ["ro"]
        if mp.type == "tmpfs":
            return {
                "destination": mp.destination,
                "type": "tmpfs",
                "source": "tmpfs",
                "options": [*TMPFS_DEFAULTS, *mp.options],
            }
        if mp.type == "volume":
            source = self.volumes.acquire(mp.name, c.id)
            if mp.copy_data:
                copy_up(rootfs, mp.destination, source)
                mp.copy_data = False
            if (idmap := userns.container_map(c.host.extra)) is not None:
                userns.own_volume(source, idmap)  # its root may create files in it
            return {
                "destination": mp.destination,
                "type": "bind",
                "source": str(source),
                "options": ["rbind", DEFAULT_PROPAGATION, *ro],
            }
        if mp.create_source and not os.path.exists(mp.source):
            # As `docker run -v`: a missing host directory is created.
            os.makedirs(mp.source, 0o755, exist_ok=True)
        return {
            "destination": mp.destination,
            "type": "bind",
            "source": mp.source,
            "options": ["rbind", mp.propagation or DEFAULT_PROPAGATION, *ro],
        }

    def restore(self, c: Container) -> None:
        """After a daemon restart: a still-running container holds its volumes again."""
        for mp in c.mounts:
            if mp.type == "volume" and mp.name:
                with contextlib.suppress(NotFound, InvalidArgument):
                    self.volumes.acquire(mp.name, c.id)

    def release(self, c: Container) -> None:
        for mp in c.mounts:
            if mp.type == "volume" and mp.name:
                self.volumes.release(mp.name, c.id)

    def remove_anonymous(self, mounts: list[MountPoint]) -> None:
        """`rm -v` / `--rm`, or a create that failed after `plan`: the container's
        anonymous volumes go with it (unless another container uses them)."""
        for mp in mounts:
            if mp.type == "volume" and mp.anonymous and mp.name:
                with contextlib.suppress(NotFound, Conflict):  # Conflict: still in use
                    self.volumes.remove(mp.name)


def _depth(dest: str) -> int:
    return len([p for p in dest.split("/") if p])


# copy-up --------------------------------------------------------------------------


def copy_up(rootfs: Path, destination: str, target: Path) -> None:
    """Copy the image's content at `destination` into an empty volume directory.

    The path is resolved inside the rootfs (a symlink in the image cannot make
    the daemon copy host files); the copy never follows symlinks. The volume
    directory takes the ownership and mode of the image's directory.
    """
    with contextlib.suppress(StopIteration):
        next(target.iterdir())
        return  # not empty: as docker, existing content wins
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY)
    try:
        src = openat2.openat2(root, destination, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # nothing at that path in the image (or not a directory)
    finally:
        os.close(root)
    try:
        st = os.fstat(src)
        os.chown(target, st.st_uid, st.st_gid)
        os.chmod(target, stat.S_IMODE(st.st_mode))
        dst = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _copy_dir(src, dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_dir(src: int, dst: int) -> None:
    for entry in os.scandir(src):
        st = entry.stat(follow_symlinks=False)
        name = entry.name
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            child_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src)
            child_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst)
            try:
                _copy_dir(child_src, child_dst)
                os.fchown(child_dst, st.st_uid, st.st_gid)
                os.fchmod(child_dst, stat.S_IMODE(st.st_mode))
            finally:
                os.close(child_src)
                os.close(child_dst)
        elif stat.S_ISREG(st.st_mode):
            _copy_file(src, dst, name, st)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        else:
            with contextlib.suppress(OSError):  # devices/fifos: as far as we may
                os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        with contextlib.suppress(OSError):
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _copy_file(src: int, dst: int, name: str, st: os.stat_result) -> None:
    fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src)
    try:
        fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dst)
        try:
            offset = 0
            while offset < st.st_size:
                # sendfile works between any two filesystems (copy_file_range
                # refuses overlay → ext4 with EXDEV on current kernels).
                n = os.sendfile(fout, fin, offset, min(st.st_size - offset, 1 << 30))
                if n == 0:
                    break
                offset += n
            os.fchown(fout, st.st_uid, st.st_gid)
            os.fchmod(fout, stat.S_IMODE(st.st_mode))
        finally:
            os.close(fout)
    finally:
        os.close(fin)
