"""The hypothesis profile the fuzz tests share: the committed corpus and a time budget.

Two modes. In `make test` (the default) the runs have a fixed seed and the corpus
is read-only: every run tries the same examples plus the committed ones, so CI
is repeatable. `make fuzz` (FREIGHT_FUZZ=explore) draws fresh random examples,
ten times as many, and saves what fails (shrunk) into tests/fuzz-corpus/: commit
those, fix the bug, and every later run replays them. The example budgets keep
tests/unit/fuzz/ well under a minute on this machine in the default mode.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase

CORPUS = Path(__file__).resolve().parents[2] / "fuzz-corpus"
EXPLORE = os.environ.get("FREIGHT_FUZZ") == "explore"
_corpus = DirectoryBasedExampleDatabase(str(CORPUS))

settings.register_profile(
    "freight-fuzz",
    database=_corpus if EXPLORE else ReadOnlyDatabase(_corpus),
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("freight-fuzz")


def fuzz(max_examples: int) -> Callable[[Any], Any]:
    """The shared profile with this test's example budget; a fixed seed unless exploring
    (then ten times the budget)."""

    def apply(test: Any) -> Any:
        test = settings(FUZZ, max_examples=max_examples * (10 if EXPLORE else 1))(test)
        return test if EXPLORE else seed(20261203)(test)

    return apply
