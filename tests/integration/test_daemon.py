"""End to end: freightd itself — live restore after a crash, the data-root lock,
clean shutdown, the config file, and the HTTP surface clients probe first
(/_ping, /version, API version negotiation, swarm endpoints, error bodies).

Tests that kill or stop a daemon start their own (`start_daemon` on a
private root); the session daemon is only read from.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRAP_TERM = 'trap "echo bye; exit 0" TERM; echo ready; while true; do sleep 0.05; done'
NOT_A_SWARM_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def request(d, method: str, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    conn = UnixHTTPConnection(d.host.removeprefix("unix://"))
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def out(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


def poll(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# live restore ------------------------------------------------------------------


def test_container_survives_daemon_crash(own_daemon, private_root, daemon_tools) -> None:
    d = own_daemon
    out(d.docker("run", "-d", "--name", "survivor", "busybox", "sh", "-c", TRAP_TERM))
    poll(lambda: "ready" in d.docker("logs", "survivor").stdout.decode(), what="ready")
    pid = int(out(d.docker("inspect", "-f", "{{.State.Pid}}", "survivor")))
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait(10)
    assert Path(f"/proc/{pid}").exists(), "the container died with the daemon"

    d2 = daemon_tools.start(*private_root)
    try:
        assert out(d2.docker("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "survivor")) == (
            f"running {pid}\n"
        )
        assert out(d2.docker("logs", "survivor")) == "ready\n"
        assert out(d2.cli("stop", "-t", "10", "survivor")) == "survivor\n"
        assert out(d2.docker("inspect", "-f", "{{.State.ExitCode}}", "survivor")) == "0\n"
        assert out(d2.docker("logs", "survivor")) == "ready\nbye\n"
        assert not Path(f"/proc/{pid}").exists()
        assert out(d2.cli("rm", "survivor")) == "survivor\n"
        assert out(d2.docker("ps", "-aq")) == ""
    finally:
        daemon_tools.stop(d2)


def test_container_that_exits_while_daemon_is_down(own_daemon, private_root, daemon_tools) -> None:
    d = own_daemon
    out(d.docker("run", "-d", "--name", "brief", "busybox", "sh", "-c", "read x; exit 3"))
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait(10)
    # The container's stdin is /dev/null: `read` fails at once, so it exits while
    # nobody watches; the restarted daemon must pick up the status the shim saved.
    d2 = daemon_tools.start(*private_root)
    try:
        status = poll(
            lambda: (
                (s := out(d2.docker("inspect", "-f", "{{.State.Status}}", "brief")).strip())
                == "exited"
                and s
            ),
            what="exit noticed",
        )
        assert status == "exited"
        assert out(d2.docker("inspect", "-f", "{{.State.ExitCode}}", "brief")) == "3\n"
        out(d2.docker("rm", "brief"))
    finally:
        daemon_tools.stop(d2)


# the data-root lock, shutdown, config file -----------------------------------------


def _second_daemon(freightd, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "freight.daemon.main", "-H", f"unix://{tmp_path}/second.sock",
         "--data-root", str(freightd.data_root), "--exec-root", str(tmp_path / "run"),
         "--cgroup-parent", freightd.cgroup_parent],
        capture_output=True, timeout=30,
    )  # fmt: skip


def test_second_daemon_on_same_data_root_refuses(freightd, tmp_path: Path) -> None:
    r = _second_daemon(freightd, tmp_path)
    assert r.returncode == 1
    first = r.stderr.decode().splitlines()[0]
    assert first == (
        f"freightd: another freightd (pid {freightd.proc.pid}) is already using data root "
        f"{freightd.data_root}: stop it first (freight daemon stop), or give this one its own "
        "--data-root"
    )
    assert not (tmp_path / "second.sock").exists()
    assert out(freightd.docker("version", "--format", "{{.Server.APIVersion}}")).strip()


def test_second_daemon_refusal_has_no_traceback(freightd, tmp_path: Path) -> None:
    r = _second_daemon(freightd, tmp_path)
    assert "Traceback" not in r.stderr.decode()


def test_config_file_then_sigterm_shuts_down_cleanly(
    private_root, tmp_path: Path, daemon_tools
) -> None:
    root, cgroup_parent = private_root
    sock, pidfile = root / "cfg.sock", root / "custom.pid"
    config = tmp_path / "daemon.json"
    config.write_text(
        json.dumps(
            {
                "hosts": [f"unix://{sock}"],
                "data-root": str(root / "data"),
                "exec-root": str(root / "run"),
                "pidfile": str(pidfile),
                "cgroup-parent": cgroup_parent,
                "log-level": "debug",
            }
        )
    )
    log = root / "freightd.log"
    with open(log, "ab") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "freight.daemon.main", "--config-file", str(config)],
            stdout=f, stderr=f, start_new_session=True,
        )  # fmt: skip
    d = daemon_tools.Freightd(root, f"unix://{sock}", proc, cgroup_parent, log)
    try:
        daemon_tools.wait_for_ping(d)
        assert pidfile.read_text().strip() == str(proc.pid)
        info = json.loads(out(d.docker("info", "--format", "{{json .}}")))
        assert info["DockerRootDir"] == str(root / "data")
        assert (root / "data" / "metadata.db").exists()
        assert "DEBUG" in log.read_text()  # log-level from the file
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert not sock.exists()
        assert not pidfile.exists()
    finally:
        daemon_tools.stop(d)


def test_config_file_conflicting_with_flag(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"data-root": str(tmp_path / "a")}))
    r = subprocess.run(
        [sys.executable, "-m", "freight.daemon.main", "--config-file", str(config),
         "--data-root", str(tmp_path / "b")],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 1
    assert "specified both as a flag and in the configuration file: data-root" in r.stderr.decode()


def test_config_file_unknown_key(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"no-such-key": 1}))
    r = subprocess.run(
        [sys.executable, "-m", "freight.daemon.main", "--config-file", str(config)],
        capture_output=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert "unknown configuration keys: no-such-key" in r.stderr.decode()


# HTTP surface -----------------------------------------------------------------------


def test_ping_get_and_head(freightd) -> None:
    resp, body = request(freightd, "GET", "/_ping")
    assert (resp.status, body) == (200, b"OK")
    assert resp.getheader("Api-Version") == "1.45"
    assert resp.getheader("Ostype") == "linux"
    resp, body = request(freightd, "HEAD", "/_ping")
    assert (resp.status, body) == (200, b"")
    assert resp.getheader("Api-Version") == "1.45"


def test_version_header_and_body(freightd) -> None:
    resp, body = request(freightd, "GET", "/version")
    assert resp.status == 200
    assert resp.getheader("Api-Version") == "1.45"
    doc = json.loads(body)
    assert doc["ApiVersion"] == "1.45" and doc["MinAPIVersion"] == "1.24"
    assert doc["Os"] == "linux"


def test_too_old_api_version(freightd) -> None:
    resp, body = request(freightd, "GET", "/v1.12/version")
    assert resp.status == 400
    assert resp.getheader("Content-Type") == "application/json"
    assert json.loads(body) == {
        "message": "client version 1.12 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version"
    }


def test_error_bodies_are_json(freightd) -> None:
    for method, path, status, message in [
        ("GET", "/v1.45/containers/nope/json", 404, "No such container: nope"),
        ("GET", "/v1.45/images/nope:1/json", 404, "No such image: nope:1"),
        ("DELETE", "/v1.45/containers/nope", 404, "No such container: nope"),
        ("GET", "/v1.45/swarm", 503, NOT_A_SWARM_MANAGER),
    ]:
        resp, body = request(freightd, method, path)
        assert resp.status == status, path
        assert resp.getheader("Content-Type") == "application/json", path
        assert json.loads(body) == {"message": message}, path


@pytest.mark.parametrize("command", [("node", "ls"), ("service", "ls")])
def test_swarm_commands_say_not_a_manager(freightd, command: tuple[str, str]) -> None:
    r = freightd.docker(*command)
    assert r.returncode == 1
    assert r.stderr.decode().strip() == f"Error response from daemon: {NOT_A_SWARM_MANAGER}"
