"""The hypothesis profile the fuzz tests share: the committed corpus and a time budget.

Failing (and shrunk) examples are kept in tests/fuzz-corpus/, committed, so a
crash found once is replayed on every run. The example budgets are sized so the
whole of tests/unit/fuzz/ stays well under a minute on this machine.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

CORPUS = Path(__file__).resolve().parents[2] / "fuzz-corpus"

settings.register_profile(
    "freight-fuzz",
    database=DirectoryBasedExampleDatabase(str(CORPUS)),
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("freight-fuzz")


def fuzz(max_examples: int) -> settings:
    """The shared profile with this test's example budget."""
    return settings(FUZZ, max_examples=max_examples)
