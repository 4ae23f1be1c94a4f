"""Tar in and out of a root that holds hostile symlinks (openat2 RESOLVE_IN_ROOT)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from freight.archive import inroot
from freight.errors import InvalidArgument
from freight.linux import openat2

pytestmark = pytest.mark.skipif(not openat2.available(), reason="kernel without openat2")


def _tar(*entries: tuple[str, str, bytes | str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))  # type: ignore[arg-type]
    buf.seek(0)
    return buf


def _members(out: io.BytesIO) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        return tar.getmembers()


@pytest.fixture
def root(tmp_path):
    (tmp_path / "root" / "tmp").mkdir(parents=True)
    fd = os.open(tmp_path / "root", os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path / "root", fd
    os.close(fd)


def test_extract_through_an_escaping_symlink_stays_inside(tmp_path, root) -> None:
    path, fd = root
    outside = tmp_path / "outside"
    outside.mkdir()
    (path / "tmp" / "esc").symlink_to(outside)
    (path / "tmp" / "up").symlink_to("../../../../..")
    archive = _tar(("up/etc-file", "file", b"1"), ("esc/x", "file", b"2"), ("l", "sym", "/"))
    inroot.extract(archive, fd, "/tmp", inroot.ExtractOptions(same_owner=False))
    assert list(outside.iterdir()) == []
    assert (path / "etc-file").read_bytes() == b"1"
    assert (path / str(outside).lstrip("/") / "x").read_bytes() == b"2"
    assert os.readlink(path / "tmp" / "l") == "/"


def test_names_climbing_out_are_refused(root) -> None:
    _, fd = root
    with pytest.raises(InvalidArgument, match="escapes"):
        inroot.extract(_tar(("../../evil", "file", b"x")), fd, "/tmp", inroot.ExtractOptions())


def test_malformed_and_empty_archives(root) -> None:
    _, fd = root
    with pytest.raises(InvalidArgument, match="archive/tar: invalid tar header"):
        inroot.extract(io.BytesIO(b"not a tar" * 100), fd, "/tmp", inroot.ExtractOptions())
    assert inroot.extract(io.BytesIO(b""), fd, "/tmp", inroot.ExtractOptions()) == 0


def test_pack_rebases_and_does_not_follow_the_last_link(root) -> None:
    path, fd = root
    (path / "tmp" / "d").mkdir()
    (path / "tmp" / "d" / "f").write_text("f")
    (path / "tmp" / "link").symlink_to("/tmp/d")
    out = io.BytesIO()
    inroot.pack(out, fd, "/tmp/d", "renamed")
    assert [m.name for m in _members(out)] == ["renamed", "renamed/f"]
    out = io.BytesIO()
    inroot.pack(out, fd, "/tmp/link", "link")
    [member] = _members(out)
    assert member.issym() and member.linkname == "/tmp/d"
    out = io.BytesIO()
    inroot.pack(out, fd, "/tmp/d/.", ".")
    assert [m.name for m in _members(out)] == [".", "f"]


def test_resolve_and_rename() -> None:
    assert inroot.renamed("a/b", ("a", "x")) == "x/b"
    assert inroot.renamed("b", (".", "x")) == "x/b"
    assert inroot.renamed("other", ("a", "x")) == "other"
