"""The metadata DB: images, tags and containers, transactional."""

from __future__ import annotations

import pytest

from freight.errors import AlreadyExists, NotFound
from freight.metadata.store import ContainerRow, ImageRow, MetadataStore


def test_images_and_tags(tmp_path):
    db = MetadataStore(tmp_path / "m.db")
    db.put_image(ImageRow("sha256:aa", "sha256:m", "sha256:c", 10, "t"), ["docker.io/library/x:1"])
    assert db.resolve_tag("docker.io/library/x:1") == "sha256:aa"
    assert db.image_ids_with_prefix("sha256:a") == ["sha256:aa"]
    db.delete_image("sha256:aa")
    assert db.resolve_tag("docker.io/library/x:1") is None
    with pytest.raises(NotFound):
        db.image("sha256:aa")


def test_container_names_are_unique_and_survive_reopen(tmp_path):
    db = MetadataStore(tmp_path / "m.db")
    db.add_container(ContainerRow("1", "web", "sha256:aa", "{}"))
    with pytest.raises(AlreadyExists):
        db.add_container(ContainerRow("2", "web", "sha256:aa", "{}"))
    db.close()
    again = MetadataStore(tmp_path / "m.db")
    assert [r.name for r in again.containers()] == ["web"]
    assert [r.id for r in again.containers_using("sha256:aa")] == ["1"]


def test_failed_transaction_changes_nothing(tmp_path):
    db = MetadataStore(tmp_path / "m.db")
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute("INSERT INTO tags VALUES ('a', 'b')")
        raise RuntimeError("boom")
    assert db.resolve_tag("a") is None
