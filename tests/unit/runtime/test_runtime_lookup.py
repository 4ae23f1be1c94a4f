"""freight.runtime.lookup: Docker's words and exit codes for a command that cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.errors import ExecError
from freight.runtime.lookup import find_executable


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin/tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "bin/data").write_text("x")
    return tmp_path / "bin"


def test_found_on_path(bindir: Path) -> None:
    assert find_executable("tool", f"/nonexistent:{bindir}") == f"{bindir}/tool"


def test_not_found_is_127(bindir: Path) -> None:
    with pytest.raises(ExecError) as e:
        find_executable("nosuch", str(bindir))
    assert str(e.value) == 'exec: "nosuch": executable file not found in $PATH'
    assert e.value.exit_code == 127


def test_missing_absolute_path_is_127() -> None:
    with pytest.raises(ExecError) as e:
        find_executable("/x/y", "/bin")
    assert str(e.value) == 'exec: "/x/y": stat /x/y: no such file or directory'
    assert e.value.exit_code == 127


@pytest.mark.parametrize("name", ["data", ""])
def test_not_executable_or_directory_is_126(bindir: Path, name: str) -> None:
    path = str(bindir / name) if name else str(bindir)
    with pytest.raises(ExecError) as e:
        find_executable(path, "/bin")
    assert str(e.value) == f'exec: "{path}": permission denied'
    assert e.value.exit_code == 126
