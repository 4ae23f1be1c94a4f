"""run/create mount flags become docker's create request."""

from __future__ import annotations

import pytest

from freight.cli.mountflags import apply_mount_flags, parse_mount_csv


def test_mount_csv() -> None:
    assert parse_mount_csv("type=bind,src=/a,dst=/b,readonly,bind-propagation=rslave") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True,
        "BindOptions": {"Propagation": "rslave"},
    }  # fmt: skip
    assert parse_mount_csv("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777") == {
        "Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777},
    }  # fmt: skip
    volume = parse_mount_csv("source=v,target=/v,volume-nocopy,volume-label=a=b")
    assert volume["Type"] == "volume"
    assert volume["VolumeOptions"] == {"NoCopy": True, "Labels": {"a": "b"}}
    with pytest.raises(ValueError, match="unexpected key 'bogus' in 'bogus=1'"):
        parse_mount_csv("bogus=1")
    with pytest.raises(ValueError, match="must be a key=value pair"):
        parse_mount_csv("target")


def test_apply_mount_flags(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config: dict = {}
    host: dict = {}
    opts = {
        "volume": ["/anon", "name:/n:ro", "./rel:/r"],
        "mount": [{"Type": "volume", "Target": "/m"}],
        "tmpfs": ["/run:size=1m", "/t"],
        "volumes_from": ["other:ro"],
    }
    apply_mount_flags(opts, config, host)
    assert config["Volumes"] == {"/anon": {}}
    assert host["Binds"] == ["name:/n:ro", f"{tmp_path}/rel:/r"]
    assert host["Tmpfs"] == {"/run": "size=1m", "/t": ""}
    assert host["Mounts"] == [{"Type": "volume", "Target": "/m"}]
    assert host["VolumesFrom"] == ["other:ro"]
