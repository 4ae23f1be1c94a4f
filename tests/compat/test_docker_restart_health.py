"""The real docker CLI and docker-py against freightd: restart policies (RestartCount,
RestartPolicy, the errors) and healthchecks (State.Health, ps STATUS, events)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest


@pytest.fixture
def names(freightd) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def new() -> str:
        made.append("rhc-" + secrets.token_hex(4))
        return made[-1]

    yield new
    if made:
        freightd.docker("rm", "-f", *made)


@pytest.fixture(scope="module")
def client(freightd) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=freightd.host, timeout=60)
    yield c
    c.close()


def out(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def until(check: Callable[[], object], timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        time.sleep(0.05)
    return value


def test_docker_on_failure_restart_count(freightd, names) -> None:
    name = names()
    out(
        freightd.docker(
            "run", "-d", "--name", name, "--restart", "on-failure:2", "busybox", "false"
        )
    )

    def settled() -> bool:
        fmt = "{{.State.Status}} {{.RestartCount}}"
        return out(freightd.docker("inspect", "--format", fmt, name)) == "exited 2"

    until(settled)
    policy = out(freightd.docker("inspect", "--format", "{{json .HostConfig.RestartPolicy}}", name))
    assert json.loads(policy) == {"Name": "on-failure", "MaximumRetryCount": 2}
    time.sleep(0.5)
    assert settled()


def test_docker_cli_and_daemon_errors(freightd) -> None:
    r = freightd.docker("run", "--rm", "--restart", "always", "busybox", "true")
    assert r.returncode == 125
    assert "conflicting options: cannot specify both --restart and --rm" in r.stderr.decode()
    r = freightd.docker("run", "-d", "--restart", "sometimes", "busybox", "true")
    assert r.returncode == 125
    assert (
        "Error response from daemon: invalid restart policy: unknown policy 'sometimes'; "
        "use one of 'no', 'always', 'on-failure', or 'unless-stopped'" in r.stderr.decode()
    )
    r = freightd.docker("create", "--restart", "on-failure:-3", "busybox", "true")
    assert "invalid restart policy: maximum retry count cannot be negative" in r.stderr.decode()
    r = freightd.docker("create", "--health-cmd", "true", "--health-interval", "10us", "busybox")
    assert "Interval in Healthcheck cannot be less than 1ms" in r.stderr.decode()


def test_docker_health_status_ps_and_events(freightd, names) -> None:
    name = names()
    since = str(int(time.time()) - 1)
    out(freightd.docker(
        "run", "-d", "--name", name, "--health-cmd", "echo fine", "--health-interval", "200ms",
        "busybox", "sleep", "30",
    ))  # fmt: skip
    fmt = "{{.State.Health.Status}}"
    until(lambda: out(freightd.docker("inspect", "--format", fmt, name)) == "healthy")
    status = out(freightd.docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}"))
    assert status.startswith("Up ") and status.endswith("(healthy)")
    log = json.loads(
        out(freightd.docker("inspect", "--format", "{{json .State.Health.Log}}", name))
    )
    assert log and log[-1]["ExitCode"] == 0 and log[-1]["Output"] == "fine\n"
    events = freightd.docker(
        "events", "--since", since, "--until", str(int(time.time()) + 1),
        "--filter", f"container={name}", "--format", "{{.Action}}",
    )  # fmt: skip
    if events.returncode != 0:
        pytest.skip(f"no events endpoint yet: {events.stderr.decode()}")
    actions = events.stdout.decode().split("\n")
    assert "health_status: healthy" in actions
    assert any(a.startswith("exec_create: /bin/sh -c echo fine") for a in actions)
    assert "exec_die" in actions


def test_docker_py_restart_policy_and_healthcheck(client: docker.DockerClient, names) -> None:
    crash, check = names(), names()
    c = client.containers.run(
        "busybox", "false", name=crash, detach=True,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 1},
    )  # fmt: skip

    def restarted() -> bool:
        c.reload()
        return c.attrs["State"]["Status"] == "exited" and c.attrs["RestartCount"] == 1

    until(restarted)
    h = client.containers.run(
        "busybox", "sleep 30", name=check, detach=True,
        healthcheck={"test": ["CMD", "false"], "interval": 100_000_000, "retries": 2},
    )  # fmt: skip

    def unhealthy() -> bool:
        h.reload()
        return h.attrs["State"]["Health"]["Status"] == "unhealthy"

    until(unhealthy)
    assert h.attrs["State"]["Health"]["FailingStreak"] >= 2
    assert h.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "false"]
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.create("busybox", "true", restart_policy={"Name": "always"},
                                 auto_remove=True)  # fmt: skip
    assert info.value.status_code == 400
    assert "can't create 'AutoRemove' container with restart policy" in str(info.value)
