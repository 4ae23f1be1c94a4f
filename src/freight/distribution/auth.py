"""Registry authentication: WWW-Authenticate challenges and the credentials
sent in answer (Basic, or a Bearer token from the challenge's token service).

Pure logic, no I/O: the HTTP client in `freight.distribution.client` does the
requests. Credentials never appear in reprs or messages.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    """What a user logged in with: a password, or a token the registry issued."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)  # an OAuth refresh token
    registry_token: str = field(default="", repr=False)  # a bearer token as is

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


ANONYMOUS = Credentials()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(header: str) -> list[Challenge]:
    """`Bearer realm="…",service="…",scope="…"` (several schemes may follow each other)."""
    out: list[Challenge] = []
    rest = header.strip()
    while rest:
        m = re.match(r"([A-Za-z][A-Za-z0-9_-]*)\s*", rest)
        if not m:
            break
        scheme = m.group(1).lower()
        rest = rest[m.end() :]
        params: dict[str, str] = {}
        while True:
            p = _PARAM.match(rest)
            # A bare word not followed by '=' starts the next challenge.
            if not p:
                break
            value = p.group(2) if p.group(2) is not None else p.group(3)
            params[p.group(1).lower()] = re.sub(r"\\(.)", r"\1", value or "")
            rest = rest[p.end() :]
        out.append(Challenge(scheme, params))
        rest = rest.lstrip(", ")
    return out


def repository_scope(repo: str, actions: tuple[str, ...]) -> str:
    return f"repository:{repo}:{','.join(actions)}"
