"""Start time: the hot paths must not import heavy modules.

Measured times are reported (``-s`` shows them), not asserted tightly: the
machine's load decides them. The forbidden-import part is exact.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

# enum (imported by re, json, socket, signal, dataclasses) alone costs ~8 ms, re ~10 ms:
# most of an exec's 50 ms budget. Parse flags by hand, use wirejson/_socket/_signal,
# and import anything heavier inside the function that needs it.
FORBIDDEN = {
    "asyncio", "http.client", "email", "h11", "typing", "dataclasses", "threading",
    "enum", "re", "json", "socket", "signal", "pathlib", "subprocess",
}  # fmt: skip
SRC = str(Path(__file__).resolve().parents[3] / "src")
# As the installed launcher runs it (Makefile): no site, src/ on the path.
LAUNCHER = (
    f"import sys; sys.path.insert(0, {SRC!r}); from freight.cli.main import main; sys.exit(main())"
)


def imported_modules(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", "-c", LAUNCHER, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("-H", "unix:///nonexistent.sock", "ps"),
        ("-H", "unix:///nonexistent.sock", "run", "busybox", "true"),
        ("-H", "unix:///nonexistent.sock", "run", "-i", "--rm", "busybox", "cat"),
        ("-H", "unix:///nonexistent.sock", "exec", "-it", "c1", "sh"),
        ("-H", "unix:///nonexistent.sock", "attach", "c1"),
        ("-H", "unix:///nonexistent.sock", "start", "c1"),
        ("-H", "unix:///nonexistent.sock", "logs", "c1"),
    ],
)
def test_hot_paths_avoid_heavy_imports(args):
    modules = imported_modules(*args)
    assert "freight.cli.main" in modules or "freight.cli.flags" in modules
    assert not (modules & FORBIDDEN), sorted(modules & FORBIDDEN)
    if args == ("--version",):
        assert "json" not in modules and "socket" not in modules


def test_version_start_time_is_reported():
    runs = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "freight.cli.main", "--version"], capture_output=True, check=True
        )
        runs.append(time.perf_counter() - start)
    median_ms = statistics.median(runs) * 1000
    print(f"freight --version median {median_ms:.1f} ms")
    assert median_ms < 1000  # a generous ceiling: catches an accidental heavy import, not load
