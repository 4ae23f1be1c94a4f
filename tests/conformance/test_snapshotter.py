"""Snapshotter conformance: the lifecycle every implementation must follow.

No mounting here (see tests/integration/test_snapshots.py); these tests
check metadata, the shape of returned mounts and crash recovery.
"""

from collections.abc import Callable
from pathlib import Path

import pytest

from freight import errors
from freight.snapshots import Kind, Mount, OverlaySnapshotter

IMPLEMENTATIONS = {"overlay": OverlaySnapshotter}

Open = Callable[[], OverlaySnapshotter]


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_snapshotter(request, tmp_path) -> Open:
    factory = IMPLEMENTATIONS[request.param]
    return lambda: factory(tmp_path / "snapshots")


@pytest.fixture
def s(open_snapshotter):
    return open_snapshotter()


def committed_chain(s, n: int) -> list[str]:
    """Commit n layers, each with one file, the way an unpacker does."""
    names, parent = [], None
    for i in range(n):
        s.prepare(f"extract-{i}", parent)
        (s.upper_dir(f"extract-{i}") / f"layer{i}").write_text(str(i))
        name = f"layer-{i}"
        s.commit(name, f"extract-{i}")
        names.append(name)
        parent = name
    return names


def option(mount: Mount, key: str) -> str:
    return next(o.split("=", 1)[1] for o in mount.options if o.startswith(key + "="))


def test_prepare_without_parent_is_a_writable_bind(s):
    (mount,) = s.prepare("a")
    assert mount.type == "bind" and "rw" in mount.options
    assert Path(mount.source) == s.upper_dir("a")
    assert s.mounts("a") == [mount]
    info = s.stat("a")
    assert (info.name, info.parent, info.kind) == ("a", None, Kind.ACTIVE)


def test_commit_makes_an_immutable_named_snapshot(s):
    s.prepare("extract")
    s.commit("layer", "extract")
    assert s.stat("layer").kind is Kind.COMMITTED
    with pytest.raises(errors.NotFound):
        s.stat("extract")
    with pytest.raises(errors.InvalidArgument):
        s.upper_dir("layer")
    with pytest.raises(errors.InvalidArgument):
        s.mounts("layer")
    with pytest.raises(errors.InvalidArgument):
        s.commit("again", "layer")


def test_prepare_on_parents_is_an_overlay_nearest_first(s):
    layers = committed_chain(s, 3)
    (mount,) = s.prepare("ctr", layers[-1])
    assert mount.type == "overlay"
    lowers = option(mount, "lowerdir").split(":")
    assert [sorted(p.name for p in Path(low).iterdir()) for low in lowers] == [
        ["layer2"],
        ["layer1"],
        ["layer0"],
    ]
    assert Path(option(mount, "upperdir")) == s.upper_dir("ctr")
    assert Path(option(mount, "workdir")).is_dir()
    assert s.stat("ctr").parent == "layer-2"


def test_views_are_read_only(s):
    layers = committed_chain(s, 2)
    (one,) = s.view("v1", layers[0])
    assert one.type == "bind" and "ro" in one.options
    assert sorted(p.name for p in Path(one.source).iterdir()) == ["layer0"]
    (two,) = s.view("v2", layers[1])
    assert two.type == "overlay" and not any(o.startswith("upperdir=") for o in two.options)
    (empty,) = s.view("v0")
    assert empty.type == "bind" and "ro" in empty.options
    assert s.stat("v1").kind is Kind.VIEW
    with pytest.raises(errors.InvalidArgument):
        s.commit("x", "v1")
    with pytest.raises(errors.InvalidArgument):
        s.upper_dir("v1")


def test_keys_and_names_are_unique(s):
    s.prepare("a")
    with pytest.raises(errors.AlreadyExists):
        s.prepare("a")
    with pytest.raises(errors.AlreadyExists):
        s.view("a")
    s.prepare("b")
    with pytest.raises(errors.AlreadyExists):
        s.commit("a", "b")
    assert s.stat("b").kind is Kind.ACTIVE  # the failed commit changed nothing


def test_parent_must_exist_and_be_committed(s):
    with pytest.raises(errors.NotFound):
        s.prepare("a", "missing")
    s.prepare("active")
    with pytest.raises(errors.InvalidArgument):
        s.prepare("child", "active")
    with pytest.raises(errors.NotFound):
        s.stat("child")


def test_remove_refuses_parents_with_children(s):
    layers = committed_chain(s, 2)
    with pytest.raises(errors.Conflict):
        s.remove(layers[0])
    s.prepare("ctr", layers[1])
    with pytest.raises(errors.Conflict):
        s.remove(layers[1])
    upper = s.upper_dir("ctr")
    s.remove("ctr")
    assert not upper.exists()
    s.remove(layers[1])
    s.remove(layers[0])
    assert list(s.walk()) == []


def test_missing_keys_are_not_found(s):
    for call in (s.stat, s.mounts, s.remove, s.upper_dir):
        with pytest.raises(errors.NotFound):
            call("missing")
    with pytest.raises(errors.NotFound):
        s.commit("name", "missing")


def test_walk_lists_everything(s):
    committed_chain(s, 2)
    s.prepare("ctr", "layer-1")
    s.view("v", "layer-0")
    assert {(i.name, i.parent, i.kind) for i in s.walk()} == {
        ("layer-0", None, Kind.COMMITTED),
        ("layer-1", "layer-0", Kind.COMMITTED),
        ("ctr", "layer-1", Kind.ACTIVE),
        ("v", "layer-0", Kind.VIEW),
    }


def test_state_survives_reopen(open_snapshotter):
    first = open_snapshotter()
    committed_chain(first, 2)
    mounts = first.prepare("ctr", "layer-1")
    created = first.stat("ctr").created
    first.close()
    again = open_snapshotter()
    assert again.mounts("ctr") == mounts
    assert again.stat("ctr").created == created
    assert (again.upper_dir("ctr").parent.parent / "1" / "fs" / "layer0").exists()


def test_half_made_and_half_removed_directories_are_cleaned_on_open(open_snapshotter, tmp_path):
    s = open_snapshotter()
    s.prepare("keep")
    kept = s.upper_dir("keep")
    s.close()
    snapshots = kept.parent.parent
    (snapshots / "tmp-deadbeef" / "fs").mkdir(parents=True)  # crash inside prepare
    (snapshots / "99" / "fs").mkdir(parents=True)  # crash between row delete and rmtree
    open_snapshotter()
    assert sorted(p.name for p in snapshots.iterdir()) == [kept.parent.name]


def test_uncommitted_extraction_is_never_a_layer(open_snapshotter):
    s = open_snapshotter()
    s.prepare("extract-1")
    (s.upper_dir("extract-1") / "half").write_text("...")
    s.close()  # the daemon dies here
    again = open_snapshotter()
    assert again.stat("extract-1").kind is Kind.ACTIVE
    again.remove("extract-1")  # what the unpacker does on restart


def test_roots_with_overlay_separators_are_refused(tmp_path):
    for bad in ("a:b", "a,b"):
        with pytest.raises(errors.InvalidArgument):
            OverlaySnapshotter(tmp_path / bad)
