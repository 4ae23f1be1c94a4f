"""builder.cachefrom: a step matched against a cache image's history."""

from __future__ import annotations

from freight.builder import cachefrom
from freight.oci.digest import Digest
from freight.oci.image import HistoryEntry, ImageConfig
from freight.services.images import NewLayer

L1, L2, L3 = (Digest("sha256:" + c * 64) for c in "123")


def _entry(by: str, empty: bool = False, at: str = "2024-01-01T00:00:00Z") -> HistoryEntry:
    return HistoryEntry(created=at, created_by=by, empty_layer=empty or None)


def _source(history: list[HistoryEntry], diff_ids: list[Digest]) -> cachefrom.CacheSource:
    config = ImageConfig(
        architecture="amd64", os="linux", history=history, rootfs_diff_ids=diff_ids
    )
    layers = [NewLayer(d, 10, "application/vnd.oci.image.layer.v1.tar", d) for d in diff_ids]
    return cachefrom.CacheSource("sha256:" + "f" * 64, config, layers)


BASE = [_entry("ADD rootfs")]
SOURCE = _source(
    [*BASE, _entry("ENV A=1", empty=True), _entry("COPY x in /x"), _entry("RUN make")],
    [L1, L2, L3],
)


def test_a_step_continuing_the_history_matches() -> None:
    parent = ImageConfig(history=BASE, rootfs_diff_ids=[L1])
    match = cachefrom.find([SOURCE], parent, "ENV A=1")
    assert match is not None and match.entry == 1 and not match.last
    config, layers = cachefrom.restored(parent, match, below=1)
    assert config.history == SOURCE.config.history[:2]
    assert config.rootfs_diff_ids == [L1] and [la.diff_id for la in layers] == [L1]

    parent = config
    match = cachefrom.find([SOURCE], parent, "COPY x in /x")
    assert match is not None
    config, layers = cachefrom.restored(parent, match, below=1)
    assert config.rootfs_diff_ids == [L1, L2] and len(layers) == 2
    match = cachefrom.find([SOURCE], config, "RUN make")
    assert match is not None and match.last


def test_another_instruction_or_another_parent_does_not_match() -> None:
    parent = ImageConfig(history=BASE, rootfs_diff_ids=[L1])
    assert cachefrom.find([SOURCE], parent, "ENV A=2") is None
    other_time = ImageConfig(
        history=[_entry("ADD rootfs", at="2025-01-01T00:00:00Z")], rootfs_diff_ids=[L1]
    )
    assert cachefrom.find([SOURCE], other_time, "ENV A=1") is None  # history entries differ
    other_layer = ImageConfig(history=BASE, rootfs_diff_ids=[L3])
    assert cachefrom.find([SOURCE], other_layer, "ENV A=1") is None
    whole = SOURCE.config
    assert cachefrom.find([SOURCE], whole, "RUN more") is None  # nothing after its end
