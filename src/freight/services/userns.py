"""User namespace remapping: which host ids a container's ids are, and its idmapped rootfs.

Three ways a container gets a user namespace (the first that applies):

    HostConfig.UsernsMode "host"        none, even on a remapped daemon (docker's opt-out)
    FreightIDMappings (--uidmap/--gidmap) exactly those maps (podman's flags)
    UsernsMode "auto" / "auto:size=N"   a free range of N (65536) ids from the pool (podman)
    the daemon's --userns-remap         the remap user's /etc/subuid and /etc/subgid ranges

The resolved maps are written into the container's HostConfig as
`FreightIDMappings` ({"UIDMaps": ["0:100000:65536"], "GIDMaps": [...]},
container:host:size like the flags), so a container keeps its ids across
restarts and `inspect` shows them.

    /etc/subuid, /etc/subgid      NAME_OR_UID:START:COUNT, one range a line
    --userns-remap=default        user and group "dockremap", created (useradd) with the
                                  first free 65536 ids from 100000 when missing, as dockerd
    --userns=auto pool            the ranges of user "containers" (podman's convention),
                                  less the ranges in use (other containers, the remap's)

The rootfs: the image's layers are never copied or chowned. The snapshotter's
directory is bind-mounted idmapped (the mapping of the container's root) at
<exec-root>/idmap/<id>, the overlay is mounted from that view, and the view
is detached again (overlay keeps its own clone). An overlay mount itself
cannot be idmapped (EINVAL on 6.18), its layers can (Linux 5.19+). The upper
directory then stores unshifted ids, so commit and diff see what they see
without a remap. The idmap's namespace also maps a spare id (4294967294) to
host root: overlay creates its work directory as its mounter, root, and an
unmapped mounter would get EOVERFLOW.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freight.errors import InvalidArgument, Unavailable
from freight.linux import idmap, syscalls, userns
from freight.linux.mountopts import parse_mount_options
from freight.linux.userns import IdMap, IdRange
from freight.services.model import HostSettings
from freight.snapshots import Mount

log = logging.getLogger(__name__)

SUBUID = Path("/etc/subuid")
SUBGID = Path("/etc/subgid")
DEFAULT_USER = "dockremap"
AUTO_POOL_USER = "containers"
RANGE_START = 100000
RANGE_SIZE = 65536
MAPS_KEY = "FreightIDMappings"
# The id through which overlay, mounting as host root, writes via the idmapped layers.
_MOUNTER_ID = 4294967294


@dataclass(frozen=True)
class SubIdRange:
    """One line of /etc/subuid or /etc/subgid."""

    owner: str  # a user/group name or a numeric id
    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.count


def parse_subids(text: str) -> list[SubIdRange]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            continue  # as shadow-utils: a malformed line is skipped
        out.append(SubIdRange(parts[0], int(parts[1]), int(parts[2])))
    return out


def read_subids(path: Path) -> list[SubIdRange]:
    try:
        return parse_subids(path.read_text())
    except FileNotFoundError:
        return []


def ranges_of(entries: Iterable[SubIdRange], name: str, numeric: int | None) -> list[SubIdRange]:
    """The ranges listed for a user (or group) by name or by number, in file order."""
    keys = {name} | ({str(numeric)} if numeric is not None else set())
    return [e for e in entries if e.owner in keys]


def stacked(ranges: Iterable[SubIdRange]) -> tuple[IdRange, ...]:
    """Container ids 0.. laid over the ranges one after another (dockerd's order)."""
    out, inner = [], 0
    for r in ranges:
        out.append(IdRange(inner, r.start, r.count))
        inner += r.count
    return tuple(out)


def first_free(entries: Iterable[SubIdRange], size: int = RANGE_SIZE,
               start: int = RANGE_START) -> int:  # fmt: skip
    """The lowest start >= `start` of `size` ids overlapping no listed range."""
    candidate = start
    for r in sorted(entries, key=lambda e: e.start):
        if r.end <= candidate:
            continue
        if r.start >= candidate + size:
            break
        candidate = r.end
    return candidate


# --userns-remap -------------------------------------------------------------------


@dataclass(frozen=True)
class Remap:
    """The daemon's --userns-remap: whose subordinate ids, and the map they make."""

    user: str
    group: str
    idmap: IdMap

    @property
    def root(self) -> tuple[int, int]:
        return self.idmap.root


def parse_remap(value: str, subuid: Path = SUBUID, subgid: Path = SUBGID,
                create_default: bool = True) -> Remap | None:  # fmt: skip
    """`default`, USER, USER:GROUP, UID or UID:GID (dockerd's forms); None for ""."""
    if not value:
        return None
    parts = value.split(":")
    if len(parts) > 2:
        raise InvalidArgument(f"Invalid user/group specification in --userns-remap: {value!r}")
    user, uid = _remap_user(parts[0], create_default, subuid, subgid)
    group, gid = _remap_group(parts[1] if len(parts) == 2 else None, user, uid)
    uids = ranges_of(read_subids(subuid), user, uid)
    gids = ranges_of(read_subids(subgid), group, gid)
    if not uids:
        raise InvalidArgument(f"No subuid ranges found for user {user!r} in {subuid}")
    if not gids:
        raise InvalidArgument(f"No subgid ranges found for group {group!r} in {subgid}")
    return Remap(user, group, IdMap(stacked(uids), stacked(gids)))


def _remap_user(spec: str, create_default: bool, subuid: Path, subgid: Path) -> tuple[str, int]:
    if spec.isdigit():
        try:
            return pwd.getpwuid(int(spec)).pw_name, int(spec)
        except KeyError:
            raise InvalidArgument(f"Uid {spec} has no entry in /etc/passwd") from None
    name = DEFAULT_USER if spec == "default" else spec
    try:
        return name, pwd.getpwnam(name).pw_uid
    except KeyError:
        if spec != "default" or not create_default:
            raise InvalidArgument(f"Error during uid lookup for {name!r}: user not found") from None
    add_default_user(subuid, subgid)
    return name, pwd.getpwnam(name).pw_uid


def _remap_group(spec: str | None, user: str, uid: int) -> tuple[str, int | None]:
    if spec is None:
        # dockerd: the user's name as a group name (a numeric uid as the gid).
        with contextlib.suppress(KeyError):
            g = grp.getgrnam(user)
            return g.gr_name, g.gr_gid
        return user, None
    if spec.isdigit():
        try:
            return grp.getgrgid(int(spec)).gr_name, int(spec)
        except KeyError:
            raise InvalidArgument(f"Gid {spec} has no entry in /etc/group") from None
    try:
        return spec, grp.getgrnam(spec).gr_gid
    except KeyError:
        raise InvalidArgument(f"Error during gid lookup for {spec!r}: group not found") from None


def add_default_user(subuid: Path = SUBUID, subgid: Path = SUBGID) -> None:
    """Create "dockremap" (a system user and group) and give it the first free ranges."""
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    proc = subprocess.run(
        [useradd, "--system", "--user-group", "--shell", "/bin/false", "--no-create-home",
         DEFAULT_USER],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0 and proc.returncode != 9:  # 9: it exists already
        raise Unavailable(f"Error during {DEFAULT_USER!r} user creation: {proc.stderr.strip()}")
    # As dockerd: one start for both files, free in each.
    start = max(first_free(read_subids(subuid)), first_free(read_subids(subgid)))
    for path in (subuid, subgid):
        if not ranges_of(read_subids(path), DEFAULT_USER, None):
            append_range(path, SubIdRange(DEFAULT_USER, start, RANGE_SIZE))


def append_range(path: Path, entry: SubIdRange) -> None:
    text = path.read_text() if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    tmp = path.with_name(path.name + ".freight-tmp")
    tmp.write_text(text + f"{entry.owner}:{entry.start}:{entry.count}\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def remove_ranges(path: Path, owner: str) -> None:
    """Drop `owner`'s lines (tests undo what `add_default_user` added)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines(keepends=True)
            if line.split(":", 1)[0] != owner]  # fmt: skip
    path.write_text("".join(kept))


# per container ---------------------------------------------------------------------


def parse_map_flag(text: str, flag: str = "--uidmap") -> IdRange:
    """`CONTAINER:HOST:SIZE` as podman's --uidmap/--gidmap take it."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise InvalidArgument(f"invalid {flag} {text!r}: want CONTAINER_ID:HOST_ID:SIZE")
    inner, outer, size = map(int, parts)
    if size <= 0 or max(inner, outer) + size > 1 << 32:
        raise InvalidArgument(f"invalid {flag} {text!r}: the range is out of bounds")
    return IdRange(inner, outer, size)


def _fmt(ranges: Iterable[IdRange]) -> list[str]:
    return [f"{r.inner}:{r.outer}:{r.size}" for r in ranges]


def to_json(m: IdMap) -> dict[str, list[str]]:
    return {"UIDMaps": _fmt(m.uids), "GIDMaps": _fmt(m.gids)}


def from_json(raw: Any) -> IdMap | None:
    """The maps of a HostConfig.FreightIDMappings value (GIDMaps default to UIDMaps)."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument(f"invalid HostConfig.{MAPS_KEY}: must be a JSON object")
    uids = tuple(parse_map_flag(str(t), "--uidmap") for t in raw.get("UIDMaps") or [])
    gids = tuple(parse_map_flag(str(t), "--gidmap") for t in raw.get("GIDMaps") or [])
    if not uids and not gids:
        return None
    return IdMap(uids or gids, gids or uids)


def container_map(extra: dict[str, Any]) -> IdMap | None:
    """A created container's resolved maps (None: the host's user namespace)."""
    if extra.get("UsernsMode") == "host":
        return None
    return from_json(extra.get(MAPS_KEY))


# The id a user namespace shows for a host id it does not map (the kernel's overflowuid).
OVERFLOW_ID = 65534


def _inward(ranges: tuple[IdRange, ...], outer: int) -> int | None:
    for r in ranges:
        if r.outer <= outer < r.outer + r.size:
            return r.inner + outer - r.outer
    return None


def to_host_owner(m: IdMap) -> Callable[[int, int], tuple[int, int]]:
    """Container ids -> the host ids that a file written into its live rootfs must get
    (what `cp` into a running remapped container writes); unmapped ids become the
    container's nobody."""

    def owner(uid: int, gid: int) -> tuple[int, int]:
        host_uid, host_gid = m.to_host_uid(uid), m.to_host_gid(gid)
        nobody_uid, nobody_gid = m.to_host_uid(OVERFLOW_ID), m.to_host_gid(OVERFLOW_ID)
        return (
            host_uid if host_uid is not None else (nobody_uid or 0),
            host_gid if host_gid is not None else (nobody_gid or 0),
        )

    return owner


def to_container_owner(m: IdMap) -> Callable[[int, int], tuple[int, int]]:
    """Host ids on a remapped container's live rootfs -> the ids it sees (for `cp` out)."""

    def owner(uid: int, gid: int) -> tuple[int, int]:
        inner_uid = _inward(m.uids, uid)
        inner_gid = _inward(m.gids, gid)
        return (
            OVERFLOW_ID if inner_uid is None else inner_uid,
            OVERFLOW_ID if inner_gid is None else inner_gid,
        )

    return owner


def _auto_size(mode: str) -> int:
    size = RANGE_SIZE
    for opt in mode.partition(":")[2].split(","):
        key, _, value = opt.partition("=")
        if key == "size" and value.isdigit() and int(value) > 0:
            size = int(value)
        elif opt:
            raise InvalidArgument(f"invalid --userns auto option {opt!r} (size=N is known)")
    return size


def auto_pool(subuid: Path = SUBUID, subgid: Path = SUBGID
              ) -> tuple[list[SubIdRange], list[SubIdRange]]:  # fmt: skip
    """The uid and gid ranges --userns=auto draws from: user "containers"'s (podman's)."""
    uids = ranges_of(read_subids(subuid), AUTO_POOL_USER, None)
    gids = ranges_of(read_subids(subgid), AUTO_POOL_USER, None)
    if not uids or not gids:
        raise InvalidArgument(
            "--userns=auto: no subordinate ids: add ranges for user "
            f"{AUTO_POOL_USER!r} to {subuid} and {subgid}"
        )
    return uids, gids


def allocate(pool: list[SubIdRange], used: Iterable[IdRange], size: int) -> int:
    """The lowest host start of `size` free ids inside one pool range."""
    taken = sorted(((u.outer, u.outer + u.size) for u in used), key=lambda t: t[0])
    for r in pool:
        candidate = r.start
        for lo, hi in taken:
            if hi <= candidate or lo >= candidate + size:
                continue
            candidate = hi
        if candidate + size <= r.end:
            return candidate
    raise InvalidArgument(f"--userns=auto: no free range of {size} ids left in the pool")


def resolve(extra: dict[str, Any], remap: Remap | None, others: Iterable[IdMap],
            subuid: Path = SUBUID, subgid: Path = SUBGID) -> IdMap | None:  # fmt: skip
    """The maps a new container gets from its HostConfig and the daemon's remap."""
    mode = str(extra.get("UsernsMode") or "")
    explicit = from_json(extra.get(MAPS_KEY))
    if mode not in ("", "host", "private") and not mode.startswith("auto"):
        raise InvalidArgument(f"invalid USER mode: {mode!r} (host, auto or empty)")
    if mode == "host":
        if explicit is not None:
            raise InvalidArgument("--userns=host cannot be combined with --uidmap/--gidmap")
        return None
    if explicit is not None:
        if mode.startswith("auto"):
            raise InvalidArgument("--userns=auto cannot be combined with --uidmap/--gidmap")
        return explicit
    if mode.startswith("auto"):
        size = _auto_size(mode)
        uids, gids = auto_pool(subuid, subgid)
        # The daemon's remap range is everybody else's: never handed out again.
        others = [*others, *([remap.idmap] if remap is not None else [])]
        ustart = allocate(uids, [r for m in others for r in m.uids], size)
        gstart = allocate(gids, [r for m in others for r in m.gids], size)
        return IdMap((IdRange(0, ustart, size),), (IdRange(0, gstart, size),))
    return remap.idmap if remap is not None else None


def settle(host: HostSettings, remap: Remap | None, others: Iterable[IdMap]) -> None:
    """At create: resolve a container's maps, refuse what can't run in a user
    namespace, and record the maps in its HostConfig (`MAPS_KEY`)."""
    m = resolve(host.extra, remap, others)
    if m is not None:
        validate(host.extra, host.privileged, host.network_mode)
        host.extra[MAPS_KEY] = to_json(m)


def validate(extra: dict[str, Any], privileged: bool, network_mode: str) -> None:
    """dockerd's conflicts of a user-namespaced container, in its words."""
    if privileged:
        raise InvalidArgument(
            "privileged mode is incompatible with user namespaces.  You must run the "
            "container in the host namespace when running privileged mode"
        )
    if network_mode == "host":
        raise InvalidArgument(
            "cannot share the host's network namespace when user namespaces are enabled"
        )
    if extra.get("PidMode") == "host":
        raise InvalidArgument(
            "cannot share the host PID namespace when user namespaces are enabled"
        )


def spec_fields(m: IdMap) -> dict[str, list[dict[str, int]]]:
    """linux.uidMappings / gidMappings of the OCI spec."""

    def entries(ranges: tuple[IdRange, ...]) -> list[dict[str, int]]:
        return [{"containerID": r.inner, "hostID": r.outer, "size": r.size} for r in ranges]

    return {"uidMappings": entries(m.uids), "gidMappings": entries(m.gids)}


def sysfs_in_userns(mount: dict[str, Any]) -> dict[str, Any]:
    """/sys of a user-namespaced container: the kernel mounts sysfs only for the owner of
    the network namespace, and the container joins the daemon's; so an rbind of the
    host's /sys with the same flags (what runc needs; freight's runtime falls back
    to it as well)."""
    if mount.get("type") != "sysfs":
        return mount
    return {**mount, "type": "bind", "source": "/sys", "options": ["rbind", *mount["options"]]}


# rootfs and volumes ------------------------------------------------------------------


class _NamespaceCache:
    """User namespaces to idmap with, one per map, kept open: making one forks the
    daemon (3-4 ms here), and every container of a remapped daemon shares its map."""

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self.fds: dict[IdMap, int] = {}
        self.lock = threading.Lock()  # bundles are prepared in worker threads

    def idmapped_bind(self, m: IdMap, source: str, target: str) -> None:
        # Under the lock: another thread's eviction must not close the fd in use.
        with self.lock:
            fd = self.fds.get(m)
            if fd is None:
                if len(self.fds) >= self.limit:  # the oldest goes (--userns=auto maps)
                    os.close(self.fds.pop(next(iter(self.fds))))
                fd = self.fds[m] = userns.namespace_fd(m)
            idmap.idmapped_bind(source, target, fd)


_namespaces = _NamespaceCache()


def _mount_map(m: IdMap) -> IdMap:
    """The container's maps plus the overlay mounter's (see the module docstring)."""
    extra = IdRange(_MOUNTER_ID, 0, 1)
    return IdMap((*m.uids, extra), (*m.gids, extra))


def _layer_root(mounts: list[Mount]) -> str:
    """The directory holding every layer path of the snapshotter's mounts."""
    paths = []
    for m in mounts:
        if m.type == "bind":
            paths.append(m.source)
        for opt in m.options:
            key, _, value = opt.partition("=")
            if key in ("lowerdir", "upperdir", "workdir"):
                paths += value.split(":")
    return os.path.commonpath(paths)


def _rebase(mounts: list[Mount], old: str, new: str) -> list[Mount]:
    def move(path: str) -> str:
        return new + path[len(old) :]

    out = []
    for m in mounts:
        options = []
        for opt in m.options:
            key, sep, value = opt.partition("=")
            if key in ("lowerdir", "upperdir", "workdir"):
                value = ":".join(move(p) for p in value.split(":"))
            options.append(key + sep + value)
        source = move(m.source) if m.type == "bind" else m.source
        out.append(Mount(m.type, source, options))
    return out


def mount_rootfs(mounts: list[Mount], target: Path, m: IdMap, scratch: Path) -> str:
    """Mount the snapshot at `target` as the container's root sees it; the path taken.

    "idmapped-layers": the layers are reached through an idmapped view (nothing is
    copied); the only other outcome is an error naming the kernel's refusal.
    """
    layer_root = _layer_root(mounts)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        _namespaces.idmapped_bind(_mount_map(m), layer_root, str(scratch))
    except OSError as e:
        raise Unavailable(f"user namespace remapping needs idmapped mounts: {e}") from None
    try:
        for mount in _rebase(mounts, layer_root, str(scratch)):
            flags, _, data = parse_mount_options(mount.options)
            fstype = None if mount.type == "bind" else mount.type
            if mount.type == "bind":
                flags |= syscalls.MS_BIND
            syscalls.mount(mount.source, str(target), fstype, flags, data or None)
    finally:
        syscalls.umount(str(scratch), syscalls.MNT_DETACH)  # overlay holds its own clones
        with contextlib.suppress(OSError):
            scratch.rmdir()
    log.debug(
        "rootfs at %s: idmapped layers under %s (root is host %d:%d)", target, layer_root, *m.root
    )
    return "idmapped-layers"


def own_volume(path: Path, m: IdMap) -> None:
    """A volume directory still owned by host root becomes the container root's, as
    dockerd's volumes under a remapped root are (its content is left as it is)."""
    st = os.stat(path)
    uid, gid = m.root
    if (st.st_uid, st.st_gid) == (0, 0) and uid >= 0 and gid >= 0:
        os.chown(path, uid, gid)
