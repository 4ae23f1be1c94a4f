"""The runtime library interface the shim (and tests) program against.

    rt = open_runtime("freight", Path("/run/freight/runtime"))
    pid, _ = rt.create("c1", bundle, stdin_fd, stdout_fd, stderr_fd)  # blocked before exec
    rt.start("c1")                                                     # execs the command
    rt.state("c1").status   # "created" | "running" | "stopped"
    pid2, _ = rt.exec("c1", Process(args=["ps"]), stdin_fd, stdout_fd, stderr_fd)
    rt.kill("c1", signal.SIGTERM)
    rt.delete("c1", force=True)                                        # cgroup removed too

With `process.terminal` (in the bundle's spec for create, in the Process for
exec) the stdio fds are ignored (pass -1): the process gets a new PTY from
the container's devpts as stdio and controlling terminal, and the second
item returned is its master fd, now the caller's to close. Otherwise it is
None. `process.consoleSize` is applied before the process runs.

Processes are not waited for here: the caller should be a child subreaper
(the shim is) to reap them. Create and exec failures raise
`freight.errors.ExecError` carrying Docker's wording and exit code (127 not
found, 126 not executable, 125 anything else); exec into a stopped
container raises `freight.errors.Conflict`.
Implementations are imported lazily so a shim using one never loads the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from freight.oci.runtime_spec import Process
from freight.runtime.state import RuntimeState

__all__ = ["Runtime", "RuntimeState", "open_runtime"]


class Runtime(Protocol):
    name: str

    def create(
        self, container_id: str, bundle: Path, stdin_fd: int, stdout_fd: int, stderr_fd: int
    ) -> tuple[int, int | None]: ...
    def exec(
        self, container_id: str, process: Process, stdin_fd: int, stdout_fd: int, stderr_fd: int
    ) -> tuple[int, int | None]: ...
    def start(self, container_id: str) -> None: ...
    def state(self, container_id: str) -> RuntimeState: ...
    def kill(self, container_id: str, sig: int) -> None: ...
    def delete(self, container_id: str, force: bool = False) -> None: ...
    def oom_killed(self, container_id: str) -> bool: ...


def open_runtime(name: Literal["freight", "runc"], root: Path) -> Runtime:
    """The runtime called `name`, keeping its state under `root`."""
    if name == "freight":
        from freight.runtime.native import FreightRuntime

        return FreightRuntime(Path(root))
    if name == "runc":
        from freight.runtime.runc import RuncRuntime

        return RuncRuntime(Path(root))
    raise ValueError(f"unknown runtime {name!r}")
