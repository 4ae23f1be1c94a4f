"""Registry logins in docker's client config (``$DOCKER_CONFIG/config.json``,
default ``~/.docker/config.json``), so freight and docker share them.

Owns: the ``auths`` map (base64 ``user:password``, or an identity token),
``credsStore`` / ``credHelpers`` through ``docker-credential-NAME`` helpers
(``get``/``store``/``erase`` over stdin, as docker does), the index server
key for Docker Hub, and the X-Registry-Auth header value.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile

INDEX_SERVER = "https://index.docker.io/v1/"
TOKEN_USERNAME = "<token>"


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def load() -> dict:
    try:
        with open(config_path()) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ValueError(f"loading config file {config_path()}: {e}") from None
    return doc if isinstance(doc, dict) else {}


def save(doc: dict) -> None:
    """Atomically, mode 0600: the file holds passwords."""
    directory = config_dir()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="config.json.", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent="\t")
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, config_path())
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def server_key(registry: str) -> str:
    """The config key of a registry: Docker Hub's is its v1 index URL."""
    host = registry.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if host in ("", "docker.io", "index.docker.io", "registry-1.docker.io"):
        return INDEX_SERVER
    return host


def _helper_for(doc: dict, key: str) -> str:
    helpers = doc.get("credHelpers") or {}
    host = key if key != INDEX_SERVER else "docker.io"
    return helpers.get(key) or helpers.get(host) or doc.get("credsStore") or ""


def _run_helper(helper: str, action: str, data: str) -> str:
    try:
        proc = subprocess.run(
            [f"docker-credential-{helper}", action],
            input=data,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        raise RuntimeError(
            f'error getting credentials - err: exec: "docker-credential-{helper}": '
            "executable file not found in $PATH"
        ) from None
    if proc.returncode != 0:
        out = (proc.stdout or proc.stderr).strip()
        if action == "get" and "credentials not found" in out.lower():
            return ""
        raise RuntimeError(f"error {action} credentials - {out}")
    return proc.stdout


def get(registry: str) -> dict[str, str]:
    """{username, password, identitytoken, serveraddress} for a registry; {} if none."""
    doc = load()
    key = server_key(registry)
    helper = _helper_for(doc, key)
    if helper:
        out = _run_helper(helper, "get", key)
        if not out.strip():
            return {}
        found = json.loads(out)
        user, secret = found.get("Username", ""), found.get("Secret", "")
        if user == TOKEN_USERNAME:
            return {"identitytoken": secret, "serveraddress": key}
        return {"username": user, "password": secret, "serveraddress": key}
    entry = (doc.get("auths") or {}).get(key) or {}
    creds: dict[str, str] = {"serveraddress": key}
    if entry.get("auth"):
        raw = base64.b64decode(entry["auth"]).decode()
        creds["username"], _, creds["password"] = raw.partition(":")
    if entry.get("identitytoken"):
        creds["identitytoken"] = entry["identitytoken"]
    return creds if len(creds) > 1 else {}


def store(registry: str, username: str, password: str, identity_token: str = "") -> str:
    """Keep a login; returns where it went (a helper's name or the file path)."""
    doc = load()
    key = server_key(registry)
    helper = _helper_for(doc, key)
    if helper:
        user, secret = (TOKEN_USERNAME, identity_token) if identity_token else (username, password)
        payload = json.dumps({"ServerURL": key, "Username": user, "Secret": secret})
        _run_helper(helper, "store", payload)
        doc.setdefault("auths", {})[key] = {}
        save(doc)
        return f"docker-credential-{helper}"
    entry: dict[str, str] = {}
    if identity_token:
        entry["identitytoken"] = identity_token
        entry["auth"] = base64.b64encode(f"{username}:".encode()).decode()
    else:
        entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
    doc.setdefault("auths", {})[key] = entry
    save(doc)
    return config_path()


def erase(registry: str) -> bool:
    """Forget a login; False when there was none."""
    doc = load()
    key = server_key(registry)
    helper = _helper_for(doc, key)
    had = key in (doc.get("auths") or {})
    if helper:
        try:
            _run_helper(helper, "erase", key)
            had = True
        except RuntimeError:
            pass
    if key in (doc.get("auths") or {}):
        del doc["auths"][key]
        save(doc)
    return had


def registry_auth_header(creds: dict[str, str]) -> str:
    """X-Registry-Auth: base64url of the JSON credentials, as docker sends it."""
    return base64.urlsafe_b64encode(json.dumps(creds).encode()).decode()
