"""Restart policies: docker's HostConfig.RestartPolicy, its rules, and the supervisor that applies them.

    task exits ──► RestartSupervisor.exited(c, status)
                     │ policy "no", a user's stop/kill, daemon shutting down ──► exited
                     └ the policy says so: RestartCount+1, state "restarting"
                           │ wait the back-off (a stop/kill/rm cancels it ──► exited)
                           └──► ContainerService.restart_task(c) ──► running
                                (a start that fails ──► exited, no retry: as dockerd)

Policies (`RestartPolicy`): `no`; `always` (any exit); `on-failure[:N]` (a
non-zero exit, at most N restarts, 0 = no limit); `unless-stopped` (any exit,
unless the user stopped the container). A user's `stop`/`kill` cancels
restarts until the next explicit `start`, which also resets RestartCount.

Back-off (`Backoff`, dockerd's numbers): 100 ms before the first restart,
doubled for each next one up to 1 minute; a run that lasted 10 s or more
starts over at 100 ms.

At daemon start (`resume_at_start`, called once the daemon has restored its
containers and networks): `always` containers start again, even after a
user's stop; `unless-stopped` ones unless the user stopped them;
`on-failure` ones whose last exit was non-zero with retries left and no
user stop. Restarts scheduled while restoring (a task that died while the
daemon was away) wait for that moment too.

Shutdown: `begin_shutdown()` first, then stop the containers: exits during a
shutdown neither restart nor count as a user's stop, so `resume_at_start`
brings them back at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from freight.errors import FreightError, InvalidArgument, NotFound
from freight.services.clock import parse_rfc3339

if TYPE_CHECKING:
    from freight.services.containers import ContainerService
    from freight.services.model import Container, HostSettings
    from freight.services.tasks import ExitStatus

log = logging.getLogger(__name__)

POLICY_NAMES = ("no", "always", "on-failure", "unless-stopped")
INITIAL_DELAY_S = 0.1
MAX_DELAY_S = 60.0
RESET_AFTER_S = 10.0  # a run at least this long resets the back-off


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"
    maximum_retry_count: int = 0

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> RestartPolicy:
        """From HostConfig.RestartPolicy ({"Name", "MaximumRetryCount"}); "" is "no"."""
        raw = raw or {}
        if not isinstance(raw, Mapping):
            raise InvalidArgument("invalid HostConfig.RestartPolicy: must be a JSON object")
        name = raw.get("Name") or "no"
        count = raw.get("MaximumRetryCount") or 0
        if not isinstance(name, str) or isinstance(count, bool) or not isinstance(count, int):
            raise InvalidArgument(f"invalid restart policy: {dict(raw)!r}")
        return cls(name, count)

    @property
    def is_none(self) -> bool:
        return self.name == "no"

    def validate(self) -> None:
        """dockerd's checks, word for word."""
        if self.name in ("no", "always", "unless-stopped"):
            if self.maximum_retry_count != 0:
                msg = (
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                )
                if self.maximum_retry_count < 0:
                    msg += " and cannot be negative"
                raise InvalidArgument(msg)
        elif self.name == "on-failure":
            if self.maximum_retry_count < 0:
                raise InvalidArgument(
                    "invalid restart policy: maximum retry count cannot be negative"
                )
        else:
            raise InvalidArgument(
                f"invalid restart policy: unknown policy '{self.name}'; use one of "
                "'no', 'always', 'on-failure', or 'unless-stopped'"
            )

    def to_json(self) -> dict[str, Any]:
        return {"Name": self.name, "MaximumRetryCount": self.maximum_retry_count}


def validate_host(host: HostSettings) -> None:
    """Check the create request's policy (and --rm against it); store it normalised."""
    policy = RestartPolicy.of(host.restart_policy)
    if host.auto_remove and not policy.is_none:
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    policy.validate()
    host.restart_policy = policy.to_json()


def should_restart(
    policy: RestartPolicy, exit_code: int, restart_count: int, manually_stopped: bool
) -> bool:
    """Whether `policy` restarts a container that exited with `exit_code`.

    `always` ignores a user's stop here: the caller cancels restarts after
    one until the next start, and only the daemon start applies this rule to
    a stopped container."""
    if policy.name == "always":
        return True
    if manually_stopped:
        return False
    if policy.name == "unless-stopped":
        return True
    if policy.name == "on-failure":
        limit = policy.maximum_retry_count
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return False


@dataclass
class Backoff:
    """dockerd's restart delay: 100 ms, doubled each time up to 1 minute."""

    delay: float = 0.0

    def next(self, ran_for_s: float) -> float:
        if ran_for_s >= RESET_AFTER_S:
            self.delay = 0.0
        self.delay = INITIAL_DELAY_S if self.delay == 0 else min(self.delay * 2, MAX_DELAY_S)
        return self.delay


def ran_for(started_at: str, finished_at: str) -> float:
    """Seconds between two RFC 3339 times; 0 when either is unset or unreadable."""
    try:
        return max(0.0, parse_rfc3339(finished_at) - parse_rfc3339(started_at))
    except (ValueError, TypeError):
        return 0.0


def has_started_before(c: Container) -> bool:
    return not c.state.started_at.startswith("0001-")


@dataclass
class _Pending:
    task: asyncio.Task[None]
    starting: bool = False  # past the back-off: the start is under way


class RestartSupervisor:
    """Decides at each exit, waits the back-off, restarts; one per ContainerService."""

    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.shutting_down = False
        self._backoff: dict[str, Backoff] = {}
        self._pending: dict[str, _Pending] = {}
        # Stopped by an unhealthy check, to restart whatever the policy says.
        self._forced: set[str] = set()
        self._released = asyncio.Event()
        self._released.set()
        self._resumed = False

    # exits --------------------------------------------------------------------

    def exited(self, c: Container, status: ExitStatus) -> bool:
        """Called as a task's exit is recorded (before the state is saved).

        True: the container restarts after the back-off; the caller records
        it as "restarting". RestartCount is counted now, as dockerd does."""
        forced = c.id in self._forced  # --health-on-failure=restart
        self._forced.discard(c.id)
        if c.host.auto_remove or c.manually_stopped or self.shutting_down:
            return False
        policy = RestartPolicy.of(c.host.restart_policy)
        if not forced and not should_restart(policy, status.exit_code, c.restart_count, False):
            return False
        ran = ran_for(c.state.started_at, status.finished_at)
        delay = self._backoff.setdefault(c.id, Backoff()).next(ran)
        c.restart_count += 1
        log.info("restarting %s in %.1fs (restart %d)", c.id[:12], delay, c.restart_count)
        task = asyncio.get_running_loop().create_task(self._restart_after(c.id, delay))
        self._pending[c.id] = _Pending(task)
        return True

    async def _restart_after(self, cid: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            await self._released.wait()  # restarts found while restoring wait for the start-up
        except asyncio.CancelledError:
            return  # a stop/kill/rm/shutdown: whoever cancelled settles the state
        pending = self._pending.get(cid)
        if pending is not None:
            pending.starting = True
        try:
            c = self.containers.get(cid)
            await self.containers.restart_task(c)
        except NotFound:
            pass
        except Exception:
            log.exception("restarting %s", cid[:12])
        finally:
            self._pending.pop(cid, None)

    def pending_delay(self, cid: str) -> float | None:
        """The last back-off delay chosen for the container (for tests and logs)."""
        b = self._backoff.get(cid)
        return b.delay if b is not None else None

    async def restart_unhealthy(self, c: Container) -> None:
        """--health-on-failure=restart: stop the task (not a user's stop) and let the
        exit restart it after the back-off, counted in RestartCount, whatever the policy."""
        if c.state.status != "running" or self.shutting_down:
            return
        self._forced.add(c.id)
        await self.containers.stop_for_daemon(c)

    # a user's start / stop ------------------------------------------------------

    def started_by_user(self, c: Container) -> None:
        """An explicit start: restarts apply again, counted from zero (dockerd's reset)."""
        c.manually_stopped = False
        c.restart_count = 0
        self._backoff.pop(c.id, None)

    async def cancel(self, c: Container) -> bool:
        """A user's stop/kill/rm of a running or restarting container: no restart
        until the next start. True when nothing is left to signal: it was waiting
        for its restart (now "exited"), or the restart under way failed."""
        if not self.shutting_down:
            c.manually_stopped = True
        pending = self._pending.get(c.id)
        if pending is not None and pending.starting:
            # The start is under way: let it finish, then the caller signals the new task.
            with contextlib.suppress(Exception):
                await asyncio.shield(pending.task)
            return not c.state.running
        if pending is not None:
            pending.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending.task
            self._pending.pop(c.id, None)
        if c.state.status == "restarting":
            self.containers.stopped_restarting(c)
            return True
        return False

    # daemon start / shutdown --------------------------------------------------------

    def hold(self) -> None:
        """While the daemon restores: restarts wait for `resume_at_start`."""
        if not self._resumed:
            self._released.clear()

    async def resume_at_start(self) -> list[str]:
        """Apply restart policies at daemon start (docker's rules, see the module
        docstring) and release restarts held since `hold`. Only the first call
        acts. Returns the ids it started."""
        if self._resumed:
            return []
        self._resumed = True
        self._released.set()
        wanted = [c for c in self.containers.list() if self._start_at_boot(c)]
        results = await asyncio.gather(
            *(self.containers.start(c.id) for c in wanted), return_exceptions=True
        )
        started = []
        for c, result in zip(wanted, results, strict=True):
            if isinstance(result, FreightError | OSError):
                log.warning("restart policy: cannot start %s: %s", c.id[:12], result)
            elif isinstance(result, BaseException):
                log.error("restart policy: starting %s", c.id[:12], exc_info=result)
            else:
                started.append(c.id)
        return started

    def _start_at_boot(self, c: Container) -> bool:
        if c.state.status != "exited" or c.host.auto_remove or not has_started_before(c):
            return False
        if c.id in self._pending:
            return False
        policy = RestartPolicy.of(c.host.restart_policy)
        if policy.is_none:
            return False
        return should_restart(policy, c.state.exit_code, c.restart_count, c.manually_stopped)

    async def begin_shutdown(self) -> None:
        """The daemon stops: no more restarts, and stops from now on are not the user's.
        Back-offs under way are dropped (the containers are "exited"; the next
        daemon start applies their policies again)."""
        self.shutting_down = True
        for cid, pending in list(self._pending.items()):
            if pending.starting:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pending.task)
                continue
            pending.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending.task
            self._pending.pop(cid, None)
            with contextlib.suppress(NotFound):
                c = self.containers.get(cid)
                if c.state.status == "restarting":
                    self.containers.stopped_restarting(c)
