"""Restart policies: docker's validation words, the restart rules, the back-off, the
supervisor's decisions (with an in-memory container host), and the CLI's --restart."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from freight.cli.lifecycleflags import apply_lifecycle_flags, restart_policy
from freight.cli.session import CliError
from freight.errors import InvalidArgument, NotFound
from freight.services import restarts
from freight.services.model import Container, ContainerConfig, ContainerState, HostSettings
from freight.services.restarts import Backoff, RestartPolicy, RestartSupervisor, should_restart
from freight.services.tasks import ExitStatus

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:00:01Z"
T20 = "2026-01-01T00:00:20Z"


# the policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"Name": "always", "MaximumRetryCount": 2},
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        (
            {"Name": "unless-stopped", "MaximumRetryCount": -1},
            "invalid restart policy: maximum retry count can only be used with 'on-failure' "
            "and cannot be negative",
        ),
        (
            {"Name": "on-failure", "MaximumRetryCount": -2},
            "invalid restart policy: maximum retry count cannot be negative",
        ),
        (
            {"Name": "sometimes"},
            "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', "
            "'on-failure', or 'unless-stopped'",
        ),
    ],
)
def test_invalid_policies_get_dockerd_words(raw: dict, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        RestartPolicy.of(raw).validate()
    assert str(info.value) == message


def test_empty_name_is_no_and_is_normalised() -> None:
    host = HostSettings(restart_policy={"Name": ""})
    restarts.validate_host(host)
    assert host.restart_policy == {"Name": "no", "MaximumRetryCount": 0}
    host = HostSettings(restart_policy={"Name": "on-failure", "MaximumRetryCount": 3})
    restarts.validate_host(host)
    assert host.restart_policy == {"Name": "on-failure", "MaximumRetryCount": 3}


def test_auto_remove_refuses_a_policy_but_not_no() -> None:
    with pytest.raises(InvalidArgument) as info:
        restarts.validate_host(HostSettings(auto_remove=True, restart_policy={"Name": "always"}))
    assert str(info.value) == "can't create 'AutoRemove' container with restart policy"
    restarts.validate_host(HostSettings(auto_remove=True, restart_policy={"Name": "no"}))


def test_a_policy_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        RestartPolicy.of(["always"])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        RestartPolicy.of({"Name": "on-failure", "MaximumRetryCount": "3"})


@pytest.mark.parametrize(
    ("name", "limit", "code", "count", "manual", "expected"),
    [
        ("no", 0, 1, 0, False, False),
        ("always", 0, 0, 50, False, True),
        ("always", 0, 0, 0, True, True),  # only the daemon start sees this case
        ("unless-stopped", 0, 0, 0, False, True),
        ("unless-stopped", 0, 1, 0, True, False),
        ("on-failure", 0, 0, 0, False, False),
        ("on-failure", 0, 2, 99, False, True),  # 0: no limit
        ("on-failure", 2, 1, 1, False, True),
        ("on-failure", 2, 1, 2, False, False),
        ("on-failure", 2, 1, 0, True, False),
    ],
)
def test_should_restart(
    name: str, limit: int, code: int, count: int, manual: bool, expected: bool
) -> None:
    assert should_restart(RestartPolicy(name, limit), code, count, manual) is expected


def test_backoff_doubles_to_a_minute_and_resets_after_ten_seconds() -> None:
    b = Backoff()
    delays = [b.next(0.5) for _ in range(12)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == 60.0
    assert max(delays) == 60.0
    assert b.next(9.9) == 60.0
    assert b.next(10.0) == 0.1
    assert b.next(1.0) == 0.2


def test_ran_for() -> None:
    assert restarts.ran_for(T0, T20) == 20.0
    assert restarts.ran_for("0001-01-01T00:00:00Z", "garbage") == 0.0


# the supervisor -------------------------------------------------------------------


class FakeContainers:
    """The part of ContainerService the supervisor uses, in memory: a start sets
    "running" (or fails), a daemon's stop ends the task as an exit would."""

    def __init__(self) -> None:
        self.items: dict[str, Container] = {}
        self.restarted: list[str] = []
        self.started: list[str] = []
        self.fail_start = False
        self.sup = RestartSupervisor(self)  # type: ignore[arg-type]

    def add(self, cid: str, policy: dict, **state: object) -> Container:
        c = Container(cid, cid, T0, "img", ContainerConfig(), HostSettings(restart_policy=policy))
        c.state = ContainerState(**{"status": "running", "started_at": T0, **state})
        self.items[cid] = c
        return c

    def get(self, cid: str) -> Container:
        if cid not in self.items:
            raise NotFound(cid)
        return self.items[cid]

    def list(self) -> list[Container]:
        return list(self.items.values())

    def exit(self, c: Container, code: int, finished: str = T1) -> bool:
        """What _task_exited does with the supervisor's answer."""
        restarting = self.sup.exited(c, ExitStatus(code, finished))
        c.state = replace(
            c.state, status="restarting" if restarting else "exited", pid=0, exit_code=code,
            finished_at=finished,
        )  # fmt: skip
        return restarting

    async def restart_task(self, c: Container) -> None:
        if c.state.status != "restarting":
            return
        if self.fail_start:
            self.stopped_restarting(c)
            return
        self.restarted.append(c.id)
        c.state = replace(c.state, status="running", pid=42, started_at=T0)

    def stopped_restarting(self, c: Container) -> None:
        c.state = replace(c.state, status="exited", pid=0)

    async def start(self, cid: str) -> bool:
        c = self.get(cid)
        self.sup.started_by_user(c)
        self.started.append(cid)
        c.state = replace(c.state, status="running", pid=7)
        return True

    async def stop_for_daemon(self, c: Container) -> None:
        self.exit(c, 143)


async def _settle(seconds: float = 0.25) -> None:
    """Long enough for a back-off of `seconds` minus a little, and the restart after it."""
    await asyncio.sleep(seconds)


def test_on_failure_counts_and_gives_up_after_the_limit() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        c = host.add("a", {"Name": "on-failure", "MaximumRetryCount": 2})
        assert host.exit(c, 1) is True
        assert c.restart_count == 1 and c.state.status == "restarting"
        await _settle()
        assert host.restarted == ["a"] and c.state.status == "running"
        assert host.exit(c, 1) is True
        assert host.sup.pending_delay("a") == 0.2  # doubled
        await _settle()
        assert host.exit(c, 1) is False  # two restarts done
        assert c.restart_count == 2 and c.state.status == "exited"
        assert host.restarted == ["a", "a"]

    asyncio.run(scenario())


def test_on_failure_ignores_a_clean_exit_and_no_never_restarts() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        assert host.exit(host.add("a", {"Name": "on-failure"}), 0) is False
        assert host.exit(host.add("b", {"Name": "no"}), 1) is False
        assert host.exit(host.add("c", {"Name": "always"}), 0) is True

    asyncio.run(scenario())


def test_a_long_run_resets_the_backoff() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        c = host.add("a", {"Name": "always"})
        for delay in (0.1, 0.2, 0.4):
            host.exit(c, 0)
            await _settle(delay + 0.1)
        assert host.sup.pending_delay("a") == 0.4
        host.exit(c, 0, finished=T20)  # ran 20 s
        assert host.sup.pending_delay("a") == 0.1

    asyncio.run(scenario())


def test_a_stop_during_the_backoff_cancels_the_restart() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        c = host.add("a", {"Name": "always"})
        host.exit(c, 1)
        assert await host.sup.cancel(c) is True  # nothing left to signal
        assert c.state.status == "exited" and c.manually_stopped
        await _settle()
        assert host.restarted == []
        assert host.exit(c, 1) is False  # and no later exit restarts it either
        await host.start("a")  # until the next explicit start
        assert not c.manually_stopped and c.restart_count == 0
        assert host.exit(c, 1) is True

    asyncio.run(scenario())


def test_cancel_of_a_running_container_leaves_the_signal_to_the_caller() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        c = host.add("a", {"Name": "unless-stopped"})
        assert await host.sup.cancel(c) is False
        assert c.manually_stopped
        assert host.exit(c, 137) is False

    asyncio.run(scenario())


def test_a_failed_restart_leaves_it_exited() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        host.fail_start = True
        c = host.add("a", {"Name": "always"})
        host.exit(c, 1)
        await _settle()
        assert c.state.status == "exited"

    asyncio.run(scenario())


def test_resume_at_start_applies_dockers_rules() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        exited = {"status": "exited"}
        host.add("always-stopped", {"Name": "always"}, **exited).manually_stopped = True
        host.add("unless-stopped-by-user", {"Name": "unless-stopped"}, **exited)
        host.items["unless-stopped-by-user"].manually_stopped = True
        host.add("unless-stopped-by-daemon", {"Name": "unless-stopped"}, **exited)
        host.add("on-failure-1", {"Name": "on-failure", "MaximumRetryCount": 3}, exit_code=1,
                 **exited)  # fmt: skip
        host.add("on-failure-0", {"Name": "on-failure"}, exit_code=0, **exited)
        spent = host.add("on-failure-spent", {"Name": "on-failure", "MaximumRetryCount": 1},
                         exit_code=1, **exited)  # fmt: skip
        spent.restart_count = 1
        host.add("no", {"Name": "no"}, **exited)
        host.add("never-started", {"Name": "always"}, status="created",
                 started_at="0001-01-01T00:00:00Z")  # fmt: skip
        host.add("running", {"Name": "always"})
        started = await host.sup.resume_at_start()
        assert sorted(started) == ["always-stopped", "on-failure-1", "unless-stopped-by-daemon"]
        assert await host.sup.resume_at_start() == []  # only the first call acts

    asyncio.run(scenario())


def test_restarts_found_while_restoring_wait_for_the_start_up() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        host.sup.hold()
        c = host.add("a", {"Name": "always"})
        host.exit(c, 1)
        await _settle()
        assert host.restarted == []
        await host.sup.resume_at_start()
        await _settle()
        assert host.restarted == ["a"]

    asyncio.run(scenario())


def test_shutdown_drops_backoffs_and_is_no_users_stop() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        waiting = host.add("a", {"Name": "always"})
        host.exit(waiting, 1)
        running = host.add("b", {"Name": "unless-stopped"})
        await host.sup.begin_shutdown()
        assert waiting.state.status == "exited"
        assert await host.sup.cancel(running) is False  # the daemon's stop, not the user's
        assert not running.manually_stopped
        assert host.exit(running, 143) is False
        await _settle()
        assert host.restarted == []

    asyncio.run(scenario())


def test_unhealthy_restart_is_forced_and_counted() -> None:
    async def scenario() -> None:
        host = FakeContainers()
        c = host.add("a", {"Name": "no"})
        await host.sup.restart_unhealthy(c)
        assert c.state.status == "restarting" and c.restart_count == 1
        await _settle()
        assert host.restarted == ["a"]
        assert host.exit(c, 0) is False  # the policy is still "no" for ordinary exits

    asyncio.run(scenario())


# the CLI ---------------------------------------------------------------------------


def test_cli_restart_flag_parses_like_docker() -> None:
    assert restart_policy("") == {"Name": "no", "MaximumRetryCount": 0}
    assert restart_policy("on-failure:5") == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert restart_policy("bogus") == {"Name": "bogus", "MaximumRetryCount": 0}  # daemon's call
    with pytest.raises(CliError, match="^invalid restart policy format: no policy provided"):
        restart_policy(":3")
    with pytest.raises(CliError) as info:
        restart_policy("on-failure:x")
    assert info.value.message == (
        "invalid restart policy format: maximum retry count must be an integer"
    )


def test_cli_refuses_rm_with_a_restart_policy() -> None:
    config: dict = {"HostConfig": {}}
    with pytest.raises(CliError) as info:
        apply_lifecycle_flags({"rm": True, "restart": "always"}, config)
    assert info.value.message == "conflicting options: cannot specify both --restart and --rm"
    apply_lifecycle_flags({"rm": True, "restart": "no"}, config)
    assert config["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
