"""Healthchecks: the config (image HEALTHCHECK and --health-*), the probe loop, and what it acts on.

    start ──► HealthMonitor.started: State.Health "starting", probe loop
                │ every start interval (in the start period, while starting)
                │ or interval: one probe, an exec inside the container
                │   exit 0 ──► healthy, streak 0
                │   else   ──► streak+1 (not in the start period while starting);
                │              streak >= retries ──► unhealthy (--health-on-failure acts)
                └ exit ──► HealthMonitor.stopped: no more probes, "unhealthy" (as dockerd)

A probe runs like `docker exec` (services.execs, an ephemeral exec whose
record and state directory go away once it has run) with its stdout and
stderr captured up to 4096 bytes; one that outlives its timeout is killed
and recorded with exit code -1 and "Health check exceeded timeout (30s)".
State.Health keeps the last 5 results. A change of status is published as
`health_status: <status>` and saved with the container.

Docker's defaults: interval 30 s, timeout 30 s, retries 3, start period 0,
start interval 5 s. Test ["NONE"] disables the image's check; [] (no
--health-cmd) inherits it.

Beyond docker: `on_failure` (`--health-on-failure`, podman's) acts as the
container turns unhealthy: `kill` and `stop` as a user's kill/stop would (no
restart policy after them), `restart` through the restart supervisor, which
counts it in RestartCount.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from freight.errors import ExecError, FreightError, InvalidArgument
from freight.services.clock import now_rfc3339
from freight.services.model import Container, ExecConfig, HealthConfig, HealthResult, HealthState
from freight.shimapi import frames

if TYPE_CHECKING:
    from freight.oci.image import Healthcheck as OciHealthcheck
    from freight.services.containers import ContainerService
    from freight.services.execs import ExecService
    from freight.services.shimio import ShimStdio

log = logging.getLogger(__name__)

SECOND_NS = 1_000_000_000
DEFAULT_INTERVAL_NS = 30 * SECOND_NS
DEFAULT_TIMEOUT_NS = 30 * SECOND_NS
DEFAULT_START_INTERVAL_NS = 5 * SECOND_NS
DEFAULT_RETRIES = 3
MIN_DURATION_NS = 1_000_000  # dockerd's MinimumDuration (1ms)
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096
ON_FAILURE_ACTIONS = ("none", "kill", "restart", "stop")
DEFAULT_SHELL = ["/bin/sh", "-c"]


# config ---------------------------------------------------------------------------


def from_oci(h: OciHealthcheck | None) -> HealthConfig | None:
    """The image's HEALTHCHECK as the services' model."""
    if h is None:
        return None
    return HealthConfig(
        test=list(h.test or []),
        interval=h.interval or 0,
        timeout=h.timeout or 0,
        start_period=h.start_period or 0,
        start_interval=h.start_interval or 0,
        retries=h.retries or 0,
    )


def merge_config(user: HealthConfig | None, image: HealthConfig | None) -> HealthConfig | None:
    """dockerd's merge: the request's fields, each unset one (0, []) from the image."""
    if user is None:
        return image
    if image is None:
        return user
    return replace(
        user,
        test=user.test or image.test,
        interval=user.interval or image.interval,
        timeout=user.timeout or image.timeout,
        start_period=user.start_period or image.start_period,
        start_interval=user.start_interval or image.start_interval,
        retries=user.retries or image.retries,
    )


def validate_config(hc: HealthConfig | None) -> None:
    """dockerd's checks of Config.Healthcheck, with its words."""
    if hc is None:
        return
    minimum = go_duration(MIN_DURATION_NS)
    checks = (
        (hc.interval, "Interval"),
        (hc.timeout, "Timeout"),
        (None, "Retries"),
        (hc.start_period, "StartPeriod"),
        (hc.start_interval, "StartInterval"),
    )
    for value, name in checks:
        if value is None:
            if hc.retries < 0:
                raise InvalidArgument("Retries in Healthcheck cannot be negative")
        elif value != 0 and value < MIN_DURATION_NS:
            raise InvalidArgument(f"{name} in Healthcheck cannot be less than {minimum}")
    if hc.on_failure not in ON_FAILURE_ACTIONS:
        raise InvalidArgument(
            f"invalid health on-failure action '{hc.on_failure}': "
            "use one of 'none', 'kill', 'restart' or 'stop'"
        )


def probe_argv(hc: HealthConfig | None, shell: list[str] | None) -> list[str] | None:
    """The probe's command line, or None when the container has no healthcheck."""
    if hc is None or not hc.test:
        return None
    kind, rest = hc.test[0], hc.test[1:]
    if kind == "CMD" and rest:
        return rest
    if kind == "CMD-SHELL" and rest:
        return [*(shell or DEFAULT_SHELL), *rest]
    if kind not in ("NONE", "CMD", "CMD-SHELL"):
        log.warning("unknown healthcheck type %r (expected 'CMD')", kind)
    return None


def has_healthcheck(hc: HealthConfig | None) -> bool:
    return probe_argv(hc, DEFAULT_SHELL) is not None


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 30s, 200ms, 1m30s, 1.5s, 1h0m0s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < SECOND_NS:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
    hours, rest = divmod(ns, 3600 * SECOND_NS)
    minutes, rest = divmod(rest, 60 * SECOND_NS)
    seconds = _decimal(rest, SECOND_NS) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _decimal(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


# the state machine ------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """A healthcheck's durations in seconds, defaults filled in."""

    interval: float
    timeout: float
    start_period: float
    start_interval: float
    retries: int

    @classmethod
    def of(cls, hc: HealthConfig) -> Timing:
        return cls(
            interval=(hc.interval or DEFAULT_INTERVAL_NS) / SECOND_NS,
            timeout=(hc.timeout or DEFAULT_TIMEOUT_NS) / SECOND_NS,
            start_period=hc.start_period / SECOND_NS,
            start_interval=(hc.start_interval or DEFAULT_START_INTERVAL_NS) / SECOND_NS,
            retries=hc.retries if hc.retries > 0 else DEFAULT_RETRIES,
        )

    def next_wait(self, since_start: float, status: str) -> float:
        """dockerd: the start interval while starting within the start period."""
        if since_start < self.start_period and status == "starting":
            return self.start_interval
        return self.interval


def apply_result(h: HealthState, result: HealthResult, t: Timing, since_start: float) -> None:
    """Record one probe; `since_start`: seconds from the container's start to the probe's."""
    h.log = [*h.log, result][-MAX_LOG_ENTRIES:]
    if result.exit_code == 0:
        h.failing_streak = 0
        h.status = "healthy"
        return
    if h.status == "starting" and since_start < t.start_period:
        return  # failures in the start period do not count until a first success
    h.failing_streak += 1
    if h.failing_streak >= t.retries:
        h.status = "unhealthy"


def capture(buf: bytearray, data: bytes) -> bool:
    """Append up to MAX_OUTPUT bytes in all; True when something was cut."""
    room = MAX_OUTPUT - len(buf)
    buf += data[: max(room, 0)]
    return len(data) > room


def output_text(buf: bytes, truncated: bool) -> str:
    text = buf.decode("utf-8", errors="replace")
    return text + "..." if truncated else text


# the monitor ------------------------------------------------------------------------


class HealthMonitor:
    """One probe loop per running container with a healthcheck."""

    def __init__(self, containers: ContainerService, execs: ExecService) -> None:
        self.containers = containers
        self.execs = execs
        self._loops: dict[str, asyncio.Task[None]] = {}
        containers.on_started.append(self.started)
        containers.on_exited.append(self.stopped)
        containers.on_removed.append(self._removed)
        for c in containers.list():  # running ones found again after a daemon restart
            if c.state.status in ("running", "paused"):
                self.started(c)

    def started(self, c: Container) -> None:
        """The task started: status "starting" (the log is kept), probing begins."""
        self._cancel(c.id)
        if not has_healthcheck(c.config.healthcheck):
            return
        h = c.state.health or HealthState()
        h.status, h.failing_streak = "starting", 0
        c.state.health = h
        self._loops[c.id] = asyncio.get_running_loop().create_task(self._monitor(c))

    def stopped(self, c: Container) -> None:
        """The task exited: no more probes; "unhealthy", as dockerd says of a stopped one."""
        if self._cancel(c.id) and c.state.health is not None:
            c.state.health.status = "unhealthy"

    def _removed(self, cid: str) -> None:
        self._cancel(cid)

    def _cancel(self, cid: str) -> bool:
        task = self._loops.pop(cid, None)
        if task is None:
            return False
        if task is not asyncio.current_task():
            task.cancel()
        return True

    def probing(self, cid: str) -> bool:
        return cid in self._loops

    async def _monitor(self, c: Container) -> None:
        hc = c.config.healthcheck
        assert hc is not None
        t = Timing.of(hc)
        started = time.monotonic()
        while True:
            h = c.state.health
            await asyncio.sleep(t.next_wait(time.monotonic() - started, h.status if h else ""))
            if c.state.status == "paused":
                continue
            if c.state.status != "running":
                return
            probe_start = time.monotonic()
            result = await self.probe(c, hc, t.timeout)
            if c.state.status != "running" or c.state.health is None:
                return
            self._record(c, result, t, probe_start - started)

    def _record(self, c: Container, result: HealthResult, t: Timing, since_start: float) -> None:
        h = c.state.health
        assert h is not None
        before = h.status
        apply_result(h, result, t, since_start)
        if h.status == before:
            return
        self.containers.save(c)
        self.containers.events.container(c, f"health_status: {h.status}")
        hc = c.config.healthcheck
        if h.status == "unhealthy" and hc is not None and hc.on_failure != "none":
            asyncio.get_running_loop().create_task(self._act(c, hc.on_failure))

    async def _act(self, c: Container, action: str) -> None:
        """--health-on-failure: what an unhealthy container gets."""
        log.info("%s is unhealthy: %s", c.id[:12], action)
        try:
            if action == "kill":
                await self.containers.kill(c.id, "SIGKILL")
            elif action == "stop":
                await self.containers.stop(c.id)
            elif action == "restart":
                await self.containers.restarts.restart_unhealthy(c)
        except FreightError as e:
            log.warning("health action %s on %s: %s", action, c.id[:12], e)

    # one probe ---------------------------------------------------------------------

    async def probe(self, c: Container, hc: HealthConfig, timeout: float) -> HealthResult:
        """Run the check once inside the container (an exec) and say how it went."""
        start = now_rfc3339()
        argv = probe_argv(hc, self._shell(c)) or []
        cfg = ExecConfig(cmd=argv, attach_stdout=True, attach_stderr=True)
        try:
            e = self.execs.create(c.id, cfg, ephemeral=True)
        except FreightError as err:
            return HealthResult(start, now_rfc3339(), -1, str(err))
        stdio: ShimStdio | None = None
        try:
            stdio = await self.execs.start(e.id, attach=True)
            assert stdio is not None
            code, out = await asyncio.wait_for(_collect(stdio), timeout)
        except TimeoutError:
            self._kill_probe(e.pid)
            limit = go_duration(int(round(timeout * SECOND_NS)))
            return HealthResult(
                start, now_rfc3339(), -1, f"Health check exceeded timeout ({limit})"
            )
        except (ExecError, FreightError, OSError) as err:
            return HealthResult(start, now_rfc3339(), -1, str(err))
        finally:
            if stdio is not None:
                await stdio.close()
            self.execs.discard_unstarted(e)
        if code is None:
            code = e.exit_code if e.exit_code is not None else -1
        return HealthResult(start, now_rfc3339(), code, out)

    def _shell(self, c: Container) -> list[str] | None:
        """The image's SHELL, for CMD-SHELL (dockerd: Config.Shell, else /bin/sh -c)."""
        try:
            return self.containers.images.config(c.image_id).config.shell
        except Exception:  # the image record is unreadable: the default shell will do
            return None

    @staticmethod
    def _kill_probe(pid: int) -> None:
        if pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def _collect(stdio: ShimStdio) -> tuple[int | None, str]:
    """The probe's output (stdout and stderr together, capped) and its exit code."""
    buf = bytearray()
    truncated = False
    async for kind, payload in stdio.output():
        if kind == frames.EXIT:
            return int(payload or b"0"), output_text(bytes(buf), truncated)
        truncated = capture(buf, payload) or truncated
    return None, output_text(bytes(buf), truncated)
