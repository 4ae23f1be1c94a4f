"""Hub features: repository descriptions, stars, pull counts, and personal access tokens.

Stored beside the repository's other metadata (`RegistryStorage.read_meta/write_meta`):

    repositories/<name>/_meta/hub.json     {"description": "...", "stars": ["alice", ...], "pulls": N}
    auth/access-tokens.json                {"<id>": {"user", "name", "sha256", "created"}}

Pull counts are kept in memory and written out by `flush()` (the server calls it
periodically and at shutdown), so a manifest GET never writes a file. An access token is
a random secret shown once; only its sha256 is stored, and it works as a password for
`docker login` / the token service (`Accounts.verify` consults `AccessTokens`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from freight.registry.storagebase import RegistryStorage

DESCRIPTION_MAX = 1000
HUB_FILE = "hub.json"


@dataclass(frozen=True, slots=True)
class RepoInfo:
    name: str
    description: str
    stars: list[str]
    pulls: int


def _write_json(path: Path, obj: object, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Hub:
    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage
        self._pending_pulls: Counter[str] = Counter()

    def _read(self, repo: str) -> dict:
        raw = self.storage.read_meta(repo, HUB_FILE)
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def _write(self, repo: str, data: dict) -> None:
        self.storage.write_meta(repo, HUB_FILE, json.dumps(data, sort_keys=True).encode())

    def info(self, repo: str) -> RepoInfo:
        data = self._read(repo)
        return RepoInfo(
            repo,
            str(data.get("description", "")),
            list(data.get("stars", [])),
            int(data.get("pulls", 0)) + self._pending_pulls[repo],
        )

    def set_description(self, repo: str, text: str) -> None:
        data = self._read(repo)
        data["description"] = text.strip()[:DESCRIPTION_MAX]
        self._write(repo, data)

    def toggle_star(self, repo: str, user: str) -> bool:
        """Star (or unstar) `repo` for `user`; True if it is starred afterwards."""
        data = self._read(repo)
        stars = set(data.get("stars", []))
        starred = user not in stars
        stars.symmetric_difference_update({user})
        data["stars"] = sorted(stars)
        self._write(repo, data)
        return starred

    def count_pull(self, repo: str) -> None:
        self._pending_pulls[repo] += 1

    def flush(self) -> None:
        pending, self._pending_pulls = self._pending_pulls, Counter()
        for repo, n in pending.items():
            data = self._read(repo)
            data["pulls"] = int(data.get("pulls", 0)) + n
            if self.storage.repo_exists(repo):
                self._write(repo, data)


@dataclass(frozen=True, slots=True)
class AccessToken:
    id: str
    user: str
    name: str
    created: float


class AccessTokens:
    """Personal access tokens: `frt_<secret>`, stored as sha256 only."""

    def __init__(self, auth_dir: Path) -> None:
        self.path = auth_dir / "access-tokens.json"

    def _load(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_bytes())
        except (FileNotFoundError, ValueError):
            return {}

    def create(self, user: str, name: str) -> tuple[AccessToken, str]:
        secret = "frt_" + secrets.token_urlsafe(32)
        tokens = self._load()
        token = AccessToken(uuid.uuid4().hex[:12], user, name.strip()[:100] or "token", time.time())
        tokens[token.id] = {"user": user, "name": token.name, "created": token.created, "sha256": _sha(secret)}  # fmt: skip
        _write_json(self.path, tokens, 0o600)
        return token, secret

    def list(self, user: str) -> list[AccessToken]:
        return [
            AccessToken(i, t["user"], t["name"], t["created"])
            for i, t in sorted(self._load().items(), key=lambda kv: kv[1]["created"])
            if t["user"] == user
        ]

    def revoke(self, user: str, token_id: str) -> bool:
        tokens = self._load()
        if tokens.get(token_id, {}).get("user") != user:
            return False
        del tokens[token_id]
        _write_json(self.path, tokens, 0o600)
        return True

    def matches(self, user: str, secret: str) -> bool:
        if not secret.startswith("frt_"):
            return False
        digest = _sha(secret)
        return any(t["user"] == user and secrets.compare_digest(t["sha256"], digest) for t in self._load().values())  # fmt: skip


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
