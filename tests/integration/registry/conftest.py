"""Fixtures for the registry server tests (helpers live in `registryserver`, a module
with a unique name, because several directories have a `conftest`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from registryserver import RegistryProcess, start_registry


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator:
    started: list[RegistryProcess] = []

    def make(*extra: str, root: Path | None = None) -> RegistryProcess:
        r = start_registry(root or tmp_path / f"registry{len(started)}", *extra)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    r = start_registry(tmp_path_factory.mktemp("registry") / "root")
    yield r
    r.stop()
