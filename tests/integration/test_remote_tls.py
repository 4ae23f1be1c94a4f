"""The remote API: freightd on tcp://127.0.0.1:PORT with --tlsverify, the freight
CLI over it (flags, DOCKER_* environment, a named context), refusals (no client
certificate, a certificate from another CA, plain TCP), the unix socket's mode
and group, and ssh:// through `system dial-stdio` with a fake ssh on PATH.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tlscerts import CertSet, free_port, make_certs, start_tls_daemon


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "FREIGHT_"))}
    return subprocess.run(
        [sys.executable, "-m", "freight.cli.main", *args],
        env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_daemon(daemon_tools, run_id: str, certs: CertSet) -> Iterator[tuple[object, str]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (freightd)")
    tag = os.urandom(3).hex()
    root = Path(f"/tmp/freight-test-{run_id}-tls{tag}")
    root.mkdir()
    cgroup_parent = f"freight-test-{run_id}-tls{tag}"
    d = None
    try:
        d, tcp = start_tls_daemon(daemon_tools, root, cgroup_parent, certs, "--group", "0")
        result = d.cli("image", "bootstrap", "busybox", timeout=120)
        assert result.returncode == 0, result.stderr.decode() + d.log_tail()
        yield d, tcp
    finally:
        if d is not None:
            ids = d.cli("ps", "-aq").stdout.decode().split()
            if ids:
                d.cli("rm", "-f", *ids)
            daemon_tools.stop(d)
        daemon_tools.cleanup(root, cgroup_parent)


def test_cli_over_tls_with_flags(tls_daemon, certs: CertSet):
    d, tcp = tls_daemon
    flags = ["--tlsverify", *certs.client_flags(), "-H", tcp]
    result = _cli(*flags, "run", "--rm", "busybox", "echo", "over tls")
    assert result.returncode == 0, result.stderr + d.log_tail()
    assert result.stdout == "over tls\n"
    ps = _cli(*flags, "ps", "-a", "--format", "{{.Image}}")
    assert ps.returncode == 0, ps.stderr


def test_cli_over_tls_with_docker_environment(tls_daemon, certs: CertSet):
    _, tcp = tls_daemon
    env = {"DOCKER_HOST": tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs.client_dir)}
    result = _cli("version", "--format", "{{.Server.ApiVersion}}", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.45"


def test_attach_streams_over_tls(tls_daemon, certs: CertSet):
    _, tcp = tls_daemon
    flags = ["--tlsverify", *certs.client_flags(), "-H", tcp]
    result = _cli(*flags, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_no_client_certificate_is_refused(tls_daemon, certs: CertSet, tmp_path: Path):
    _, tcp = tls_daemon
    ca_only = ["--tlsverify", "--tlscacert", str(certs.ca), "-H", tcp]
    env = {"DOCKER_CERT_PATH": str(tmp_path)}  # no cert.pem/key.pem to fall back on
    result = _cli(*ca_only, "ps", env=env)
    assert result.returncode == 1
    assert "tls" in result.stderr and "certificate" in result.stderr, result.stderr


def test_certificate_from_another_ca_is_refused(tls_daemon, certs: CertSet):
    _, tcp = tls_daemon
    result = _cli("--tlsverify", *certs.client_flags(certs.rogue_dir), "-H", tcp, "ps")
    assert result.returncode == 1
    assert "tls" in result.stderr, result.stderr


def test_plain_http_client_gets_no_api(tls_daemon):
    _, tcp = tls_daemon
    result = _cli("-H", tcp, "ps")
    assert result.returncode == 1
    assert "CONTAINER ID" not in result.stdout


def test_server_is_verified_by_the_client(tls_daemon, certs: CertSet):
    """A client that trusts another CA refuses the daemon's certificate."""
    _, tcp = tls_daemon
    rogue = certs.rogue_dir
    flags = ["--tlsverify", "--tlscacert", str(certs.root / "rogue-ca.pem")]
    (certs.root / "rogue-ca.pem").write_bytes((rogue / "cert.pem").read_bytes())
    result = _cli(*flags, "--tlscert", str(rogue / "cert.pem"), "--tlskey", str(rogue / "key.pem"), "-H", tcp, "ps")  # fmt: skip
    assert result.returncode == 1
    assert "tls:" in result.stderr and "certificate" in result.stderr, result.stderr


def test_unix_socket_is_0660_with_the_group(tls_daemon):
    d, _ = tls_daemon
    st = os.stat(d.host.removeprefix("unix://"))
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == 0


def test_context_over_tls(tls_daemon, certs: CertSet, tmp_path: Path):
    _, tcp = tls_daemon
    env = {"DOCKER_CONFIG": str(tmp_path)}
    c = certs.client_dir
    spec = f"host={tcp},ca={c / 'ca.pem'},cert={c / 'cert.pem'},key={c / 'key.pem'}"
    created = _cli("context", "create", "remote", "--docker", spec, env=env)
    assert created.returncode == 0, created.stderr
    by_flag = _cli("--context", "remote", "run", "--rm", "busybox", "echo", "ctx", env=env)
    assert (by_flag.returncode, by_flag.stdout) == (0, "ctx\n"), by_flag.stderr
    assert _cli("context", "use", "remote", env=env).returncode == 0
    current = _cli("ps", "-q", env=env)
    assert current.returncode == 0, current.stderr


def test_ssh_host_through_dial_stdio(tls_daemon, tmp_path: Path):
    """A fake ssh runs the remote command locally: the CLI speaks HTTP over its stdio."""
    d, _ = tls_daemon
    fake = tmp_path / "bin" / "ssh"
    fake.parent.mkdir()
    log = tmp_path / "ssh-args"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        "while [ $# -gt 0 ]; do\n"
        '  if [ "$1" = "--" ]; then shift 2; break; fi\n'
        "  shift\n"
        "done\n"
        'exec "$@"\n'
    )
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}", "FREIGHT_HOST": d.host}
    result = _cli("-H", "ssh://me@box:2222", "run", "--rm", "busybox", "echo", "via ssh", env=env)
    assert (result.returncode, result.stdout) == (0, "via ssh\n"), result.stderr + d.log_tail()
    stdin = subprocess.run(
        [sys.executable, "-m", "freight.cli.main", "-H", "ssh://me@box", "run", "--rm", "-i", "busybox", "wc", "-c"],
        env={**os.environ, **env}, input="12345", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (stdin.returncode, stdin.stdout.strip()) == (0, "5"), stdin.stderr
    assert "-l me -p 2222 -- box freight system dial-stdio" in log.read_text()


def test_plain_tcp_refuses_to_start(tmp_path: Path):
    host = f"tcp://127.0.0.1:{free_port()}"
    args = [sys.executable, "-m", "freight.daemon.main", "-H", host,
            "--data-root", str(tmp_path / "data"), "--exec-root", str(tmp_path / "run")]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"refusing to serve the API on {host} without TLS" in result.stderr
    assert "--tls=false" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was started


def test_bad_certificate_files_refuse_to_start(tmp_path: Path, certs: CertSet):
    host = f"tcp://127.0.0.1:{free_port()}"
    args = [sys.executable, "-m", "freight.daemon.main", "-H", host, "--tlsverify",
            "--tlscacert", str(certs.ca), "--tlscert", str(tmp_path / "missing.pem"),
            "--tlskey", str(certs.server_key), "--data-root", str(tmp_path / "data")]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"could not load the TLS certificate {tmp_path / 'missing.pem'}" in result.stderr


def test_plain_tcp_when_forced(daemon_tools, run_id: str):
    """--tls=false is the explicit opt-out: the daemon serves plain HTTP on loopback."""
    if os.geteuid() != 0:
        pytest.skip("needs root (freightd)")
    tag = os.urandom(3).hex()
    root = Path(f"/tmp/freight-test-{run_id}-plain{tag}")
    root.mkdir()
    cgroup_parent = f"freight-test-{run_id}-plain{tag}"
    tcp = f"tcp://127.0.0.1:{free_port()}"
    sock = root / "freight.sock"
    args = [
        sys.executable, "-m", "freight.daemon.main", "-H", f"unix://{sock}", "-H", tcp,
        "--tls=false", "--data-root", str(root / "data"), "--exec-root", str(root / "run"),
        "--cgroup-parent", cgroup_parent, *daemon_tools.network_flags(cgroup_parent),
    ]  # fmt: skip
    log = root / "freightd.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)
    d = daemon_tools.Freightd(root, f"unix://{sock}", proc, cgroup_parent, log)
    try:
        daemon_tools.wait_for_ping(d)
        result = _cli("-H", tcp, "version", "--format", "{{.Server.ApiVersion}}")
        assert (result.returncode, result.stdout.strip()) == (0, "1.45"), result.stderr
    finally:
        daemon_tools.stop(d)
        daemon_tools.cleanup(root, cgroup_parent)
