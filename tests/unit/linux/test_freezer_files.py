"""linux.freezer on temp-dir cgroup trees: v1 freezer.state and v2 cgroup.freeze/events."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from freight.errors import Unavailable
from freight.linux import freezer
from freight.linux.freezer import Freezer


def v1_tree(root: Path, state: str = "THAWED") -> Path:
    d = root / "freezer" / "freight" / "c1"
    d.mkdir(parents=True)
    (d / "freezer.state").write_text(state + "\n")
    return d


def v2_tree(root: Path, freeze: str = "0", frozen: str = "0") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    d = root / "freight" / "c1"
    d.mkdir(parents=True)
    (d / "cgroup.freeze").write_text(freeze + "\n")
    (d / "cgroup.events").write_text(f"populated 1\nfrozen {frozen}\n")
    return d


def test_of_picks_the_version_and_none_without_a_cgroup(tmp_path: Path) -> None:
    assert Freezer.of("/freight/c1", tmp_path) is None
    d = v1_tree(tmp_path)
    f = Freezer.of("/freight/c1", tmp_path)
    assert f is not None and f.control == d / "freezer.state" and not f.v2
    other = tmp_path / "v2"
    d2 = v2_tree(other)
    f2 = Freezer.of("freight/c1", other)
    assert f2 is not None and f2.control == d2 / "cgroup.freeze" and f2.v2


def test_v1_freeze_and_thaw(tmp_path: Path) -> None:
    d = v1_tree(tmp_path)
    f = Freezer.of("/freight/c1", tmp_path)
    assert f is not None and f.state() == "THAWED" and not f.frozen()
    f.freeze(timeout=1)
    assert (d / "freezer.state").read_text() == "FROZEN" and f.frozen()
    f.thaw()
    assert (d / "freezer.state").read_text() == "THAWED"


def test_v1_waits_through_freezing(tmp_path: Path) -> None:
    """The kernel answers FREEZING until every task stopped; freeze waits for FROZEN."""
    d = v1_tree(tmp_path)
    f = Freezer(d / "freezer.state")
    real_write = freezer._write
    writes: list[str] = []

    def kernel(path: Path, value: str) -> None:
        writes.append(value)
        # The first two requests only get as far as FREEZING, as with a task in D state.
        real_write(path, "FREEZING" if value == "FROZEN" and len(writes) < 3 else value)

    freezer._write = kernel  # type: ignore[assignment]
    try:
        f.freeze(timeout=2)
    finally:
        freezer._write = real_write  # type: ignore[assignment]
    assert writes == ["FROZEN", "FROZEN", "FROZEN"]
    assert f.state() == "FROZEN"


def test_v1_timeout_thaws_and_raises(tmp_path: Path) -> None:
    d = v1_tree(tmp_path)
    f = Freezer(d / "freezer.state")
    real_write = freezer._write
    freezer._write = lambda p, v: real_write(p, "FREEZING" if v == "FROZEN" else v)  # type: ignore[assignment]
    try:
        with pytest.raises(Unavailable):
            f.freeze(timeout=0.05)
    finally:
        freezer._write = real_write  # type: ignore[assignment]
    assert (d / "freezer.state").read_text() == "THAWED"


def test_v2_waits_for_cgroup_events(tmp_path: Path) -> None:
    d = v2_tree(tmp_path)
    f = Freezer.of("/freight/c1", tmp_path)
    assert f is not None

    def kernel_finishes() -> None:
        time.sleep(0.05)
        (d / "cgroup.events").write_text("populated 1\nfrozen 1\n")

    t = threading.Thread(target=kernel_finishes)
    t.start()
    started = time.monotonic()
    f.freeze(timeout=2)
    t.join()
    assert time.monotonic() - started >= 0.04
    assert (d / "cgroup.freeze").read_text() == "1" and f.state() == "FROZEN"
    f.thaw()
    assert (d / "cgroup.freeze").read_text() == "0" and f.state() == "THAWED"


def test_v2_freezing_until_events_say_frozen(tmp_path: Path) -> None:
    d = v2_tree(tmp_path, freeze="1", frozen="0")
    f = Freezer(d / "cgroup.freeze")
    assert f.state() == "FREEZING" and f.frozen()
    with pytest.raises(Unavailable):
        f.freeze(timeout=0.02)
    assert (d / "cgroup.freeze").read_text() == "0"


def test_cgroup_of_process(tmp_path: Path) -> None:
    proc = tmp_path / "42"
    proc.mkdir()
    (proc / "cgroup").write_text(
        "12:pids:/freight/c1\n6:freezer:/freight/c1\n1:name=systemd:/x\n0::/freight/c1v2\n"
    )
    assert freezer.cgroup_of_process(42, v2=False, proc=tmp_path) == "/freight/c1"
    assert freezer.cgroup_of_process(42, v2=True, proc=tmp_path) == "/freight/c1v2"
    assert freezer.cgroup_of_process(43, v2=False, proc=tmp_path) is None
