"""End to end: freight-shell logs two real host users into containers of their own.

Two users are made with ``useradd`` (homes under the run's temp root) and
removed afterwards. freight-shell runs as root with ``--user NAME`` (the
daemon socket is root-only; the non-root set-ups are in docs/freight-shell.md)
against the session daemon, from a config file written here.

The tests that run a shell need exec in the daemon. While the daemon answers
404 "page not found" for /exec (detected once), they skip; everything up to
the exec (create, start, reuse, refusals) is checked through ``--prepare``.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import freight
from freight.client.http import ApiError, EngineClient

SRC = str(Path(freight.__file__).resolve().parents[1])


class ShellUser:
    def __init__(self, name: str, home: Path) -> None:
        import pwd

        entry = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, entry.pw_uid, entry.pw_gid, home
        self.container = f"shell-{name}"


@pytest.fixture(scope="module")
def users(freightd, run_id: str) -> Iterator[tuple[ShellUser, ShellUser]]:
    made: list[ShellUser] = []
    try:
        for tag in ("a", "b"):
            name = f"fsh{tag}{run_id}"
            home = freightd.root / "home" / name
            home.parent.mkdir(exist_ok=True)
            subprocess.run(
                ["useradd", "--create-home", "--home-dir", str(home), "--user-group",
                 "--shell", "/bin/false", name],
                check=True, capture_output=True,
            )  # fmt: skip
            made.append(ShellUser(name, home))
        yield made[0], made[1]
    finally:
        if made:
            freightd.docker("rm", "-f", *(u.container for u in made))
        for u in made:
            subprocess.run(["userdel", u.name], check=False, capture_output=True)


@pytest.fixture(scope="module")
def config(freightd) -> Path:
    path = freightd.root / "shell.toml"
    path.write_text(
        f'image = "busybox"\nhost = "{freightd.host}"\n'
        '[limits]\nmemory = "128m"\ncpus = 0.5\npids = 64\n'
    )
    return path


@pytest.fixture(scope="module")
def exec_available(freightd) -> bool:
    """Whether the daemon has the exec endpoints (asked once)."""
    try:
        EngineClient(freightd.host).post_json("/containers/freight-shell-probe/exec", {})
    except ApiError as exc:
        return not (exc.status == 404 and "page not found" in exc.message)
    return True


@pytest.fixture
def needs_exec(exec_available: bool) -> None:
    if not exec_available:
        pytest.skip("the daemon has no exec yet (/containers/{id}/exec answers 404)")


def shell(
    config: Path, user: ShellUser | str, *args: str, input: bytes | None = b"", timeout=60
) -> subprocess.CompletedProcess:
    """Log ``user`` in through freight-shell (as root, with --user)."""
    name = user if isinstance(user, str) else user.name
    env = {**os.environ, "FREIGHT_SHELL_CONFIG": str(config)}
    env.pop("SUDO_UID", None)
    return subprocess.run(
        [sys.executable, "-m", "freight.shell.main", "--user", name, *args],
        env=env, input=input, capture_output=True, timeout=timeout,
    )  # fmt: skip


def prepare(config: Path, user: ShellUser) -> dict:
    result = shell(config, user, "--prepare")
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def inspect(freightd, name: str) -> dict:
    return EngineClient(freightd.host).get_json(f"/containers/{name}/json")


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


# -- up to the exec: create, start, reuse -------------------------------------


def test_first_login_creates_the_users_container(freightd, users, config):
    a, _ = users
    first = prepare(config, a)
    assert first["action"] == "create" and first["container"] == a.container
    c = inspect(freightd, a.container)
    assert c["Id"] == first["id"] and c["State"]["Running"]
    assert c["Config"]["User"] == f"{a.uid}:{a.gid}"
    assert c["Config"]["Hostname"] == a.name
    assert c["Config"]["Labels"]["org.freight.shell.user"] == a.name
    hc = c["HostConfig"]
    assert f"{a.home}:{a.home}" in hc["Binds"]
    assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (128 << 20, 500_000_000, 64)
    argv = first["argv"]
    assert argv[argv.index("exec") :] == [
        "exec", "-i", "-u", f"{a.uid}:{a.gid}", "-w", str(a.home),
        "-e", f"HOME={a.home}", "-e", f"USER={a.name}", "-e", f"LOGNAME={a.name}",
        "-e", "SHELL=/bin/sh", a.container, "/bin/sh", "-l",
    ]  # fmt: skip


def test_second_login_reuses_the_running_container(users, config):
    a, _ = users
    first = prepare(config, a)
    again = prepare(config, a)
    assert again["action"] == "reuse" and again["id"] == first["id"]


def test_a_stopped_container_is_started_not_recreated(freightd, users, config):
    a, _ = users
    cid = prepare(config, a)["id"]
    ok(freightd.cli("stop", "-t", "5", a.container))
    assert not inspect(freightd, a.container)["State"]["Running"]
    started = prepare(config, a)
    assert started["action"] == "start" and started["id"] == cid
    assert inspect(freightd, a.container)["State"]["Running"]


def test_users_not_allowed_are_refused(freightd, users, tmp_path):
    a, b = users
    path = tmp_path / "only-b.toml"
    path.write_text(f'host = "{freightd.host}"\nallowed_users = ["{b.name}"]\n')
    result = shell(path, a, "-c", "true")
    assert result.returncode == 1
    assert result.stderr.decode() == (
        f"freight-shell: {a.name} may not log in here (not in allowed_users)\n"
    )


def as_user(config: Path, user: ShellUser, *args: str) -> subprocess.CompletedProcess:
    """Run freight-shell as ``user`` itself (runuser), with an interpreter it may run."""
    python = user_python(user)
    env = {**os.environ, "FREIGHT_SHELL_CONFIG": str(config), "PYTHONPATH": SRC}
    return subprocess.run(
        ["runuser", "-u", user.name, "--", python, "-m", "freight.shell.main", *args],
        env=env, capture_output=True, timeout=60,
    )  # fmt: skip


def user_python(user: ShellUser) -> str:
    """Our interpreter may live under root's 0700 home: else try the system python3."""
    for python in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(
            ["runuser", "-u", user.name, "--", python, "-c", "import freight.shell.main"],
            env={**os.environ, "PYTHONPATH": SRC}, capture_output=True,
        )  # fmt: skip
        if probe.returncode == 0:
            return python
    pytest.skip(f"no Python that {user.name} may run imports freight.shell")


def test_user_option_is_for_root_only(users, config):
    a, b = users
    result = as_user(config, a, "--user", b.name, "-c", "true")
    assert result.returncode == 1
    assert result.stderr.decode() == "freight-shell: --user is for root only\n"


def test_the_socket_is_not_reachable_by_a_plain_user(users, config):
    a, _ = users
    result = as_user(config, a, "-c", "true")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.startswith("freight-shell: cannot reach the freight daemon") or (
        "Cannot connect" in err
    ), err


# -- sessions (need exec in the daemon) ------------------------------------------


def test_the_shell_runs_as_the_user_on_their_own_host(needs_exec, users, config):
    a, _ = users
    out = ok(shell(config, a, "-c", "id -u; id -g; hostname; pwd; echo $HOME $USER"))
    assert out.split("\n")[:5] == [
        str(a.uid), str(a.gid), a.name, str(a.home), f"{a.home} {a.name}"
    ]  # fmt: skip


def test_each_user_sees_only_their_own_processes_and_network(needs_exec, users, config):
    a, b = users
    # A long-running process in B's container, from one of B's logins...
    marker = subprocess.Popen(
        [sys.executable, "-m", "freight.shell.main", "--user", b.name, "-c", "sleep 4242"],
        env={**os.environ, "FREIGHT_SHELL_CONFIG": str(config)},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_for(lambda: "sleep 4242" in ok(shell(config, b, "-c", "ps")), "B's marker")
        # ...is seen by B's next login (same container) and not by A.
        a_ps = ok(shell(config, a, "-c", "ps"))
        assert "4242" not in a_ps
        assert _pid1_is_keepalive(a_ps), a_ps
        ns = "readlink /proc/self/ns/pid; readlink /proc/self/ns/net"  # busybox: one each
        a_ns = ok(shell(config, a, "-c", ns)).split()
        b_ns = ok(shell(config, b, "-c", ns)).split()
        host_ns = [os.readlink(f"/proc/self/ns/{k}") for k in ("pid", "net")]
        assert len(a_ns) == 2 and a_ns[0] != b_ns[0] and a_ns[1] != b_ns[1]
        assert not set(a_ns) & set(host_ns) and not set(b_ns) & set(host_ns)
    finally:
        marker.kill()
        marker.wait()


def test_files_written_to_home_belong_to_the_user_on_the_host(needs_exec, users, config):
    a, _ = users
    ok(shell(config, a, "-c", 'echo "hello from $(hostname)" > "$HOME/from-container"'))
    path = a.home / "from-container"
    assert path.read_text() == f"hello from {a.name}\n"
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (a.uid, a.gid)


def test_commands_from_stdin_without_a_terminal(needs_exec, users, config):
    _, b = users
    result = shell(config, b, input=b"id -u\nexit 3\n")
    assert result.returncode == 3, result.stderr.decode()
    assert result.stdout.decode().split() == [str(b.uid)]


def test_exit_status_is_the_commands(needs_exec, users, config):
    a, _ = users
    assert shell(config, a, "-c", "exit 7").returncode == 7


def test_interactive_login_on_a_terminal(needs_exec, users, config):
    a, _ = users
    pid, fd = pty.fork()
    if pid == 0:  # the child: freight-shell with the pty as its terminal
        os.environ["FREIGHT_SHELL_CONFIG"] = str(config)
        os.environ["TERM"] = "xterm"
        os.execv(sys.executable, [sys.executable, "-m", "freight.shell.main", "--user", a.name])
    try:
        os.write(fd, b"echo tty=$(tty) term=$TERM uid=$(id -u); exit\n")
        output = _read_until_exit(fd, timeout=30)
    finally:
        _, status = os.waitpid(pid, 0)
    assert f"uid={a.uid}" in output and "term=xterm" in output, output
    assert "tty=/dev/pts/" in output, output
    assert os.waitstatus_to_exitcode(status) == 0


def _pid1_is_keepalive(ps: str) -> bool:
    return any(line.split()[:1] == ["1"] and "trap" in line for line in ps.splitlines())


def _wait_for(check, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _read_until_exit(fd: int, timeout: float) -> str:
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")
