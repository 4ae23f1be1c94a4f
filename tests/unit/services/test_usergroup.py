"""User lookup from an image's own /etc/passwd and /etc/group, confined to its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.errors import InvalidArgument
from freight.services.rootpath import resolve_in_root
from freight.services.usergroup import ExecUser, resolve_user

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n"
GROUP = "root:x:0:\nwheel:x:10:root,bob\nstaff:x:50:bob\nbob:x:1000:\nnogroup:x:65534:\n"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(PASSWD)
    (tmp_path / "etc/group").write_text(GROUP)
    return tmp_path


def test_default_is_root_with_its_groups(rootfs):
    assert resolve_user(rootfs, "") == ExecUser(0, 0, [10], "/root")


def test_name_uid_and_group(rootfs):
    assert resolve_user(rootfs, "bob") == ExecUser(1000, 1000, [10, 50], "/home/bob")
    assert resolve_user(rootfs, "1000:staff").gid == 50
    assert resolve_user(rootfs, "nobody:nogroup") == ExecUser(65534, 65534, [], "/home")


def test_unknown_numeric_uid_gets_gid_0(rootfs):
    assert resolve_user(rootfs, "4242") == ExecUser(4242, 0, [], "/")
    assert resolve_user(rootfs, "4242:4343").gid == 4343


def test_unknown_name_is_a_clear_error(rootfs):
    with pytest.raises(InvalidArgument, match="unable to find user alice"):
        resolve_user(rootfs, "alice")
    with pytest.raises(InvalidArgument, match="unable to find group nope"):
        resolve_user(rootfs, "bob:nope")


def test_passwd_symlink_to_host_path_stays_inside(rootfs, tmp_path):
    (rootfs / "etc/passwd").unlink()
    (rootfs / "etc/passwd").symlink_to("/etc/../../etc/shadow-of-image")
    (rootfs / "etc/shadow-of-image").write_text("root:x:0:0::/r00t:/bin/sh\n")
    assert resolve_user(rootfs, "").home == "/r00t"


def test_resolve_in_root_never_leaves(tmp_path):
    (tmp_path / "a").symlink_to("../../../../")
    (tmp_path / "b").symlink_to("/etc")
    assert resolve_in_root(tmp_path, "/a/etc/passwd") == tmp_path / "etc/passwd"
    assert resolve_in_root(tmp_path, "/b/x") == tmp_path / "etc/x"
    assert resolve_in_root(tmp_path, "/../../x") == tmp_path / "x"
