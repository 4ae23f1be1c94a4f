"""The shim's command line, parsed without argparse (which costs more memory than the loop).

    --id ID --bundle DIR --state-dir DIR --runtime freight|runc --runtime-root DIR --ready-fd N
    container:  [--log-path FILE]  a json-file log, not rotated
                [--log-config JSON]  any driver (shim.logwriters.open_log); wins over --log-path
                (with neither, no log: the "none" log driver)
    exec:       --exec-id EID --process FILE   (an OCI process JSON; no log)
    either:     [--stdin] [--tty] [--console-size HxW] [--wait-attach] [--client-fd N]

``--client-fd N`` is a connected unix stream socket (the daemon holds the other
end): the first, primary client, there before the process starts, so a
``--wait-attach`` shim starts at once and the daemon never polls for the socket.

Flags take no value; every other option takes exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freight.linux import pty

_VALUES = ("id", "bundle", "state-dir", "log-path", "log-config", "runtime", "runtime-root", "ready-fd",
           "console-size", "exec-id", "process", "client-fd")  # fmt: skip
_FLAGS = ("stdin", "tty", "wait-attach")
_REQUIRED = ("id", "bundle", "state-dir", "runtime", "runtime-root", "ready-fd")


@dataclass
class Options:
    id: str
    bundle: Path
    state_dir: Path
    log_path: str | None
    runtime: str
    runtime_root: Path
    ready_fd: int
    stdin: bool = False
    tty: bool = False
    console_size: tuple[int, int] | None = None
    wait_attach: bool = False
    exec_id: str | None = None
    process: Path | None = None
    client_fd: int | None = None
    log_config: str | None = None  # JSON, see shim.logwriters

    @property
    def exec_mode(self) -> bool:
        return self.exec_id is not None

    @property
    def socket_path(self) -> str:
        return str(self.state_dir / "attach.sock")


def parse_args(argv: list[str]) -> Options:
    """--key value pairs and bare flags; argparse costs more memory than the whole shim loop."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    it = iter(argv)
    for arg in it:
        key = arg.removeprefix("--")
        if key in _FLAGS:
            flags.add(key)
        elif key in _VALUES:
            values[key] = next(it, "")
        else:
            raise SystemExit(f"freight-shim: unknown option {arg}")
    exec_mode = "exec-id" in values or "process" in values
    required = _REQUIRED + (("exec-id", "process") if exec_mode else ())
    missing = [k for k in required if k not in values]
    if missing:
        raise SystemExit(f"freight-shim: missing --{missing[0]}")
    try:
        size = pty.parse_size(values["console-size"]) if "console-size" in values else None
    except ValueError as e:
        raise SystemExit(f"freight-shim: {e}") from None
    return Options(
        values["id"],
        Path(values["bundle"]),
        Path(values["state-dir"]),
        values.get("log-path"),
        values["runtime"],
        Path(values["runtime-root"]),
        int(values["ready-fd"]),
        stdin="stdin" in flags,
        tty="tty" in flags,
        console_size=size,
        wait_attach="wait-attach" in flags,
        exec_id=values.get("exec-id"),
        process=Path(values["process"]) if "process" in values else None,
        client_fd=int(values["client-fd"]) if "client-fd" in values else None,
        log_config=values.get("log-config"),
    )
