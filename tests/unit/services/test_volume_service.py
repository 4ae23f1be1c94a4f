"""The volume service and mount-point parsing, on a temp directory (no mounts)."""

from __future__ import annotations

import pytest

from freight.errors import Conflict, InvalidArgument, NotFound
from freight.services.containermounts import parse_bind, parse_mount, parse_tmpfs
from freight.services.volumes import ANONYMOUS_LABEL, VolumeService, matches_labels


def test_create_list_remove_and_reopen(tmp_path) -> None:
    svc = VolumeService(tmp_path)
    v = svc.create("data", labels={"a": "1"})
    assert svc.create("data") is v  # idempotent, as docker
    (tmp_path / "data" / "_data" / "f").write_bytes(b"12345")
    assert svc.size("data") == 5
    assert [u.size for u in svc.usage()] == [5]
    reopened = VolumeService(tmp_path)
    assert reopened.get("data").labels == {"a": "1"}
    reopened.remove("data")
    with pytest.raises(NotFound, match="get data: no such volume"):
        reopened.get("data")
    reopened.remove("data", force=True)  # force hides not-found


def test_half_made_volume_is_cleaned_on_open(tmp_path) -> None:
    (tmp_path / "broken" / "_data").mkdir(parents=True)
    assert VolumeService(tmp_path).list() == []
    assert not (tmp_path / "broken").exists()


def test_in_use_is_a_conflict_with_docker_words(tmp_path) -> None:
    svc = VolumeService(tmp_path)
    svc.create("busy")
    svc.users = lambda name: ["abc"] if name == "busy" else []
    with pytest.raises(Conflict, match=r"remove busy: volume is in use - \[abc\]"):
        svc.remove("busy", force=True)


def test_prune_anonymous_only_unless_all(tmp_path) -> None:
    svc = VolumeService(tmp_path)
    anon = svc.create(anonymous=True)
    svc.create("named", labels={"keep": "no"})
    (tmp_path / anon.name / "_data" / "f").write_bytes(b"x" * 10)
    report = svc.prune()
    assert report.deleted == [anon.name] and report.reclaimed == 10
    assert ANONYMOUS_LABEL in anon.labels
    assert svc.prune(labels=["keep=yes"], all_volumes=True).deleted == []
    assert svc.prune(labels=["!other"], all_volumes=True).deleted == ["named"]


def test_bad_names_and_options(tmp_path) -> None:
    svc = VolumeService(tmp_path)
    with pytest.raises(InvalidArgument, match="includes invalid characters"):
        svc.create("a/b")
    with pytest.raises(InvalidArgument, match='invalid option key: "foo"'):
        svc.create("vv", options={"foo": "bar"})


def test_label_filters() -> None:
    labels = {"a": "1", "b": ""}
    assert matches_labels(labels, ["a", "a=1", "b", "!c"])
    assert not matches_labels(labels, ["a=2"])
    assert not matches_labels(labels, ["!a"])


def test_parse_bind_forms() -> None:
    bind = parse_bind("/host/dir:/ctr:ro,rshared")
    assert (bind.type, bind.source, bind.destination, bind.rw) == (
        "bind",
        "/host/dir",
        "/ctr",
        False,
    )
    assert bind.propagation == "rshared" and bind.create_source
    named = parse_bind("cache:/var/cache:nocopy")
    assert (named.type, named.name, named.copy_data, named.mode) == (
        "volume",
        "cache",
        False,
        "nocopy",
    )
    assert parse_bind("data:/d").mode == "z"
    anon = parse_bind("/only")
    assert anon.type == "volume" and anon.anonymous and anon.destination == "/only"
    assert not parse_bind("/only:ro").rw
    with pytest.raises(InvalidArgument, match="invalid mode: bogus"):
        parse_bind("/a:/b:bogus")
    with pytest.raises(InvalidArgument, match="mount path must be absolute"):
        parse_bind("/a:relative")
    with pytest.raises(InvalidArgument, match="includes invalid characters"):
        parse_bind("bad$name:/x")


def test_parse_mount_and_tmpfs(tmp_path) -> None:
    m = parse_mount({"Type": "bind", "Source": str(tmp_path), "Target": "/t", "ReadOnly": True})
    assert (m.source, m.rw, m.propagation) == (str(tmp_path), False, "rprivate")
    with pytest.raises(InvalidArgument, match="bind source path does not exist"):
        parse_mount({"Type": "bind", "Source": str(tmp_path / "no"), "Target": "/t"})
    v = parse_mount({"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": True}})
    assert v.anonymous and not v.copy_data
    t = parse_mount(
        {"Type": "tmpfs", "Target": "/tm", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o1777}}
    )
    assert t.options == ["size=1024", "mode=1777"]
    with pytest.raises(InvalidArgument, match='type "tmpfs": field Source must not be specified'):
        parse_mount({"Type": "tmpfs", "Source": "x", "Target": "/tm"})
    with pytest.raises(InvalidArgument, match="mount type unknown"):
        parse_mount({"Type": "npipe", "Target": "/x"})
    assert parse_tmpfs("/run", "size=64m,ro").rw is False
