"""Resolve a container's `User` ("name", "uid", "name:group", "uid:gid") from the
image's own /etc/passwd and /etc/group, read from its root filesystem; nothing
from the image is run. Semantics follow runc's user lookup, which Docker uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from freight.errors import InvalidArgument
from freight.services.rootpath import read_text_in_root


@dataclass(frozen=True)
class ExecUser:
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: list[str]


def parse_passwd(text: str) -> list[PasswdEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) < 4 or line.startswith("#"):
            continue
        try:
            home = fields[5] if len(fields) > 5 else "/"
            entries.append(PasswdEntry(fields[0], int(fields[2]), int(fields[3]), home))
        except ValueError:
            continue
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) < 3 or line.startswith("#"):
            continue
        try:
            members = [m for m in fields[3].split(",") if m] if len(fields) > 3 else []
            entries.append(GroupEntry(fields[0], int(fields[2]), members))
        except ValueError:
            continue
    return entries


def resolve_user(rootfs: Path, spec: str, extra_groups: list[str] = ()) -> ExecUser:
    """Turn Docker's `User` string into ids, like runc's GetExecUser."""
    user_part, _, group_part = (spec or "").partition(":")
    passwd = parse_passwd(read_text_in_root(rootfs, "/etc/passwd") or "")
    groups = parse_group(read_text_in_root(rootfs, "/etc/group") or "")

    uid, gid, home, name = _lookup_user(user_part, passwd)
    if group_part:
        gid = _lookup_group(group_part, groups)
    supplementary = [g.gid for g in groups if name and name in g.members and g.gid != gid]
    supplementary += [_lookup_group(g, groups) for g in extra_groups]
    return ExecUser(uid, gid, sorted(set(supplementary)), home)


def _lookup_user(user: str, passwd: list[PasswdEntry]) -> tuple[int, int, str, str]:
    if user == "":
        user = "0"
    for entry in passwd:
        if entry.name == user or (user.isdigit() and entry.uid == int(user)):
            return entry.uid, entry.gid, entry.home, entry.name
    if user.isdigit():
        return int(user), 0, "/", ""
    raise InvalidArgument(f"unable to find user {user}: no matching entries in passwd file")


def _lookup_group(group: str, groups: list[GroupEntry]) -> int:
    for entry in groups:
        if entry.name == group or (group.isdigit() and entry.gid == int(group)):
            return entry.gid
    if group.isdigit():
        return int(group)
    raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
