"""Test certificates made with ``cryptography``: a CA, a server certificate for
127.0.0.1/localhost, and client certificates, written the way docker lays
them out, so a directory is usable as ``DOCKER_CERT_PATH``::

    <dir>/
        ca.pem               the CA's certificate
        server/cert.pem      server certificate (SAN 127.0.0.1, ::1, localhost)
        server/key.pem
        client/ca.pem        a DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem
        client/cert.pem      client certificate signed by the CA
        client/key.pem
        rogue/               like client/, but signed by another CA

Tests outside tests/integration load this file by path (importlib).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertSet:
    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.root / "server" / "cert.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server" / "key.pem"

    @property
    def client_dir(self) -> Path:
        return self.root / "client"

    @property
    def rogue_dir(self) -> Path:
        return self.root / "rogue"

    def server_flags(self) -> list[str]:
        return ["--tlscacert", str(self.ca), "--tlscert", str(self.server_cert),
                "--tlskey", str(self.server_key)]  # fmt: skip

    def client_flags(self, directory: Path | None = None) -> list[str]:
        d = directory or self.client_dir
        return ["--tlscacert", str(d / "ca.pem"), "--tlscert", str(d / "cert.pem"),
                "--tlskey", str(d / "key.pem")]  # fmt: skip


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], subject: str, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(subject, ca_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if server:
        names = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_certs(root: Path) -> CertSet:
    """Write a CA, a server and two client certificate sets under ``root``."""
    certs = CertSet(root)
    ca = _make_ca("freight test CA")
    _write_cert(certs.ca, ca[0])
    cert, key = _issue(ca, "freightd", server=True)
    _write_cert(certs.server_cert, cert)
    _write_key(certs.server_key, key)
    cert, key = _issue(ca, "client", server=False)
    _write_cert(certs.client_dir / "ca.pem", ca[0])
    _write_cert(certs.client_dir / "cert.pem", cert)
    _write_key(certs.client_dir / "key.pem", key)
    rogue_ca = _make_ca("some other CA")
    cert, key = _issue(rogue_ca, "intruder", server=False)
    _write_cert(certs.rogue_dir / "ca.pem", ca[0])  # trusts the real server...
    _write_cert(certs.rogue_dir / "cert.pem", cert)  # ...with a cert the server must refuse
    _write_key(certs.rogue_dir / "key.pem", key)
    return certs


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the tests listen on loopback only)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tls_daemon(tools, root: Path, cgroup_parent: str, certs: CertSet, *extra: str):  # noqa: ANN001, ANN201
    """A freightd on a unix socket and tcp://127.0.0.1:PORT with --tlsverify.

    ``tools`` is the integration conftest's DaemonTools; returns (Freightd, tcp host).
    """
    import subprocess
    import sys

    sock = root / "freight.sock"
    log = root / "freightd.log"
    tcp = f"tcp://127.0.0.1:{free_port()}"
    args = [
        sys.executable, "-m", "freight.daemon.main", "-H", f"unix://{sock}", "-H", tcp,
        "--tlsverify", *certs.server_flags(), *extra,
        "--data-root", str(root / "data"), "--exec-root", str(root / "run"),
        "--cgroup-parent", cgroup_parent, "--log-level", "debug",
        *tools.network_flags(cgroup_parent),
    ]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)
    d = tools.Freightd(root, f"unix://{sock}", proc, cgroup_parent, log)
    tools.wait_for_ping(d)
    return d, tcp
