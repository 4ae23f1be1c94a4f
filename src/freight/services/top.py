"""`docker top`: the processes of a container, as the host's `ps` shows them.

As dockerd: the host's ps runs with the client's arguments (default "-ef")
over every process of the host, and only the lines of the container's
processes are kept. The container's processes are read from its cgroup
(`cgroup.procs` of its directory and any below it), never by running
anything from the container's own filesystem.

Kept from dockerd's parser: titles are the first line's fields; the PID
column decides; a line whose PID is "-" (a thread line, `ps -m`) follows
the process line before it; a line with more fields than titles has its
overhanging fields joined into the last column (CMD with spaces).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from freight.errors import Internal, InvalidArgument

DEFAULT_ROOT = Path("/sys/fs/cgroup")
DEFAULT_PS_ARGS = "-ef"
PS_TIMEOUT_S = 30.0
# `-o uid=PID` would relabel a column "PID" and confuse the filter (dockerd refuses it too).
_RELABEL_PID = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")
# In v1 every hierarchy has the same processes; these are the ones always there.
_V1_HIERARCHIES = ("pids", "memory", "freezer", "cpu", "cpuacct", "systemd")


@dataclass
class TopResult:
    titles: list[str]
    processes: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"Titles": self.titles, "Processes": self.processes}


def container_pids(cgroup_path: str, root: Path = DEFAULT_ROOT) -> set[int]:
    """Every process in the container's cgroup and its sub-cgroups."""
    rel = cgroup_path.strip("/")
    if (root / "cgroup.controllers").exists():
        top = root / rel
    else:
        top = next((root / h / rel for h in _V1_HIERARCHIES if (root / h / rel).is_dir()), None)
        if top is None:
            return set()
    pids: set[int] = set()
    for procs in [top / "cgroup.procs", *top.rglob("*/cgroup.procs")]:
        try:
            pids.update(int(x) for x in procs.read_text().split())
        except (OSError, ValueError):
            continue  # a sub-cgroup removed meanwhile
    return pids


def check_ps_args(ps_args: str) -> None:
    for key, value in _RELABEL_PID.findall(ps_args):
        if key != "pid":
            raise InvalidArgument(f'specifying "{key}={value}" is not allowed')


def run_ps(ps_args: str) -> str:
    """The host's ps with `ps_args` split on spaces (as dockerd does)."""
    ps = shutil.which("ps") or "/bin/ps"
    args = [a for a in (ps_args or DEFAULT_PS_ARGS).split(" ") if a]
    try:
        done = subprocess.run(
            [ps, *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=PS_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Internal(f"Error running ps: {e}") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise Internal(f"Error running ps: exit status {done.returncode}: {message}")
    return done.stdout.decode(errors="replace")


def parse_ps(output: str, pids: set[int]) -> TopResult:
    """Keep the lines of `pids` from ps output (dockerd's parsePSOutput rules)."""
    lines = output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise Internal("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    result = TopResult(titles)
    follows = False  # the previous process line was the container's: keep its thread lines
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= pid_index:
            continue
        if fields[pid_index] == "-":
            if follows:
                result.processes.append(_fit(fields, len(titles)))
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise Internal(f"Unexpected pid '{fields[pid_index]}'") from None
        follows = pid in pids
        if follows:
            result.processes.append(_fit(fields, len(titles)))
    return result


def _fit(fields: list[str], ntitles: int) -> list[str]:
    return [*fields[: ntitles - 1], " ".join(fields[ntitles - 1 :])]


def top(cgroup_path: str, ps_args: str, root: Path = DEFAULT_ROOT) -> TopResult:
    """ps (blocking) filtered to the container's processes."""
    check_ps_args(ps_args)
    pids = container_pids(cgroup_path, root)
    return parse_ps(run_ps(ps_args), pids)
