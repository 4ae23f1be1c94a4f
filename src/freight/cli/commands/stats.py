"""``freight stats``: a live table of containers' resource usage, as ``docker stats``.

Owns: the flags (-a/--all, --format, --no-stream, --no-trunc), one reader
thread per container on ``GET /containers/{id}/stats`` (streaming), the
numbers docker's CLI derives from each sample (CPU % from the delta to
precpu_stats, memory without inactive file pages, network and block I/O
sums) and their units ("1.5MiB / 15.6GiB", "1.2kB / 0B"), and the table:
redrawn in place on a terminal every half second (cursor home, each line
cleared to its end, the rest of the screen cleared), printed once with
--no-stream.

Without names the set follows the daemon: running containers (all with
--all) are listed again every second, so ones that start appear and, without
--all, ones that stop disappear. A container that is not running shows
docker's zero row.
"""

from __future__ import annotations

import sys
import threading
import time

from freight.cli.flags import Command, Flag
from freight.cli.formatter import render, resolve_format
from freight.cli.session import CliError, Session
from freight.client.http import ApiError, ClientError
from freight.dockerapi.humanize import bytes_size, human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATS = Command(
    "stats",
    "[OPTIONS] [CONTAINER...]",
    "Display a live stream of container(s) resource usage statistics",
    [
        Flag("all", "a", help="Show all containers (default shows just running)"),
        Flag("format", "", "string", "Format output using a custom template"),
        Flag("no-stream", "", help="Disable streaming stats and only pull the first result"),
        Flag("no-trunc", "", help="Do not truncate output"),
    ],
    aliases=("freight container stats", "freight stats"),
)
STATS_TABLE = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}"
    "\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
)
STATS_HEADERS = {
    "Container": "CONTAINER",
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
REDRAW_S = 0.5
RELIST_S = 1.0
FIRST_SAMPLE_TIMEOUT_S = 5.0


# --- the numbers docker's CLI shows ---------------------------------------------------


def cpu_percent(s: dict[str, Any]) -> float:
    cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    usage, pre_usage = cpu.get("cpu_usage") or {}, pre.get("cpu_usage") or {}
    cpu_delta = usage.get("total_usage", 0) - pre_usage.get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len(usage.get("percpu_usage") or [])
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def memory_usage(mem: dict[str, Any]) -> int:
    """Usage without the page cache that could be dropped (v1 total_inactive_file, v2 inactive_file)."""
    usage, stats = mem.get("usage", 0), mem.get("stats") or {}
    if "total_inactive_file" in stats and stats["total_inactive_file"] < usage:
        return usage - stats["total_inactive_file"]
    if stats.get("inactive_file", 0) < usage:
        return usage - stats.get("inactive_file", 0)
    return usage


def block_io(blkio: dict[str, Any]) -> tuple[int, int]:
    read = write = 0
    for entry in blkio.get("io_service_bytes_recursive") or []:
        op = (entry.get("op") or " ")[0]
        if op in "rR":
            read += entry.get("value", 0)
        elif op in "wW":
            write += entry.get("value", 0)
    return read, write


def network_io(networks: dict[str, Any] | None) -> tuple[int, int]:
    nets = (networks or {}).values()
    return sum(n.get("rx_bytes", 0) for n in nets), sum(n.get("tx_bytes", 0) for n in nets)


class StatsRow:
    """One container's line; the method names are docker's template fields."""

    FIELDS = (
        "BlockIO",
        "CPUPerc",
        "Container",
        "ID",
        "MemPerc",
        "MemUsage",
        "Name",
        "NetIO",
        "PIDs",
    )

    def __init__(self, container: str, cid: str, name: str, trunc: bool = True) -> None:
        self.container, self.cid, self.name, self.trunc = container, cid, name, trunc
        self.sample: dict[str, Any] | None = None  # None: nothing read yet ("--")

    def update(self, sample: dict[str, Any]) -> None:
        self.sample = sample
        if sample.get("name"):
            self.name = sample["name"]

    def _s(self) -> dict[str, Any]:
        return self.sample or {}

    def Container(self) -> str:  # noqa: N802 - docker's field names are the template API
        return self.container

    def ID(self) -> str:  # noqa: N802
        return self.cid[:12] if self.trunc else self.cid

    def Name(self) -> str:  # noqa: N802
        name = self.name
        return name[1:] if len(name) > 1 and name.startswith("/") else name or "--"

    def CPUPerc(self) -> str:  # noqa: N802
        return "--" if self.sample is None else f"{cpu_percent(self._s()):.2f}%"

    def MemUsage(self) -> str:  # noqa: N802
        if self.sample is None:
            return "-- / --"
        mem = self._s().get("memory_stats") or {}
        return f"{bytes_size(memory_usage(mem))} / {bytes_size(mem.get('limit', 0))}"

    def MemPerc(self) -> str:  # noqa: N802
        if self.sample is None:
            return "--"
        mem = self._s().get("memory_stats") or {}
        limit = mem.get("limit", 0)
        return f"{memory_usage(mem) / limit * 100.0 if limit else 0.0:.2f}%"

    def NetIO(self) -> str:  # noqa: N802
        if self.sample is None:
            return "--"
        rx, tx = network_io(self._s().get("networks"))
        return f"{human_size(rx)} / {human_size(tx)}"

    def BlockIO(self) -> str:  # noqa: N802
        if self.sample is None:
            return "--"
        read, write = block_io(self._s().get("blkio_stats") or {})
        return f"{human_size(read)} / {human_size(write)}"

    def PIDs(self) -> str:  # noqa: N802
        if self.sample is None:
            return "--"
        return str((self._s().get("pids_stats") or {}).get("current", 0))

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name)() for name in self.FIELDS}


# --- reading -------------------------------------------------------------------------


class Reader(threading.Thread):
    """Streams one container's samples into its row until the stream ends."""

    def __init__(self, session: Session, row: StatsRow, stream: bool) -> None:
        super().__init__(daemon=True)
        self.session, self.row, self.stream = session, row, stream
        self.first = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        params = {"stream": "1" if self.stream else "0"}
        try:
            response = self.session.api.http.request(
                "GET", f"/containers/{self.row.cid}/stats", params=params
            )
            for sample in response.iter_json():
                self.row.update(sample)
                self.first.set()
        except (ClientError, OSError) as exc:
            self.error = str(exc)
        finally:
            self.first.set()


class Table:
    """The rows shown, in the daemon's list order, and their readers."""

    def __init__(self, session: Session, stream: bool, trunc: bool) -> None:
        self.session, self.stream, self.trunc = session, stream, trunc
        self.rows: dict[str, StatsRow] = {}
        self.readers: dict[str, Reader] = {}

    def add(self, given: str, cid: str, name: str, running: bool) -> None:
        row = self.rows.get(cid)
        if row is None:
            row = self.rows[cid] = StatsRow(given, cid, name, self.trunc)
        reader = self.readers.get(cid)
        # A reader ends with its container; read again once the container runs again.
        if reader is None or (not reader.is_alive() and running and self.stream):
            reader = self.readers[cid] = Reader(self.session, row, self.stream)
            reader.start()

    def keep_only(self, cids: list[str]) -> None:
        self.rows = {cid: self.rows[cid] for cid in cids if cid in self.rows}

    def wait_first(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for reader in list(self.readers.values()):
            reader.first.wait(max(deadline - time.monotonic(), 0))


def _listing(session: Session, show_all: bool) -> list[dict[str, Any]]:
    return session.api.containers(all=show_all)


def _track_listed(table: Table, show_all: bool) -> None:
    listed = _listing(table.session, show_all)
    for c in listed:
        table.add(c["Id"], c["Id"], (c.get("Names") or ["--"])[0], c.get("State") == "running")
    table.keep_only([c["Id"] for c in listed])


def _track_named(table: Table, names: list[str]) -> list[str]:
    from urllib.parse import quote

    errors = []
    for name in names:
        try:
            doc = table.session.api.http.get_json(f"/containers/{quote(name, safe='')}/json")
        except ApiError as exc:
            errors.append(str(exc))
            continue
        table.add(name, doc["Id"], doc.get("Name", ""), bool(doc["State"].get("Running")))
    return errors


# --- drawing -------------------------------------------------------------------------


def draw(fmt: str, rows: list[StatsRow], terminal: bool) -> str:
    text = render(fmt, rows, STATS_HEADERS)
    if not terminal:
        return text
    # Home, each line cleared to its end, then the rest of the screen (fewer rows now).
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return "\033[H" + "".join(line + "\033[K\n" for line in lines) + "\033[J"


def main(session: Session, argv: list[str]) -> int:
    opts, names = STATS.parse(argv)
    fmt = resolve_format(opts["format"], STATS_TABLE, False)
    stream = not opts["no_stream"]
    table = Table(session, stream, trunc=not opts["no_trunc"])
    try:
        if names:
            errors = _track_named(table, names)
            if errors and not table.rows:
                raise CliError("\n".join(errors))
            for message in errors:
                session.err(message + "\n")
        else:
            _track_listed(table, opts["all"])
    except ClientError as exc:
        raise CliError(str(exc)) from None
    table.wait_first(FIRST_SAMPLE_TIMEOUT_S if stream else FIRST_SAMPLE_TIMEOUT_S * 2)
    if not stream:
        session.out(render(fmt, list(table.rows.values()), STATS_HEADERS))
        return 0
    return _live(session, table, fmt, names, opts["all"])


def _live(session: Session, table: Table, fmt: str, names: list[str], show_all: bool) -> int:
    terminal = sys.stdout.isatty()  # docker 28 draws from the top without clearing first
    relisted = time.monotonic()
    try:
        while True:
            session.out(draw(fmt, list(table.rows.values()), terminal))
            sys.stdout.flush()
            time.sleep(REDRAW_S)
            if not names and time.monotonic() - relisted >= RELIST_S:
                relisted = time.monotonic()
                try:
                    _track_listed(table, show_all)
                except ClientError as exc:
                    raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        return 0
