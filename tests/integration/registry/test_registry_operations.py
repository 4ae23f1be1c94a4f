"""Operations of `freight registry serve`: TLS, the config file, the structured access
log, metrics, and bad command lines."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from registryserver import OCI_MANIFEST, freight_cli, make_image, push_image


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def test_tls_serves_https_and_challenges_with_https_realm(registry_factory, tmp_path):
    cert, key = self_signed(tmp_path)
    r = registry_factory("--tls-cert", str(cert), "--tls-key", str(key))
    assert r.cli("user", "add", "tess", "--password-stdin", stdin=b"pw\n").returncode == 0
    ctx = ssl.create_default_context(cafile=str(cert))
    try:
        urllib.request.urlopen(f"https://{r.host}/v2/", context=ctx)  # noqa: S310
        raise AssertionError("expected 401")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
        assert exc.headers["WWW-Authenticate"].startswith(f'Bearer realm="https://{r.host}/token"')
    with urllib.request.urlopen(f"https://{r.host}/healthz", context=ctx) as resp:  # noqa: S310
        assert json.loads(resp.read())["status"] == "ok"


def test_config_file_sets_public_repositories_and_manifest_limit(registry_factory, tmp_path):
    config = tmp_path / "registry.toml"
    config.write_text('public = ["pub/*"]\nmax_manifest_size = 2000\nservice = "my-registry"\n')
    r = registry_factory("--config", str(config))
    assert r.cli("user", "add", "root", "--admin", "--password-stdin", "--config", str(config), stdin=b"pw\n").returncode == 0  # fmt: skip
    image = make_image(seed=b"config")
    assert push_image(r, "pub/app", "v1", image, auth=("root", "pw")).status == 201
    anon = r.request("GET", "/token?service=my-registry&scope=repository:pub/app:pull").json()[
        "token"
    ]
    assert r.request("GET", "/v2/pub/app/manifests/v1", auth=anon).status == 200
    big = r.request("PUT", "/v2/pub/app/manifests/big", b" " * 2001, {"Content-Type": OCI_MANIFEST}, auth=("root", "pw"))  # fmt: skip
    assert big.status == 413


def test_access_log_is_one_json_object_per_request(registry_factory):
    r = registry_factory()
    r.request("GET", "/v2/")
    r.request("GET", "/v2/nobody/here/tags/list")
    lines = [json.loads(line) for line in r.log.read_text().splitlines() if line.startswith("{")]
    assert {"method": "GET", "path": "/v2/nobody/here/tags/list", "status": 404}.items() <= lines[
        -1
    ].items()
    assert set(lines[-1]) >= {"time", "remote", "user", "bytes", "duration_ms"}
    metrics = r.request("GET", "/metrics").body.decode()
    assert 'freight_registry_requests_total{method="GET",code="404"} 1' in metrics


def test_bad_command_lines(tmp_path):
    import subprocess

    def run(*args):
        return subprocess.run([*freight_cli(), "registry", *args], capture_output=True, stdin=subprocess.DEVNULL, timeout=30)  # fmt: skip

    busy = run("serve", "--addr", "nonsense", "--root", str(tmp_path))
    assert busy.returncode == 1 and b"invalid --addr" in busy.stderr
    missing = run("serve", "--config", str(tmp_path / "none.toml"), "--root", str(tmp_path))
    assert missing.returncode == 1 and b"config file not found" in missing.stderr
    half = run("serve", "--tls-cert", "x", "--root", str(tmp_path))
    assert half.returncode == 1 and b"--tls-cert and --tls-key" in half.stderr
    assert run("user", "rm", "ghost", "--root", str(tmp_path)).returncode == 1
    assert run("user", "bogus").returncode == 1
    helped = run("--help")
    assert helped.returncode == 0 and b"serve" in helped.stdout
