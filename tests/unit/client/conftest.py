"""Fixtures for client tests: a fake daemon on a temp unix socket."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from fakedaemon import FakeDaemon


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeDaemon(os.path.join(tmp, "freight.sock"))
        yield fake
        fake.close()
