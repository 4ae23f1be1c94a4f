"""apply_layer against ordinary and hostile layers, built here with tarfile."""

import gzip
import io
import lzma
import os
import stat
import tarfile
from pathlib import Path

import pytest

from freight import errors
from freight.archive import apply_layer, compute_diff_id
from freight.oci.digest import Digest

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (mknod, chown, trusted xattrs)")


def entry(
    name,
    data=b"",
    *,
    type=tarfile.REGTYPE,
    linkname="",
    mode=0o644,
    uid=0,
    gid=0,
    mtime=1_700_000_000,
    pax=None,
    dev=(0, 0),
):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid, info.gid, info.mtime = (
        type,
        linkname,
        mode,
        uid,
        gid,
        mtime,
    )
    info.size = len(data) if type == tarfile.REGTYPE else 0
    info.devmajor, info.devminor = dev
    info.pax_headers = pax or {}
    return info, data


def directory(name, mode=0o755, **kw):
    return entry(name, type=tarfile.DIRTYPE, mode=mode, **kw)


def symlink(name, target):
    return entry(name, type=tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name, target):
    return entry(name, type=tarfile.LNKTYPE, linkname=target)


def layer(*entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def apply(data: bytes, target: Path, **kw) -> int:
    return apply_layer(io.BytesIO(data), target, **kw)


@pytest.fixture
def target(tmp_path) -> Path:
    t = tmp_path / "rootfs"
    t.mkdir()
    return t


@pytest.fixture
def outside(tmp_path) -> Path:
    o = tmp_path / "outside"
    o.mkdir()
    (o / "secret").write_text("do not touch")
    return o


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


# --- ordinary layers ---------------------------------------------------------


def test_extracts_files_dirs_links_and_metadata(target):
    data = layer(
        directory("etc", mode=0o750, mtime=1_600_000_000),
        entry("etc/passwd", b"root:x:0:0\n", mode=0o4755, uid=12, gid=34),
        symlink("etc/link", "passwd"),
        hardlink("etc/hard", "etc/passwd"),
        entry("fifo", type=tarfile.FIFOTYPE, mode=0o600),
    )
    size = apply(data, target)
    assert size == len(data)
    passwd = target / "etc/passwd"
    assert passwd.read_text() == "root:x:0:0\n"
    st = passwd.stat()
    assert stat.S_IMODE(st.st_mode) == 0o4755  # setuid kept
    assert st.st_mtime == 1_700_000_000
    assert os.readlink(target / "etc/link") == "passwd"
    assert (target / "etc/hard").stat().st_ino == st.st_ino
    assert stat.S_ISFIFO((target / "fifo").lstat().st_mode)
    assert stat.S_IMODE((target / "etc").stat().st_mode) == 0o750
    assert (target / "etc").stat().st_mtime == 1_600_000_000  # set after its children
    if ROOT:
        assert (st.st_uid, st.st_gid) == (12, 34)


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress, lambda d: d])
def test_compression_is_detected_by_magic(target, compress):
    data = layer(entry("a", b"A"))
    assert apply(compress(data), target) == len(data)
    assert (target / "a").read_bytes() == b"A"


def test_zstd_layers(target):
    zstandard = pytest.importorskip("zstandard")
    data = layer(entry("z", b"Z"))
    apply(zstandard.ZstdCompressor().compress(data), target)
    assert (target / "z").read_bytes() == b"Z"


def test_later_entries_replace_earlier_ones(target):
    apply(layer(directory("x"), entry("x/inner", b"1"), entry("y", b"file")), target)
    apply(layer(entry("x", b"now a file"), directory("y")), target)
    assert (target / "x").read_bytes() == b"now a file"
    assert (target / "y").is_dir()


def test_symlinked_dirs_are_followed_inside_the_root(target):
    apply(layer(directory("usr"), directory("usr/lib"), symlink("lib", "/usr/lib")), target)
    apply(layer(entry("lib/libc.so", b"elf")), target)
    assert (target / "usr/lib/libc.so").read_bytes() == b"elf"


def test_xattrs_are_applied_but_overlay_ones_dropped(target):
    pax = {"SCHILY.xattr.user.note": "hi", "SCHILY.xattr.trusted.overlay.opaque": "y"}
    apply(layer(directory("d", pax=pax)), target)
    try:
        assert os.getxattr(target / "d", "user.note") == b"hi"
    except OSError:
        pytest.skip("filesystem without user xattrs")
    with pytest.raises(OSError):
        os.getxattr(target / "d", "trusted.overlay.opaque")


def test_expected_diff_id_is_checked(target):
    data = layer(entry("a", b"A"))
    assert compute_diff_id(io.BytesIO(gzip.compress(data))) == Digest.of(data)
    apply(gzip.compress(data), target, expected_diff_id=Digest.of(data))
    with pytest.raises(errors.InvalidArgument, match="diff id"):
        apply(data, target, expected_diff_id=Digest.of(b"other"))


# --- whiteouts --------------------------------------------------------------


def lower(target):
    apply(
        layer(
            directory("etc"),
            entry("etc/motd", b"hi"),
            entry("etc/keep", b"k"),
            directory("cache"),
            entry("cache/old", b"o"),
        ),
        target,
    )


def test_whiteouts_delete_mode(target):
    lower(target)
    apply(
        layer(
            entry("etc/.wh.motd"),
            directory("cache"),
            entry("cache/.wh..wh..opq"),
            entry("cache/new", b"n"),
        ),
        target,
        whiteouts="delete",
    )
    assert files_under(target) == {"etc", "etc/keep", "cache", "cache/new"}


@needs_root
def test_whiteouts_overlay_mode(target):
    apply(
        layer(entry("etc/.wh.motd"), directory("cache"), entry("cache/.wh..wh..opq")),
        target,
        whiteouts="overlay",
    )
    st = (target / "etc/motd").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(target / "cache", "trusted.overlay.opaque") == b"y"
    assert not (target / "etc/.wh.motd").exists()


@pytest.mark.parametrize("name", ["../.wh.x", "etc/.wh..", "etc/.wh."])
def test_bad_whiteouts_are_refused(target, name):
    with pytest.raises(errors.InvalidArgument, match="layer entry"):
        apply(layer(entry(name)), target, whiteouts="delete")


# --- hostile layers -------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "./../../escape"])
def test_dotdot_names_are_refused(target, outside, name):
    with pytest.raises(errors.InvalidArgument, match="escapes"):
        apply(layer(entry(name, b"evil")), target)
    assert not (target.parent / "escape").exists()


def test_absolute_names_are_confined(target):
    apply(layer(entry("/abs", b"inside")), target)
    assert (target / "abs").read_bytes() == b"inside"


def test_symlink_to_root_then_write_through_it(target, outside):
    passwd = Path("/etc/passwd").read_bytes()
    apply(layer(symlink("x", "/"), entry("x/etc/passwd", b"evil")), target)
    assert Path("/etc/passwd").read_bytes() == passwd
    assert (target / "etc/passwd").read_bytes() == b"evil"


def test_symlink_climbing_out_then_write_through_it(target, outside):
    apply(layer(symlink("up", "../../../../../.."), entry(f"up/{outside}/secret", b"evil")), target)
    assert (outside / "secret").read_text() == "do not touch"
    assert (target / str(outside).lstrip("/") / "secret").read_bytes() == b"evil"


def test_relative_symlink_to_outside_dir_is_confined(target, outside):
    rel = os.path.relpath(outside, target)
    apply(layer(symlink("o", rel), entry("o/secret", b"evil")), target)
    assert (outside / "secret").read_text() == "do not touch"


def test_symlink_as_final_component_is_replaced_not_followed(target, outside):
    os.symlink(outside / "secret", target / "f")
    apply(layer(entry("f", b"new")), target)
    assert (outside / "secret").read_text() == "do not touch"
    assert not (target / "f").is_symlink()


def test_symlink_loops_are_refused(target):
    with pytest.raises(errors.InvalidArgument, match="symbolic links"):
        apply(layer(symlink("a", "b"), symlink("b", "a"), entry("a/x", b"")), target)


def test_hardlink_to_host_file_is_refused(target):
    with pytest.raises(errors.InvalidArgument, match="hard link"):
        apply(layer(hardlink("shadow", "/etc/shadow")), target)
    with pytest.raises(errors.InvalidArgument, match="escapes"):
        apply(layer(hardlink("shadow", "../../../../etc/shadow")), target)
    assert not (target / "shadow").exists()


def test_hardlink_through_symlink_stays_inside(target, outside):
    with pytest.raises(errors.InvalidArgument, match="hard link"):
        apply(layer(symlink("o", str(outside)), hardlink("h", "o/secret")), target)


def test_hardlink_to_missing_file_is_refused(target):
    with pytest.raises(errors.InvalidArgument, match="hard link"):
        apply(layer(hardlink("h", "missing")), target)


def test_device_nodes_only_when_privileged(target):
    data = layer(entry("dev/null", type=tarfile.CHRTYPE, mode=0o666, dev=(1, 3)), entry("ok", b""))
    apply(data, target, privileged=False)
    assert not (target / "dev/null").exists() and (target / "ok").exists()
    if ROOT:
        apply(data, target, privileged=True)
        assert (target / "dev/null").lstat().st_rdev == os.makedev(1, 3)


def test_entry_count_limit_names_the_entry(target):
    data = layer(*[entry(f"f{i}") for i in range(20)])
    with pytest.raises(errors.InvalidArgument, match=r"'f10'.*more than 10 entries"):
        apply(data, target, max_entries=10)


def test_size_limit_stops_decompression_bombs(target):
    bomb = gzip.compress(layer(entry("zeros", bytes(10 << 20))))
    assert len(bomb) < 100_000
    with pytest.raises(errors.InvalidArgument, match="larger than"):
        apply(bomb, target, max_size=1 << 20)


@pytest.mark.parametrize("cut", [100, 700, 1500, -1100])
def test_truncated_gzip_is_invalid(target, cut):
    data = gzip.compress(layer(entry("a", os.urandom(2000)), entry("b", b"B")), mtime=0)
    with pytest.raises(errors.InvalidArgument, match="truncated"):
        apply(data[:cut], target)


@pytest.mark.parametrize("cut", [512 + 100, 512 + 2048 + 200])
def test_truncated_plain_tar_is_invalid(target, cut):
    data = layer(entry("a", os.urandom(2000)), entry("b", b"B" * 100))
    with pytest.raises(errors.InvalidArgument, match="truncated"):
        apply(data[:cut], target)


def test_garbage_is_invalid(target):
    with pytest.raises(errors.InvalidArgument, match="truncated or corrupt"):
        apply(b"this is not a tar file at all" * 40, target)
    with pytest.raises(errors.InvalidArgument, match="truncated or corrupt"):
        apply(b"", target)


def test_parent_that_is_a_file_is_refused(target):
    with pytest.raises(errors.InvalidArgument, match="not a directory"):
        apply(layer(entry("f", b""), entry("f/child", b"")), target)
