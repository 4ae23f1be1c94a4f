"""The token service: scoped JWTs (ES256, signed by the server's key) for Docker/OCI clients.

Flow (the Docker token authentication spec):

    client ── GET /v2/alice/app/manifests/1 ─────────────▶ registry
           ◀── 401 WWW-Authenticate: Bearer realm="…/token",service="…",
                                     scope="repository:alice/app:pull"
    client ── GET /token?service=…&scope=repository:alice/app:pull,push
              Authorization: Basic alice:secret ─────────▶ token service
           ◀── {"token": "<jwt>", "expires_in": 300, "issued_at": …}
    client ── GET /v2/alice/app/manifests/1
              Authorization: Bearer <jwt> ───────────────▶ registry (checks signature,
                                                             expiry, audience, scope)

The key is `<root>/auth/token-key.pem` (created on first use). The verifier accepts only
ES256 — a token with `alg: none` or signed with another key fails signature checking — and
grants exactly the `access` list inside the token, so a token for one repository is
useless on another.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
ISSUER = "freight-registry"
DEFAULT_EXPIRY = 300


@dataclass(frozen=True, slots=True)
class Scope:
    type: str  # "repository" or "registry"
    name: str
    actions: list[str]


def parse_scope(text: str) -> Scope | None:
    """`repository:NAME:pull,push` (NAME may contain ':' only for a port: not here)."""
    kind, _, rest = text.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return Scope(kind, name, [a for a in actions.split(",") if a])


class TokenService:
    def __init__(self, auth_dir: Path, service: str, expiry: int = DEFAULT_EXPIRY) -> None:
        self.service = service
        self.expiry = expiry
        self._key = _load_or_create_key(auth_dir / "token-key.pem")
        self._public = self._key.public_key()

    def issue(self, subject: str, access: list[Scope]) -> dict:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": self.service,
            "iat": now,
            "nbf": now - 1,
            "exp": now + self.expiry,
            "jti": uuid.uuid4().hex,
            "access": [{"type": s.type, "name": s.name, "actions": s.actions} for s in access],
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {
            "token": token,
            "access_token": token,
            "expires_in": self.expiry,
            "issued_at": issued,
        }

    def verify(self, token: str) -> tuple[str, list[Scope]] | None:
        """(subject, granted scopes) of a valid token, None for anything else."""
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=self.service,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        scopes = []
        for entry in claims.get("access") or []:
            if isinstance(entry, dict):
                actions = [a for a in entry.get("actions") or [] if isinstance(a, str)]
                scopes.append(Scope(str(entry.get("type")), str(entry.get("name")), actions))
        return str(claims["sub"]), scopes


SESSION_EXPIRY = 12 * 3600


def _session_audience(service: str) -> str:
    return f"{service}-web"


def issue_session(service: TokenService, user: str) -> str:
    """A web sign-in cookie: a JWT for the web audience only (useless as a registry token)."""
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": user, "aud": _session_audience(service.service), "iat": now, "exp": now + SESSION_EXPIRY}  # fmt: skip
    return jwt.encode(claims, service._key, algorithm=ALGORITHM)


def verify_session(service: TokenService, token: str) -> str | None:
    try:
        claims = jwt.decode(
            token,
            service._public,
            algorithms=[ALGORITHM],
            audience=_session_audience(service.service),
            issuer=ISSUER,
        )
    except jwt.PyJWTError:
        return None
    return str(claims.get("sub") or "") or None


def _load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key
    except FileNotFoundError:
        pass
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, path)
    return key
