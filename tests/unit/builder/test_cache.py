"""The build cache's keys and entries (metadata DB on a temp path)."""

from __future__ import annotations

from pathlib import Path

from freight.builder.cache import BuildCache, step_key
from freight.metadata.store import ImageRow, MetadataStore


def test_keys_are_stable_and_change_with_any_input() -> None:
    base = step_key("sha256:parent", "run", ["/bin/sh", "-c", "true"], [])
    assert base == step_key("sha256:parent", "run", ["/bin/sh", "-c", "true"], [])
    assert base != step_key("sha256:other", "run", ["/bin/sh", "-c", "true"], [])
    assert base != step_key("sha256:parent", "run", ["/bin/sh", "-c", "false"], [])
    assert base != step_key("sha256:parent", "run", ["/bin/sh", "-c", "true"], [("A", "1")])
    # no ambiguity between parts: ["ab", "c"] is not ["a", "bc"]
    assert step_key("p", "ab", "c") != step_key("p", "a", "bc")


def test_an_entry_whose_image_is_gone_is_a_miss(tmp_path: Path) -> None:
    meta = MetadataStore(tmp_path / "meta.db")
    cache = BuildCache(meta)
    meta.put_image(ImageRow("sha256:img", "sha256:m", "", 0, "2026-01-01T00:00:00Z"))
    cache.record("sha256:k", "sha256:img")
    assert cache.lookup("sha256:k") == "sha256:img"
    meta.delete_image("sha256:img")
    assert cache.lookup("sha256:k") is None
    cache.forget(["sha256:k"])
    assert cache.entries() == []
    meta.close()


def test_entries_survive_reopening_the_store(tmp_path: Path) -> None:
    meta = MetadataStore(tmp_path / "meta.db")
    meta.put_image(ImageRow("sha256:img", "sha256:m", "", 0, "2026-01-01T00:00:00Z"))
    BuildCache(meta).record("sha256:k", "sha256:img")
    meta.close()
    again = MetadataStore(tmp_path / "meta.db")
    assert BuildCache(again).lookup("sha256:k") == "sha256:img"
    again.close()
