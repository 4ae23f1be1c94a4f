"""The parent/child protocol of `create`, drawn, and its messages.

Three processes take part. The caller forks a setup child, which enters the
namespaces and forks again so the container init is PID 1 of the new pid
namespace (unshare(CLONE_NEWPID) only affects children). Both children write
JSON lines to one pipe; the caller only reads::

    caller (create)              setup child                 container init
    ───────────────              ───────────                 ──────────────
    mkfifo exec.fifo
    cgroup mkdir + limits
    fork ───────────────────────▶ dup2 stdio
                                  join cgroup
                                  setns(path)
                                  user ns: unshare(CLONE_NEWUSER)
      ◀──── {"type": "usermap"} ───────
    write /proc/CHILD/uid_map,
      gid_map; b"1" on the map pipe ─▶ become uid/gid 0 there
                                  unshare the others
                                  fork ──────────────────────▶ (PID 1)
      ◀──── {"type": "pid", "pid": N} ──
                                  _exit(0)
    waitpid(setup child)                                      setsid, lo up, hostname
                                                              rootfs: mounts, pivot_root
                                                              terminal: new PTY, master
      ◀──────────── console socketpair (SCM_RIGHTS) ────────  sent over the socketpair
                                                              rlimits, user, caps, cwd
                                                              look up args[0] on PATH
      ◀────────────────────────────── {"type": "ready"} ───── (or "error", then _exit)
    (terminal: receive the master)
    write state.json, return N                                open(exec.fifo, O_WRONLY)
                                                                 ... blocks ...
    start: open(exec.fifo, O_RDONLY) ─ read b"0" ───────────▶ execve(args[0], args, env)

    error: {"type": "error", "message": "exec: \"x\": executable file not found
            in $PATH", "exit_code": 127} from either child; EOF before "ready"
            means a child died without saying why.

`exec` uses the same messages between the same three roles; its diagram
is in `freight.runtime.enter`.

The pipe's write end is close-on-exec and the init closes it before blocking
on the fifo, so the caller never waits on a container that is already
created. A message is one line; lines stay under PIPE_BUF (4096) so each
write is atomic.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

PID = "pid"
USERMAP = "usermap"  # the setup child unshared its user namespace: write its maps
READY = "ready"
ERROR = "error"


@dataclass(frozen=True)
class Message:
    type: str
    pid: int = 0
    message: str = ""
    exit_code: int = 0

    def encode(self) -> bytes:
        body: dict[str, object] = {"type": self.type}
        if self.type == PID:
            body["pid"] = self.pid
        elif self.type == ERROR:
            body["message"] = self.message[:3000]
            body["exit_code"] = self.exit_code
        return json.dumps(body).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> Message:
        body = json.loads(line)
        return cls(
            body["type"], body.get("pid", 0), body.get("message", ""), body.get("exit_code", 0)
        )


def send(fd: int, msg: Message) -> None:
    os.write(fd, msg.encode())


class Reader:
    """Reads messages from the pipe's read end; `next()` is None at EOF."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def next(self) -> Message | None:
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return Message.decode(line)
