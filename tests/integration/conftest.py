"""Integration fixtures: a real freightd on its own data root, socket and cgroup parent.

Everything a test run creates lives under one temp directory and one cgroup
parent, and is removed at the end: containers, mounts, cgroups, the daemon.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CGROUP_ROOTS = [Path("/sys/fs/cgroup")] + [
    p for p in Path("/sys/fs/cgroup").iterdir() if p.is_dir() and not p.is_symlink()
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath) or "tests/compat" in str(item.fspath):
            item.add_marker(pytest.mark.root)


@dataclass
class Freightd:
    root: Path
    host: str
    proc: subprocess.Popen
    cgroup_parent: str
    log: Path

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "run"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "FREIGHT_HOST": self.host, "DOCKER_HOST": self.host}

    def cli(
        self, *args: str, input: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """Run the freight CLI against this daemon."""
        return subprocess.run(
            [sys.executable, "-m", "freight.cli.main", *args],
            env=self.env, capture_output=True, timeout=timeout, **_stdin(input),
        )  # fmt: skip

    def docker(
        self, *args: str, input: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """Run the real docker CLI against this daemon."""
        return subprocess.run(
            ["docker", "-H", self.host, *args],
            env=self.env, capture_output=True, timeout=timeout, **_stdin(input),
        )  # fmt: skip

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def _stdin(data: bytes | None) -> dict:
    """Feed `data`, or /dev/null: a child must never read the test runner's stdin."""
    return {"input": data} if data is not None else {"stdin": subprocess.DEVNULL}


def start_daemon(root: Path, cgroup_parent: str, *extra: str) -> Freightd:
    """A freightd on `root`; `extra`: more flags (e.g. --live-restore)."""
    sock = root / "freight.sock"
    log = root / "freightd.log"
    args = [
        sys.executable, "-m", "freight.daemon.main", "-H", f"unix://{sock}",
        "--data-root", str(root / "data"), "--exec-root", str(root / "run"),
        "--cgroup-parent", cgroup_parent, "--log-level", "debug",
        *network_flags(cgroup_parent), *extra,
    ]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)
    d = Freightd(root, f"unix://{sock}", proc, cgroup_parent, log)
    try:
        wait_for_ping(d)
    except BaseException:
        stop_daemon(d)  # a daemon that never answered must not outlive the test
        raise
    return d


def network_flags(cgroup_parent: str) -> list[str]:
    """A bridge, subnet, pool and firewall table of this run's own, so test daemons
    running at the same time (and a dockerd) never share one."""
    h = int(hashlib.sha256(cgroup_parent.encode()).hexdigest()[:8], 16)
    bridge = "fr" + hashlib.sha256(cgroup_parent.encode()).hexdigest()[:8]
    bip = f"10.{250 + h % 5}.{(h >> 8) % 256}.1/24"
    pool = f"base=10.{100 + (h >> 16) % 100}.0.0/16,size=24"
    # --dns on loopback: a name no container has is never forwarded off this machine.
    return ["--bridge", bridge, "--bip", bip, "--default-address-pool", pool, "--dns", "127.0.0.1"]


def remove_network_leftovers(cgroup_parent: str) -> None:
    """The bridge and firewall table of a daemon that could not clean up itself."""
    bridge = network_flags(cgroup_parent)[1]
    subprocess.run(["ip", "link", "del", bridge], capture_output=True, stdin=subprocess.DEVNULL)
    subprocess.run(
        ["nft", "delete", "table", "inet", f"freight-{bridge}"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )


def wait_for_ping(d: Freightd, timeout: float = 15) -> None:
    import socket

    deadline = time.monotonic() + timeout
    path = d.host.removeprefix("unix://")
    while time.monotonic() < deadline:
        if d.proc.poll() is not None:
            raise RuntimeError(f"freightd exited: {d.log_tail()}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                if b"200 OK" in s.recv(100):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"freightd did not answer /_ping: {d.log_tail()}")


def stop_daemon(d: Freightd, sig: int = signal.SIGTERM) -> None:
    if d.proc.poll() is None:
        d.proc.send_signal(sig)
        try:
            d.proc.wait(15)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()


def remove_all_containers(d: Freightd) -> None:
    ids = d.docker("ps", "-aq").stdout.decode().split()
    if ids:
        d.docker("rm", "-f", *ids, timeout=60)


def cleanup_leftovers(root: Path, cgroup_parent: str) -> None:
    """Kill stray processes of this run, unmount, remove cgroups and files."""
    for cg_root in CGROUP_ROOTS:
        parent = cg_root / cgroup_parent
        if not parent.is_dir():
            continue
        for child in sorted(parent.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if child.is_dir():
                _kill_cgroup(child)
                _rmdir(child)
        _rmdir(parent)
    _stop_forkserver(root / "run" / "shim-forkserver.pid")  # a daemon that died leaves it
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(str(root))), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False)
    shutil.rmtree(root, ignore_errors=True)
    remove_network_leftovers(cgroup_parent)


def _stop_forkserver(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if b"freight.shim.forkserver" in cmdline and str(pid_file.parent).encode() in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _kill_cgroup(path: Path) -> None:
    try:
        pids = (path / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    time.sleep(0.05)


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


@pytest.fixture(scope="session")
def run_id() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def freightd(tmp_path_factory: pytest.TempPathFactory, run_id: str) -> Iterator[Freightd]:
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (namespaces, overlayfs, cgroups)")
    root = Path(f"/tmp/freight-test-{run_id}")
    root.mkdir(parents=True)
    cgroup_parent = f"freight-test-{run_id}"
    try:
        d = start_daemon(root, cgroup_parent)
    except BaseException:
        cleanup_leftovers(root, cgroup_parent)
        raise
    try:
        result = d.cli("image", "bootstrap", "busybox", timeout=120)
        assert result.returncode == 0, result.stderr.decode() + d.log_tail()
        yield d
    finally:
        try:
            remove_all_containers(d)
        finally:
            stop_daemon(d)
            cleanup_leftovers(root, cgroup_parent)


class DaemonTools:
    """This module's daemon helpers, for tests that need a daemon of their own.

    Tests take them from the `daemon_tools` fixture rather than `from conftest
    import ...`: with several rootless conftests (tests/compat has one too) the
    module named "conftest" in sys.modules is whichever pytest loaded last.
    """

    start = staticmethod(start_daemon)
    stop = staticmethod(stop_daemon)
    cleanup = staticmethod(cleanup_leftovers)
    wait_for_ping = staticmethod(wait_for_ping)
    network_flags = staticmethod(network_flags)
    Freightd = Freightd


@pytest.fixture(scope="session")
def daemon_tools() -> DaemonTools:
    return DaemonTools()


@pytest.fixture
def private_root(run_id: str) -> Iterator[tuple[Path, str]]:
    """A root directory and cgroup parent for a daemon of this test's own."""
    tag = os.urandom(3).hex()
    root = Path(f"/tmp/freight-test-{run_id}-{tag}")
    root.mkdir()
    cgroup_parent = f"freight-test-{run_id}-{tag}"
    try:
        yield root, cgroup_parent
    finally:
        DaemonTools.cleanup(root, cgroup_parent)


@pytest.fixture
def own_daemon(private_root: tuple[Path, str]) -> Iterator:
    d = DaemonTools.start(*private_root)
    try:
        result = d.cli("image", "bootstrap", "busybox", timeout=120)
        assert result.returncode == 0, result.stderr.decode() + d.log_tail()
        yield d
    finally:
        if d.proc.poll() is None:
            ids = d.docker("ps", "-aq").stdout.decode().split()
            if ids:
                d.docker("rm", "-f", *ids)
        DaemonTools.stop(d)
