"""Which registry endpoint to talk to, and how: freightd's registry options
(`--insecure-registry`, `--registry-mirror`, CA certificates in
/etc/freight/certs.d/HOST/), the scheme probe for insecure registries, and
login (`POST /auth`) and search (`GET /images/search`).

Registries on 127.0.0.0/8 (and ::1, "localhost") are insecure by default, as
in docker: HTTPS without verification first, then plain HTTP.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from freight.distribution.auth import ANONYMOUS, Credentials
from freight.distribution.client import Endpoint, RegistryClient, RegistryError, Unauthorized
from freight.errors import InvalidArgument, PermissionDenied, Unavailable
from freight.oci import reference as refs

log = logging.getLogger(__name__)

CERTS_DIR = Path("/etc/freight/certs.d")
INDEX_SERVER = "https://index.docker.io/v1/"


@dataclass
class RegistryOptions:
    insecure: list[str] = field(default_factory=list)  # hosts[:port] or CIDRs
    mirrors: list[str] = field(default_factory=list)  # URLs, for docker.io
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    certs_dir: Path = CERTS_DIR


def normalize_host(server: str) -> str:
    """What a login or X-Registry-Auth names -> the reference domain ("docker.io")."""
    s = server.strip()
    for prefix in ("https://", "http://"):
        s = s.removeprefix(prefix)
    s = s.split("/", 1)[0]
    if s in ("", "index.docker.io", "registry-1.docker.io", "docker.io"):
        return refs.DEFAULT_DOMAIN
    return s


class Registries:
    def __init__(self, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions()
        self._schemes: dict[str, str] = {}  # host -> "https" | "http", once probed
        self._lock = threading.Lock()
        for value in self.options.insecure:
            if not value.strip():
                raise InvalidArgument(f"invalid --insecure-registry value {value!r}")

    def is_insecure(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]")
        if name == "localhost":
            return True
        for entry in self.options.insecure:
            entry = normalize_host(entry) if "/" not in entry or "://" in entry else entry
            if entry in (host, name):
                return True
            try:
                if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def endpoints(self, host: str) -> list[Endpoint]:
        """Mirrors first (for docker.io), then the registry itself."""
        out: list[Endpoint] = []
        if host == refs.DEFAULT_DOMAIN:
            for m in self.options.mirrors:
                mhost = normalize_host(m)
                out.append(Endpoint(host, m.rstrip("/"), not self.is_insecure(mhost)))
        api = "registry-1.docker.io" if host == refs.DEFAULT_DOMAIN else host
        out.append(self._endpoint(host, api))
        return out

    def _endpoint(self, host: str, api: str) -> Endpoint:
        if not self.is_insecure(host):
            return Endpoint(host, f"https://{api}", self._verify(host))
        with self._lock:
            scheme = self._schemes.get(host)
        if scheme is None:
            scheme = self._probe(api)
            with self._lock:
                self._schemes[host] = scheme
        return Endpoint(host, f"{scheme}://{api}", False)

    def _verify(self, host: str) -> bool | str:  # type: ignore[return]
        ca_dir = self.options.certs_dir / host
        cas = sorted(ca_dir.glob("*.crt")) if ca_dir.is_dir() else []
        return str(cas[0]) if cas else True

    def _probe(self, api: str) -> str:
        """HTTPS (unverified) if the registry speaks it, else HTTP."""
        try:
            httpx.get(f"https://{api}/v2/", verify=False, timeout=3.0)
            return "https"
        except httpx.HTTPError:
            return "http"

    def client(self, host: str, credentials: Credentials = ANONYMOUS) -> RegistryClient:
        return RegistryClient(self.endpoints(host)[-1], credentials)

    def clients(self, host: str, credentials: Credentials = ANONYMOUS) -> list[RegistryClient]:
        """One per endpoint, mirrors first; credentials go to the registry itself only."""
        eps = self.endpoints(host)
        return [RegistryClient(ep, credentials if ep is eps[-1] else ANONYMOUS) for ep in eps]

    # login / search -------------------------------------------------------

    def login(self, server: str, credentials: Credentials) -> str:
        """Check the credentials against the registry: "Login Succeeded" or PermissionDenied."""
        host = normalize_host(server)
        with self.client(host, credentials) as c:
            try:
                c.ping()  # a registry that asks for nothing accepts anyone, as in docker
            except Unauthorized as e:
                raise PermissionDenied(str(e)) from None
            except RegistryError as e:
                raise PermissionDenied(f"unauthorized: {e}") from None
        return "Login Succeeded"

    def search(
        self, term: str, limit: int, credentials: Credentials = ANONYMOUS
    ) -> list[dict[str, object]]:
        host, _, rest = term.partition("/")
        if rest and ("." in host or ":" in host or host == "localhost"):
            registry, query = host, rest
        else:
            registry, query = refs.DEFAULT_DOMAIN, term
        if not query:
            raise InvalidArgument("search term is required")
        with self.client(registry, credentials) as c:
            try:
                return c.search(query, limit)
            except (RegistryError, Unavailable) as e:
                raise Unavailable(f"searching {registry}: {e}") from None
