"""SIGHUP: freightd reads its --config-file again (daemon.json keys) and
applies log level, registry mirrors, insecure registries, max concurrent
downloads, the default log driver/options and live-restore; a bad file keeps
the old settings and the log says why; a `daemon reload` event is published.
Also freightd --log-driver/--log-opt and --seccomp-profile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


def poll(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def info(d) -> dict:
    return json.loads(ok(d.docker("info", "--format", "{{json .}}")))


def catches_sighup(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(
        next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16
    )
    return bool(caught & (1 << (signal.SIGHUP - 1)))


class ConfigDaemon:
    """A freightd whose settings come from a config file we rewrite (no --log-level flag)."""

    def __init__(self, tools, root: Path, cgroup_parent: str, *flags: str) -> None:
        self.config = root / "daemon.json"
        self.tools, self.root, self.cgroup_parent, self.flags = tools, root, cgroup_parent, flags

    def write(self, settings: dict | str) -> None:
        text = settings if isinstance(settings, str) else json.dumps(settings)
        self.config.write_text(text)

    def start(self, hup_while_starting: bool = False):  # noqa: ANN201 - a conftest Freightd
        sock, log = self.root / "freight.sock", self.root / "freightd.log"
        args = [
            sys.executable, "-m", "freight.daemon.main", "-H", f"unix://{sock}",
            "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "run"),
            "--cgroup-parent", self.cgroup_parent, "--config-file", str(self.config),
            *self.tools.network_flags(self.cgroup_parent), *self.flags,
        ]  # fmt: skip
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)
        if hup_while_starting:  # as soon as freightd catches SIGHUP, long before it serves
            poll(lambda: catches_sighup(proc.pid), what="a SIGHUP handler")
            proc.send_signal(signal.SIGHUP)
        self.d = self.tools.Freightd(self.root, f"unix://{sock}", proc, self.cgroup_parent, log)
        self.tools.wait_for_ping(self.d)
        return self.d

    def hup(self) -> None:
        """SIGHUP, and wait until the daemon logged the outcome."""
        before = self.d.log.read_text(errors="replace").count("SIGHUP")
        self.d.proc.send_signal(signal.SIGHUP)
        poll(lambda: self.d.log.read_text(errors="replace").count("SIGHUP") > before, what="hup")


@pytest.fixture
def reloadable(private_root, daemon_tools) -> Iterator[ConfigDaemon]:
    if os.geteuid() != 0:
        pytest.skip("needs root (freightd)")
    cd = ConfigDaemon(daemon_tools, *private_root)
    cd.write({"log-level": "info"})
    d = cd.start()
    try:
        yield cd
    finally:
        ids = cd.d.docker("ps", "-aq").stdout.decode().split()
        if ids:
            cd.d.docker("rm", "-f", *ids)
        daemon_tools.stop(cd.d)
        del d


def test_sighup_applies_the_new_file(reloadable) -> None:
    cd = reloadable
    d = cd.d
    ok(d.docker("version"))
    assert "GET /v1" not in d.log.read_text()  # info level: requests are not logged
    before = info(d)
    assert before["LiveRestoreEnabled"] is False
    assert before["RegistryConfig"]["Mirrors"] == []
    assert before["LoggingDriver"] == "json-file"
    since = str(time.time() - 1)
    cd.write(
        {
            "log-level": "debug",
            "registry-mirrors": ["https://mirror.invalid:5000"],
            "insecure-registries": ["myregistry.invalid:5000", "10.123.0.0/16"],
            "max-concurrent-downloads": 7,
            "live-restore": True,
            "log-driver": "local",
            "log-opts": {"max-size": "5m"},
        }
    )
    cd.hup()
    assert "configuration reloaded" in d.log.read_text()
    after = info(d)
    assert after["LiveRestoreEnabled"] is True
    assert after["LoggingDriver"] == "local"
    registry = after["RegistryConfig"]
    assert registry["Mirrors"] == ["https://mirror.invalid:5000/"]
    assert registry["InsecureRegistryCIDRs"] == ["10.123.0.0/16", "127.0.0.0/8"]
    assert "myregistry.invalid:5000" in registry["IndexConfigs"]
    ok(d.docker("version"))
    assert "GET /v1" in d.log.read_text()  # debug now
    text = ok(d.cli("system", "info"))
    assert " Registry Mirrors:\n  https://mirror.invalid:5000/\n" in text
    assert "  myregistry.invalid:5000\n  10.123.0.0/16\n  127.0.0.0/8\n" in text
    assert text.endswith(" Live Restore Enabled: true\n")
    # New containers get the new default log driver and options.
    ok(d.cli("image", "bootstrap", "busybox", timeout=120))
    ok(d.docker("create", "--name", "logged", "busybox", "true"))
    log_config = json.loads(
        ok(d.docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", "logged"))
    )
    assert log_config == {"Type": "local", "Config": {"max-size": "5m"}}
    # The event, with the settings after the reload.
    events = ok(d.docker("events", "--since", since, "--until", str(time.time()),
                         "--filter", "type=daemon", "--format", "{{json .}}"))  # fmt: skip
    reloads = [json.loads(line) for line in events.splitlines()]
    assert [(e["Type"], e["Action"]) for e in reloads] == [("daemon", "reload")]
    attrs = reloads[0]["Actor"]["Attributes"]
    assert attrs["live-restore"] == "true"
    assert attrs["max-concurrent-downloads"] == "7"
    assert attrs["registry-mirrors"] == "[https://mirror.invalid:5000]"
    assert reloads[0]["Actor"]["ID"] == after["ID"]


def test_sighup_while_starting_does_not_kill_the_daemon(private_root, daemon_tools) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (freightd)")
    cd = ConfigDaemon(daemon_tools, *private_root)
    cd.write({"log-level": "info"})
    d = cd.start(hup_while_starting=True)
    try:
        ok(d.docker("version"))
        assert "SIGHUP while starting: not reloaded" in d.log.read_text()
        cd.hup()  # and the reload works once it serves
        assert "configuration reloaded" in d.log.read_text()
    finally:
        daemon_tools.stop(d)


def test_debug_key_turns_debug_logging_on_and_off(reloadable) -> None:
    cd = reloadable
    d = cd.d
    cd.write({"debug": True, "log-level": "warn"})  # debug wins, as in dockerd
    cd.hup()
    mark = len(d.log.read_text())
    ok(d.docker("version"))
    assert "GET /v1" in d.log.read_text()[mark:]
    cd.write({})
    cd.hup()
    mark = len(d.log.read_text())
    ok(d.docker("version"))
    assert "GET /v1" not in d.log.read_text()[mark:]


def test_bad_files_keep_the_old_settings(reloadable) -> None:
    cd = reloadable
    d = cd.d
    cd.write({"registry-mirrors": ["https://kept.invalid"]})
    cd.hup()
    assert info(d)["RegistryConfig"]["Mirrors"] == ["https://kept.invalid/"]
    for bad, why in [
        ("{not json", "unable to configure the freight daemon with file"),
        ({"registry-mirrors": [], "no-such-key": 1}, "unknown configuration keys: no-such-key"),
        ({"data-root": "/elsewhere"}, "specified both as a flag and in the configuration file"),
        ({"log-level": "chatty"}, "invalid log-level"),
        ({"log-driver": "nonsense"}, "no log driver named 'nonsense'"),
        ({"max-concurrent-downloads": "many"}, "max-concurrent-downloads"),
    ]:
        cd.write(bad)
        cd.hup()
        text = d.log.read_text()
        assert "not reloading the configuration" in text.splitlines()[-1], text[-500:]
        assert why in text.splitlines()[-1]
        assert info(d)["RegistryConfig"]["Mirrors"] == ["https://kept.invalid/"]
    assert d.proc.poll() is None


def test_live_restore_switched_on_by_reload(reloadable) -> None:
    cd = reloadable
    d = cd.d
    ok(d.cli("image", "bootstrap", "busybox", timeout=120))
    ok(d.cli("run", "-d", "--name", "stays", "busybox", "sleep", "600"))
    pid = json.loads(ok(d.cli("inspect", "stays")))[0]["State"]["Pid"]
    cd.write({"live-restore": True})
    cd.hup()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(15) == 0
    assert Path(f"/proc/{pid}").exists(), "live-restore from the reload was not applied"
    d = cd.start()
    assert json.loads(ok(d.cli("inspect", "stays")))[0]["State"]["Pid"] == pid
    ok(d.cli("rm", "-f", "stays"))


# flags: --log-driver/--log-opt, --seccomp-profile -------------------------------------


def test_log_driver_flags_are_the_default(private_root, daemon_tools) -> None:
    d = daemon_tools.start(*private_root, "--log-driver", "json-file", "--log-opt", "max-size=1m",
                           "--log-opt", "max-file=2")  # fmt: skip
    try:
        ok(d.cli("image", "bootstrap", "busybox", timeout=120))
        ok(d.docker("run", "--name", "rot", "busybox", "echo", "hi"))
        got = json.loads(ok(d.docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", "rot")))
        assert got == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
        assert ok(d.docker("logs", "rot")) == "hi\n"
        ok(d.docker("rm", "rot"))
    finally:
        daemon_tools.stop(d)


def test_bad_log_opt_flag_refuses_to_start(private_root, tmp_path: Path) -> None:
    root, cgroup_parent = private_root
    r = subprocess.run(
        [sys.executable, "-m", "freight.daemon.main", "-H", f"unix://{tmp_path}/x.sock",
         "--data-root", str(root / "data"), "--exec-root", str(root / "run"),
         "--cgroup-parent", cgroup_parent, "--log-opt", "max-size=huge"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 1
    assert "max-size" in r.stderr.decode() and "Traceback" not in r.stderr.decode()


def test_daemon_seccomp_profile(private_root, daemon_tools, tmp_path: Path) -> None:
    # Docker's default action allows everything but mkdir, which fails with EPERM.
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
                ],
            }
        )
    )
    d = daemon_tools.start(*private_root, "--seccomp-profile", str(profile))
    try:
        ok(d.cli("image", "bootstrap", "busybox", timeout=120))
        r = d.docker("run", "--rm", "busybox", "mkdir", "/x")
        assert r.returncode != 0 and b"Operation not permitted" in r.stderr
        # A container's own choice wins over the daemon's.
        ok(d.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox",
                    "mkdir", "/x"))  # fmt: skip
        ok(d.docker("run", "--rm", "--security-opt", "seccomp=builtin", "busybox",
                    "mkdir", "/x"))  # fmt: skip
    finally:
        daemon_tools.stop(d)
