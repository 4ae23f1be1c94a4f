"""Who is logging in: the host account freight-shell starts a session for.

Owns: the identity rule, and the passwd lookup. The rule:

- run by a non-root user (a login shell in /etc/passwd, the socket reachable
  through a group): that user; ``--user`` naming anyone else is refused;
- run as root by ``sudo`` from a non-root user (the confined set-up, see
  docs/freight-shell.md): the sudo caller (``SUDO_UID``, which sudo sets and
  the caller cannot choose); ``--user`` naming anyone else is refused, and
  ``FREIGHT_SHELL_CONFIG`` is ignored;
- run as root otherwise: ``--user NAME`` if given (tests, administrators),
  else root itself.
"""

from __future__ import annotations

import pwd

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class AccountError(Exception):
    """The login cannot be attributed to a usable account."""


class Account:
    """A host user, as /etc/passwd has it."""

    __slots__ = ("name", "uid", "gid", "home")

    def __init__(self, name: str, uid: int, gid: int, home: str) -> None:
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home

    @property
    def user_spec(self) -> str:
        """The "uid:gid" form, as the Engine API's ``User`` and ``exec -u`` take it."""
        return f"{self.uid}:{self.gid}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Account) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__
        )

    def __repr__(self) -> str:
        return f"Account({self.name!r}, uid={self.uid}, gid={self.gid}, home={self.home!r})"


def lookup(name: str) -> Account:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise AccountError(f"no such user: {name}") from None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def lookup_uid(uid: int) -> Account:
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        raise AccountError(f"uid {uid} has no passwd entry") from None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def sudo_caller(uid: int, environ: Mapping[str, str]) -> int | None:
    """The uid of the non-root user who ran us through sudo, else None."""
    raw = environ.get("SUDO_UID", "")
    if uid != 0 or not raw.isdigit() or int(raw) == 0:
        return None
    return int(raw)


def login_name(requested: str | None, uid: int, environ: Mapping[str, str]) -> str:
    """The user name to start a session for, by the rule in the docstring."""
    caller_uid = uid if uid != 0 else sudo_caller(uid, environ)
    if caller_uid is None:
        return requested or "root"
    caller = lookup_uid(caller_uid).name
    if requested and requested != caller:
        raise AccountError("--user is for root only")
    return caller
