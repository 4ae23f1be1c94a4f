"""The real docker CLI and docker-py against freightd over tcp:// + --tlsverify:
client certificates accepted from our CA and refused otherwise, ps/run, and
`run -i` with piped stdin, whose end travels as a TLS close_notify (docker's
CloseWrite) and must reach the container while its output still comes back.
The freight CLI's `run -i` over TLS is checked the same way.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_PATH = Path(__file__).parent.parent / "integration" / "tlscerts.py"
_spec = importlib.util.spec_from_file_location("freight_compat_tlscerts", _PATH)
assert _spec is not None and _spec.loader is not None
tlscerts = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = tlscerts
_spec.loader.exec_module(tlscerts)

AFTER_EOF = "cat; echo after-eof"  # prints only once stdin has ended


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return tlscerts.make_certs(tmp_path_factory.mktemp("compat-tls"))


@pytest.fixture(scope="module")
def tls_daemon(daemon_tools, run_id: str, certs) -> Iterator[tuple[object, str]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (freightd)")
    root = Path(f"/tmp/freight-test-{run_id}-dtls")
    root.mkdir()
    cgroup_parent = f"freight-test-{run_id}-dtls"
    d = None
    try:
        d, tcp = tlscerts.start_tls_daemon(daemon_tools, root, cgroup_parent, certs)
        boot = d.cli("image", "bootstrap", "busybox", timeout=120)
        assert boot.returncode == 0, boot.stderr.decode() + d.log_tail()
        yield d, tcp
    finally:
        if d is not None:
            ids = d.cli("ps", "-aq").stdout.decode().split()
            if ids:
                d.cli("rm", "-f", *ids)
            daemon_tools.stop(d)
        daemon_tools.cleanup(root, cgroup_parent)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "FREIGHT_"))}


def docker(tcp: str, certs, *args: str, directory: Path | None = None,
           input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:  # fmt: skip
    """docker --tlsverify --tlscacert --tlscert --tlskey -H tcp://127.0.0.1:PORT ARGS."""
    io = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run(
        ["docker", "--tlsverify", *certs.client_flags(directory), "-H", tcp, *args],
        env=_clean_env(), capture_output=True, timeout=timeout, **io,
    )  # fmt: skip


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


def test_docker_ps_over_tls(tls_daemon, certs) -> None:
    _, tcp = tls_daemon
    header = ok(docker(tcp, certs, "ps")).splitlines()[0]
    assert header.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                              "PORTS", "NAMES"]  # fmt: skip
    version = ok(docker(tcp, certs, "version", "--format", "{{.Server.APIVersion}}"))
    assert version.strip() == "1.45"


def test_docker_run_rm_over_tls(tls_daemon, certs) -> None:
    _, tcp = tls_daemon
    assert ok(docker(tcp, certs, "run", "--rm", "busybox", "echo", "over tls")) == "over tls\n"


def test_docker_run_i_with_piped_stdin_over_tls(tls_daemon, certs) -> None:
    _, tcp = tls_daemon
    lines = b"".join(b"line %d\n" % i for i in range(2000))
    r = docker(tcp, certs, "run", "-i", "--rm", "busybox", "sh", "-c", AFTER_EOF,
               input=lines, timeout=30)  # fmt: skip
    assert ok(r) == lines.decode() + "after-eof\n"


def test_docker_exec_i_with_piped_stdin_over_tls(tls_daemon, certs) -> None:
    d, tcp = tls_daemon
    ok(docker(tcp, certs, "run", "-d", "--name", "tls-exec", "busybox", "sleep", "600"))
    try:
        r = docker(tcp, certs, "exec", "-i", "tls-exec", "sh", "-c", "wc -c; echo done",
                   input=b"x" * 100_000, timeout=30)  # fmt: skip
        assert ok(r).split() == ["100000", "done"]
    finally:
        docker(tcp, certs, "rm", "-f", "tls-exec")


def test_freight_run_i_with_piped_stdin_over_tls(tls_daemon, certs) -> None:
    _, tcp = tls_daemon
    r = subprocess.run(
        [sys.executable, "-m", "freight.cli.main", "--tlsverify", *certs.client_flags(),
         "-H", tcp, "run", "-i", "--rm", "busybox", "sh", "-c", AFTER_EOF],
        env=_clean_env(), input=b"hello\n", capture_output=True, timeout=30,
    )  # fmt: skip
    assert ok(r) == "hello\nafter-eof\n"


def test_client_certificate_of_another_ca_is_refused(tls_daemon, certs) -> None:
    _, tcp = tls_daemon
    r = docker(tcp, certs, "ps", directory=certs.rogue_dir, timeout=30)
    assert r.returncode != 0
    assert "remote error: tls: unknown certificate authority" in r.stderr.decode()


def test_no_client_certificate_is_refused(tls_daemon, certs, tmp_path: Path) -> None:
    _, tcp = tls_daemon
    r = subprocess.run(
        ["docker", "--tlsverify", "--tlscacert", str(certs.ca), "-H", tcp, "ps"],
        env={**_clean_env(), "DOCKER_CERT_PATH": str(tmp_path)}, capture_output=True,
        stdin=subprocess.DEVNULL, timeout=30,
    )  # fmt: skip
    assert r.returncode != 0
    assert "remote error: tls: certificate required" in r.stderr.decode(), r.stderr.decode()


def test_docker_py_tls_config(tls_daemon, certs, monkeypatch: pytest.MonkeyPatch) -> None:
    docker_py = pytest.importorskip("docker")
    # requests lets these override the session's CA (docker-py's ca_cert): not ours.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    _, tcp = tls_daemon
    d = certs.client_dir
    tls = docker_py.tls.TLSConfig(
        client_cert=(str(d / "cert.pem"), str(d / "key.pem")), ca_cert=str(d / "ca.pem"),
        verify=True,
    )  # fmt: skip
    client = docker_py.DockerClient(base_url=tcp.replace("tcp://", "https://"), tls=tls)
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.45"
        out = client.containers.run("busybox", ["echo", "from docker-py"], remove=True)
        assert out == b"from docker-py\n"
    finally:
        client.close()
    rogue = certs.rogue_dir
    refused = docker_py.tls.TLSConfig(
        client_cert=(str(rogue / "cert.pem"), str(rogue / "key.pem")),
        ca_cert=str(rogue / "ca.pem"), verify=True,
    )  # fmt: skip
    # The daemon's alert reaches the client: it names the reason.
    with pytest.raises(docker_py.errors.DockerException, match="unknown ca"):
        docker_py.DockerClient(base_url=tcp.replace("tcp://", "https://"), tls=refused)
