"""Registry accounts and who may do what: users (bcrypt hashes), admins, public repositories.

Stored in `<root>/auth/users.json` (written atomically, mode 0600):

    {"users": {"alice": {"hash": "$2b$12$…", "admin": false, "created": 1700000000}}}

Access rules (`Policy.allowed`), the decision behind every token and every request:

- no account defined: everyone may do everything (a private registry on a trusted network);
- an admin may do everything;
- a user may pull, push and delete in their own namespace `USER/*` (and `USER` itself);
- anyone, signed in or not, may pull a public repository (`public` globs of the config);
- nothing else.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from freight import errors
from freight.registry.hub import AccessTokens

_USER = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
ACTIONS = ("pull", "push", "delete")
BCRYPT_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class User:
    name: str
    admin: bool
    created: float


def check_username(name: str) -> str:
    if len(name) > 64 or not _USER.fullmatch(name):
        raise errors.InvalidArgument(
            f"invalid user name {name!r}: lowercase letters, digits and . _ - separators"
        )
    return name


class Accounts:
    """The users file. Re-read when it changes, so `user add` applies to a running server."""

    def __init__(self, auth_dir: Path) -> None:
        self.path = auth_dir / "users.json"
        self._mtime: float | None = None
        self._users: dict[str, dict] = {}
        # (name, password) pairs already verified: bcrypt costs tens of ms per check.
        self._verified: dict[tuple[str, str], str] = {}
        self.access_tokens = AccessTokens(auth_dir)

    def _load(self) -> dict[str, dict]:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            self._users, self._mtime = {}, None
            return self._users
        if mtime != self._mtime:
            self._users = json.loads(self.path.read_bytes()).get("users", {})
            self._mtime = mtime
            self._verified.clear()
        return self._users

    def _save(self, users: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"users": users}, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def any(self) -> bool:
        return bool(self._load())

    def list(self) -> list[User]:
        return [
            User(name, bool(u.get("admin")), float(u.get("created", 0)))
            for name, u in sorted(self._load().items())
        ]

    def get(self, name: str) -> User | None:
        u = self._load().get(name)
        return None if u is None else User(name, bool(u.get("admin")), float(u.get("created", 0)))

    def add(self, name: str, password: str, admin: bool = False) -> None:
        check_username(name)
        if not password:
            raise errors.InvalidArgument("password must not be empty")
        users = dict(self._load())
        if name in users:
            raise errors.AlreadyExists(f"user {name!r} already exists")
        users[name] = {"hash": _hash(password), "admin": admin, "created": int(time.time())}
        self._save(users)

    def set_password(self, name: str, password: str) -> None:
        if not password:
            raise errors.InvalidArgument("password must not be empty")
        users = dict(self._load())
        if name not in users:
            raise errors.NotFound(f"no such user: {name}")
        users[name] = {**users[name], "hash": _hash(password)}
        self._save(users)

    def remove(self, name: str) -> None:
        users = dict(self._load())
        if users.pop(name, None) is None:
            raise errors.NotFound(f"no such user: {name}")
        self._save(users)
        for token in self.access_tokens.list(name):
            self.access_tokens.revoke(name, token.id)

    def verify(self, name: str, password: str) -> User | None:
        """The user if `password` is theirs, else None."""
        u = self._load().get(name)
        if u is None:
            return None
        if self._verified.get((name, password)) == u["hash"]:
            return self.get(name)
        if self.access_tokens.matches(name, password):
            return self.get(name)
        if not bcrypt.checkpw(password.encode(), u["hash"].encode()):
            return None
        self._verified[(name, password)] = u["hash"]
        return self.get(name)


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


class Policy:
    """Which actions a user (None: anonymous) may take on a repository."""

    def __init__(self, accounts: Accounts, public: list[str]) -> None:
        self.accounts = accounts
        self.public = list(public)

    def open(self) -> bool:
        """No accounts: anonymous access to everything."""
        return not self.accounts.any()

    def is_public(self, repo: str) -> bool:
        return any(fnmatch.fnmatchcase(repo, pattern) for pattern in self.public)

    def allowed(self, user: User | None, repo: str, wanted: list[str]) -> list[str]:
        """The subset of `wanted` actions granted on `repo`."""
        if self.open():
            return [a for a in wanted if a in ACTIONS]
        granted: set[str] = set()
        if user is not None and (
            user.admin or repo == user.name or repo.startswith(user.name + "/")
        ):
            granted = set(ACTIONS)
        if self.is_public(repo):
            granted.add("pull")
        return [a for a in wanted if a in granted]
