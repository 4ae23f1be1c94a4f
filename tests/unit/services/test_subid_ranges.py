"""services.userns without root: /etc/subuid parsing, remap forms, auto allocation,
the per-container resolution and dockerd's refusals, the spec fields."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

import pytest

from freight.errors import InvalidArgument
from freight.linux.userns import IdMap, IdRange
from freight.services import userns
from freight.services.model import HostSettings
from freight.snapshots import Mount


def test_parse_subids_skips_comments_and_bad_lines() -> None:
    text = "# comment\nalice:100000:65536\nbad line\nbob:x:1\n1000:200000:65536\n\n"
    assert userns.parse_subids(text) == [
        userns.SubIdRange("alice", 100000, 65536),
        userns.SubIdRange("1000", 200000, 65536),
    ]


def test_ranges_by_name_or_number_stack_from_zero() -> None:
    entries = userns.parse_subids("u:100000:1000\nother:5:5\n1000:300000:500\n")
    mine = userns.ranges_of(entries, "u", 1000)
    assert userns.stacked(mine) == (IdRange(0, 100000, 1000), IdRange(1000, 300000, 500))


def test_first_free_skips_taken_ranges() -> None:
    entries = userns.parse_subids("a:100000:65536\nb:165536:10\nc:300000:5\n")
    assert userns.first_free(entries) == 165546
    assert userns.first_free([]) == 100000
    assert userns.first_free(entries, size=200000) == 300005  # must not overlap c


def _files(tmp_path: Path, subuid: str, subgid: str) -> tuple[Path, Path]:
    (tmp_path / "subuid").write_text(subuid)
    (tmp_path / "subgid").write_text(subgid)
    return tmp_path / "subuid", tmp_path / "subgid"


def test_parse_remap_user_and_numeric_forms(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid())
    group = grp.getgrgid(os.getgid()).gr_name
    su, sg = _files(tmp_path, f"{me.pw_name}:100000:65536\n", f"{group}:200000:65536\n")
    r = userns.parse_remap(f"{me.pw_name}:{group}", su, sg, create_default=False)
    assert r is not None and r.root == (100000, 200000)
    r2 = userns.parse_remap(f"{me.pw_uid}:{os.getgid()}", su, sg, create_default=False)
    assert r2 is not None and r2.idmap == r.idmap
    assert userns.parse_remap("", su, sg) is None


def test_parse_remap_errors(tmp_path: Path) -> None:
    su, sg = _files(tmp_path, "", "")
    with pytest.raises(InvalidArgument, match="Invalid user/group specification"):
        userns.parse_remap("a:b:c", su, sg)
    with pytest.raises(InvalidArgument, match="Error during uid lookup for 'no-such-user-x'"):
        userns.parse_remap("no-such-user-x", su, sg)
    root = pwd.getpwuid(0).pw_name
    with pytest.raises(InvalidArgument, match="No subuid ranges found for user"):
        userns.parse_remap(root, su, sg)


def test_append_and_remove_ranges(tmp_path: Path) -> None:
    path = tmp_path / "subuid"
    path.write_text("keep:1:2")  # no trailing newline
    userns.append_range(path, userns.SubIdRange("dockremap", 100000, 65536))
    assert path.read_text() == "keep:1:2\ndockremap:100000:65536\n"
    userns.remove_ranges(path, "dockremap")
    assert path.read_text() == "keep:1:2\n"


def test_map_flags() -> None:
    assert userns.parse_map_flag("0:100000:65536") == IdRange(0, 100000, 65536)
    for bad in ("0:1", "a:1:2", "0:1:0", "0:4294967295:2"):
        with pytest.raises(InvalidArgument, match="--uidmap"):
            userns.parse_map_flag(bad)
    only_uids = userns.from_json({"UIDMaps": ["0:5000:10"], "GIDMaps": []})
    assert only_uids == IdMap((IdRange(0, 5000, 10),), (IdRange(0, 5000, 10),))
    m = IdMap((IdRange(0, 1, 2),), (IdRange(0, 3, 4),))
    assert userns.from_json(userns.to_json(m)) == m


def test_allocate_finds_the_first_gap() -> None:
    pool = [userns.SubIdRange("containers", 1_000_000, 300_000)]
    used = [IdRange(0, 1_000_000, 65536), IdRange(0, 1_100_000, 65536)]
    assert userns.allocate(pool, used, 65536) == 1_165_536
    assert userns.allocate(pool, used[1:], 65536) == 1_000_000
    with pytest.raises(InvalidArgument, match="no free range of 200000"):
        userns.allocate(pool, used, 200000)


_RANGE = (IdRange(0, 100000, 65536),)
REMAP = userns.Remap("dockremap", "dockremap", IdMap(_RANGE, _RANGE))


def test_resolve_order(tmp_path: Path) -> None:
    su, sg = _files(tmp_path, "containers:2000000:200000\n", "containers:3000000:200000\n")
    assert userns.resolve({}, None, []) is None
    assert userns.resolve({}, REMAP, []) == REMAP.idmap
    assert userns.resolve({"UsernsMode": "host"}, REMAP, []) is None
    explicit = {"FreightIDMappings": {"UIDMaps": ["0:500000:10"]}}
    assert userns.resolve(explicit, REMAP, []) == IdMap(
        (IdRange(0, 500000, 10),), (IdRange(0, 500000, 10),)
    )
    first = userns.resolve({"UsernsMode": "auto"}, None, [], su, sg)
    assert first == IdMap((IdRange(0, 2000000, 65536),), (IdRange(0, 3000000, 65536),))
    second = userns.resolve({"UsernsMode": "auto:size=1000"}, None, [first], su, sg)
    assert second is not None and second.uids == (IdRange(0, 2065536, 1000),)


def test_resolve_refusals(tmp_path: Path) -> None:
    su, sg = _files(tmp_path, "", "")
    with pytest.raises(InvalidArgument, match="invalid USER mode"):
        userns.resolve({"UsernsMode": "bogus"}, None, [])
    both = {"UsernsMode": "host", "FreightIDMappings": {"UIDMaps": ["0:1:1"]}}
    with pytest.raises(InvalidArgument, match="cannot be combined"):
        userns.resolve(both, None, [])
    with pytest.raises(InvalidArgument, match="no subordinate ids"):
        userns.resolve({"UsernsMode": "auto"}, None, [], su, sg)
    with pytest.raises(InvalidArgument, match="size=N"):
        userns.resolve({"UsernsMode": "auto:big"}, None, [], su, sg)


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (HostSettings(privileged=True), "privileged mode is incompatible with user namespaces"),
        (HostSettings(network_mode="host"), "cannot share the host's network namespace"),
        (HostSettings(extra={"PidMode": "host"}), "cannot share the host PID namespace"),
    ],
)
def test_settle_refuses_what_dockerd_refuses(host: HostSettings, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        userns.settle(host, REMAP, [])


def test_settle_records_the_maps_and_host_opts_out() -> None:
    host = HostSettings()
    userns.settle(host, REMAP, [])
    assert host.extra["FreightIDMappings"] == {
        "UIDMaps": ["0:100000:65536"],
        "GIDMaps": ["0:100000:65536"],
    }
    assert userns.container_map(host.extra) == REMAP.idmap
    opted_out = HostSettings(privileged=True, extra={"UsernsMode": "host"})
    userns.settle(opted_out, REMAP, [])  # --privileged --userns=host is fine
    assert "FreightIDMappings" not in opted_out.extra


def test_spec_fields_and_sysfs() -> None:
    fields = userns.spec_fields(REMAP.idmap)
    assert fields["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    sysfs = {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]}
    assert userns.sysfs_in_userns(sysfs) == {
        "destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "ro"],
    }  # fmt: skip
    proc = {"destination": "/proc", "type": "proc", "source": "proc", "options": []}
    assert userns.sysfs_in_userns(proc) is proc


def test_layer_paths_are_rebased_onto_the_idmapped_view() -> None:
    root = "/var/lib/freight/snapshots/snapshots"
    mounts = [
        Mount("overlay", "overlay", [
            f"lowerdir={root}/2/fs:{root}/1/fs", f"upperdir={root}/3/fs",
            f"workdir={root}/3/work", "index=off",
        ])
    ]  # fmt: skip
    assert userns._layer_root(mounts) == root
    moved = userns._rebase(mounts, root, "/run/freight/idmap/abc")
    assert moved[0].options == [
        "lowerdir=/run/freight/idmap/abc/2/fs:/run/freight/idmap/abc/1/fs",
        "upperdir=/run/freight/idmap/abc/3/fs",
        "workdir=/run/freight/idmap/abc/3/work",
        "index=off",
    ]
    bind = [Mount("bind", f"{root}/1/fs", ["rw", "rbind"])]
    assert userns._rebase(bind, userns._layer_root(bind), "/x")[0].source == "/x"


def test_owner_maps_cross_the_namespace_both_ways() -> None:
    from freight.linux.userns import IdMap, IdRange
    from freight.services.userns import OVERFLOW_ID, to_container_owner, to_host_owner

    m = IdMap((IdRange(0, 100000, 65536),), (IdRange(0, 200000, 65536),))
    to_host, to_ctr = to_host_owner(m), to_container_owner(m)
    assert to_host(0, 0) == (100000, 200000)
    assert to_host(1000, 50) == (101000, 200050)
    assert to_host(70000, 70000) == (100000 + OVERFLOW_ID, 200000 + OVERFLOW_ID)  # unmapped: nobody
    assert to_ctr(101000, 200050) == (1000, 50)
    assert to_ctr(0, 0) == (OVERFLOW_ID, OVERFLOW_ID)  # host root is nobody inside
