"""builder.copyfiles: docker's COPY/ADD semantics, hostile trees, ADD archives and URLs, digests.

We run as root, so owners, device nodes and chown are tested in tmp dirs.
"""

from __future__ import annotations

import bz2
import email.utils
import gzip
import hashlib
import http.server
import io
import lzma
import os
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from freight import errors
from freight.builder import copyfiles
from freight.builder.copyfiles import CopyOptions, StatCache

OLD = 1_600_000_000  # an mtime safely in the past (not "racy" for the stat cache)
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod)")


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    """A context: a.txt, b.txt, dir/{c.txt, sub/d.txt, link -> c.txt}, empty/."""
    c = tmp_path / "ctx"
    (c / "dir" / "sub").mkdir(parents=True)
    (c / "empty").mkdir()
    (c / "a.txt").write_text("A")
    (c / "b.txt").write_text("B")
    (c / "dir" / "c.txt").write_text("C")
    (c / "dir" / "sub" / "d.txt").write_text("D")
    (c / "dir" / "link").symlink_to("c.txt")
    for p in [*c.rglob("*"), c]:
        os.utime(p, (OLD, OLD), follow_symlinks=False)
    return c


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "srv").mkdir()
    (r / "etc" / "hosts").write_text("in the image\n")
    return r


def tree(root: Path) -> dict[str, str]:
    """path -> content ("<dir>", "-> target" for symlinks) of everything below root."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_dir():
            out[rel] = "<dir>"
        else:
            out[rel] = p.read_text()
    return out


def run_copy(ctx: Path, rootfs: Path, sources: list[str], dest: str, workdir: str = "/", **kw):
    copyfiles.copy(ctx, sources, rootfs, dest, workdir, CopyOptions(**kw))


# directory semantics ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sources", "dest", "workdir", "expected"),
    [
        (["a.txt"], "/x", "/", {"x": "A"}),  # file -> file (renamed)
        (["a.txt"], "/d/", "/", {"d": "<dir>", "d/a.txt": "A"}),  # file -> dir/
        (["a.txt"], "/srv", "/", {"srv": "<dir>", "srv/a.txt": "A"}),  # file -> existing dir
        (["a.txt"], "x", "/srv", {"srv": "<dir>", "srv/x": "A"}),  # relative to WORKDIR
        (["a.txt"], ".", "/w", {"w": "<dir>", "w/a.txt": "A"}),  # "." is the WORKDIR
        (["/a.txt"], "y", "/", {"y": "A"}),  # absolute source: from the context root
        (
            ["dir"],
            "/d",
            "/",
            {
                "d": "<dir>",
                "d/c.txt": "C",
                "d/link": "-> c.txt",
                "d/sub": "<dir>",
                "d/sub/d.txt": "D",
            },
        ),  # a directory copies its contents
        (["dir/sub"], "/srv/", "/", {"srv": "<dir>", "srv/d.txt": "D"}),
        (["*.txt"], "/m/", "/", {"m": "<dir>", "m/a.txt": "A", "m/b.txt": "B"}),  # glob
        (["[a]?txt"], "/g", "/", {"g": "A"}),  # one glob match: like a single file
        (["d*/s*/*.txt"], "/g/", "/", {"g": "<dir>", "g/d.txt": "D"}),  # globs per component
        (["a.txt", "b.txt"], "/srv", "/", {"srv": "<dir>", "srv/a.txt": "A", "srv/b.txt": "B"}),
        (["empty"], "/e", "/", {"e": "<dir>"}),
        (["."], "/all/", "/", None),  # the whole context
    ],
)
def test_directory_semantics(ctx, rootfs, sources, dest, workdir, expected) -> None:
    before = tree(rootfs)
    run_copy(ctx, rootfs, sources, dest, workdir)
    after = tree(rootfs)
    if expected is None:
        assert tree(rootfs / "all") == tree(ctx)
        return
    # what is new, plus the existing directories it went into
    changed = {k: v for k, v in after.items() if k not in before}
    changed.update({k: after[k] for k in before if any(n.startswith(k + "/") for n in changed)})
    assert changed == expected


def test_more_than_one_source_needs_a_directory(ctx, rootfs) -> None:
    with pytest.raises(errors.InvalidArgument, match="more than one source file, the destination"):
        run_copy(ctx, rootfs, ["a.txt", "b.txt"], "/nodir")
    with pytest.raises(errors.InvalidArgument, match="When using COPY with more than one"):
        run_copy(ctx, rootfs, ["*.txt"], "/nodir")  # two glob matches count as two
    with pytest.raises(errors.InvalidArgument, match="When using ADD"):
        run_copy(ctx, rootfs, ["*.txt"], "/nodir", expand_archives=True)
    assert not (rootfs / "nodir").exists()


def test_missing_source_is_named(ctx, rootfs) -> None:
    with pytest.raises(errors.NotFound, match=r'"/nope.txt": not found'):
        run_copy(ctx, rootfs, ["nope.txt"], "/x")
    with pytest.raises(errors.NotFound, match=r'"/\*.md": not found'):
        run_copy(ctx, rootfs, ["*.md"], "/x/")
    with pytest.raises(errors.NotFound):
        copyfiles.hash_sources(ctx, ["a.txt", "nope"], CopyOptions())


def test_copy_refuses_urls(ctx, rootfs) -> None:
    with pytest.raises(errors.InvalidArgument, match="source can't be a URL for COPY"):
        run_copy(ctx, rootfs, ["http://127.0.0.1:9/x"], "/x")


def test_overwrites_files_and_merges_directories(ctx, rootfs) -> None:
    (rootfs / "srv" / "old.txt").write_text("old")
    (rootfs / "srv" / "c.txt").write_text("replaced")
    (rootfs / "srv" / "sub").write_text("a file where the source has a directory")
    run_copy(ctx, rootfs, ["dir"], "/srv")
    assert (rootfs / "srv" / "old.txt").read_text() == "old"
    assert (rootfs / "srv" / "c.txt").read_text() == "C"
    assert (rootfs / "srv" / "sub" / "d.txt").read_text() == "D"


def test_directory_onto_a_file_is_refused(ctx, rootfs) -> None:
    with pytest.raises(errors.InvalidArgument, match="non-directory"):
        run_copy(ctx, rootfs, ["dir"], "/etc/hosts")


def test_parents_keeps_the_source_directories(ctx, rootfs) -> None:
    run_copy(ctx, rootfs, ["dir/sub/d.txt", "a.txt"], "/p/", parents=True)
    assert (rootfs / "p/dir/sub/d.txt").read_text() == "D"
    assert (rootfs / "p/a.txt").read_text() == "A"
    run_copy(ctx, rootfs, ["./dir/./sub"], "/q/", parents=True)  # the /./ pivot
    assert (rootfs / "q/sub/d.txt").read_text() == "D"


def test_exclude(ctx, rootfs) -> None:
    run_copy(ctx, rootfs, ["."], "/x/", exclude=("*.txt", "!b.txt", "dir/sub"))
    assert tree(rootfs / "x") == {
        "b.txt": "B",
        "dir": "<dir>",
        "dir/c.txt": "C",
        "dir/link": "-> c.txt",
        "empty": "<dir>",
    }


# symlinks: nothing is read or written outside the roots -------------------------------------


def test_source_symlink_pointing_out_resolves_inside_the_context(ctx, rootfs, tmp_path) -> None:
    # Attack: ctx/esc -> /<host>/secret, COPY esc /x. Safe outcome: the link is
    # followed inside the context, where nothing is there: not found.
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    (ctx / "esc").symlink_to(secret)
    with pytest.raises(errors.NotFound):
        run_copy(ctx, rootfs, ["esc"], "/x")
    # ... and where the context has that path, it is the context's file that is copied.
    inside = ctx / str(secret).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("context file")
    run_copy(ctx, rootfs, ["esc"], "/x")
    assert (rootfs / "x").read_text() == "context file"


def test_relative_symlink_climbing_out_stays_in(ctx, rootfs, tmp_path) -> None:
    # Attack: ctx/up -> ../../../../outside. Safe outcome: ".." stops at the context root.
    (tmp_path / "outside").write_text("host")
    (ctx / "up").symlink_to("../../../../outside")
    with pytest.raises(errors.NotFound):
        run_copy(ctx, rootfs, ["up"], "/x")


def test_dotdot_source_is_clamped_to_the_context(ctx, rootfs, tmp_path) -> None:
    # Attack: COPY ../outside.txt. Safe outcome: read as /outside.txt of the context (missing).
    (tmp_path / "outside.txt").write_text("host")
    with pytest.raises(errors.NotFound, match='"/outside.txt": not found'):
        run_copy(ctx, rootfs, ["../outside.txt"], "/x")
    run_copy(ctx, rootfs, ["../../a.txt"], "/y")  # clamped: the context's a.txt
    assert (rootfs / "y").read_text() == "A"


def test_source_directory_symlink_is_followed_but_links_below_are_copied(ctx, rootfs) -> None:
    (ctx / "dirlink").symlink_to("/dir")  # absolute: / is the context root
    run_copy(ctx, rootfs, ["dirlink"], "/d")
    assert (rootfs / "d" / "c.txt").read_text() == "C"
    assert os.readlink(rootfs / "d" / "link") == "c.txt"  # kept as a symlink


def test_symlink_below_a_source_dir_pointing_out_is_not_followed(ctx, rootfs, tmp_path) -> None:
    # Attack: ctx/dir/out -> /<host>/secret inside a copied directory. Safe
    # outcome: copied as the symlink it is; its target is never read.
    (tmp_path / "secret").write_text("host secret")
    (ctx / "dir" / "out").symlink_to(tmp_path / "secret")
    run_copy(ctx, rootfs, ["dir"], "/d")
    assert os.readlink(rootfs / "d" / "out") == str(tmp_path / "secret")
    digest = copyfiles.hash_sources(ctx, ["dir"], CopyOptions())
    (tmp_path / "secret").write_text("changed secret")
    assert copyfiles.hash_sources(ctx, ["dir"], CopyOptions()) == digest  # never read


def test_destination_symlink_in_the_image_cannot_redirect_writes(ctx, rootfs, tmp_path) -> None:
    # Attack: the image has /srv/out -> /<host dir>; COPY a.txt /srv/out/. Safe
    # outcome: the link resolves inside the rootfs, the host dir stays empty.
    host = tmp_path / "host"
    host.mkdir()
    (rootfs / "srv" / "out").symlink_to(host)
    run_copy(ctx, rootfs, ["a.txt"], "/srv/out/")
    assert list(host.iterdir()) == []
    assert (rootfs / str(host).lstrip("/") / "a.txt").read_text() == "A"


def test_destination_relative_symlink_climbing_out(ctx, rootfs, tmp_path) -> None:
    # Attack: /etc/up -> ../../../../../<host>; COPY dir /etc/up/x. Safe outcome: in the rootfs.
    host = tmp_path / "host2"
    host.mkdir()
    (rootfs / "etc" / "up").symlink_to("../../../../../../../" + str(host).lstrip("/"))
    run_copy(ctx, rootfs, ["dir"], "/etc/up/x")
    assert list(host.iterdir()) == []
    assert (rootfs / str(host).lstrip("/") / "x" / "c.txt").read_text() == "C"


def test_destination_file_symlink_is_replaced_not_followed(ctx, rootfs, tmp_path) -> None:
    # Attack: the image has /srv/d/c.txt -> /<host file>; COPY dir /srv/d.
    # Safe outcome: the link is replaced by the file; the host file is untouched.
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (rootfs / "srv" / "d").mkdir()
    (rootfs / "srv" / "d" / "c.txt").symlink_to(victim)
    run_copy(ctx, rootfs, ["dir"], "/srv/d")
    assert victim.read_text() == "untouched"
    assert (rootfs / "srv" / "d" / "c.txt").read_text() == "C"
    assert not (rootfs / "srv" / "d" / "c.txt").is_symlink()


# metadata ------------------------------------------------------------------------------------


@ROOT_ONLY
def test_chown_and_chmod(ctx, rootfs) -> None:
    run_copy(ctx, rootfs, ["dir"], "/new/parent/d", chown=(1234, 5678), chmod=0o640)
    for p in ["new", "new/parent"]:  # created parents: 0755, the chown ids (as BuildKit)
        st = os.stat(rootfs / p)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, 1234, 5678)
    for p in ["new/parent/d", "new/parent/d/c.txt", "new/parent/d/sub", "new/parent/d/sub/d.txt"]:
        st = os.stat(rootfs / p)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 1234, 5678), p
    st = os.lstat(rootfs / "new/parent/d/link")
    assert (st.st_uid, st.st_gid) == (1234, 5678)


@ROOT_ONLY
def test_owners_modes_and_mtimes_kept_without_chown(ctx, rootfs) -> None:
    os.chown(ctx / "dir" / "c.txt", 42, 43)
    os.chmod(ctx / "dir" / "c.txt", 0o4751)
    os.utime(ctx / "dir" / "c.txt", (OLD, OLD + 5))
    run_copy(ctx, rootfs, ["dir"], "/d")
    st = os.stat(rootfs / "d" / "c.txt")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (42, 43, 0o4751)
    assert st.st_mtime == OLD + 5
    assert os.stat(rootfs / "d" / "sub").st_mtime == OLD  # directories after their contents
    assert os.lstat(rootfs / "d" / "link").st_mtime == OLD
    new_dir = os.stat(rootfs / "d")  # the destination directory itself: 0755, root
    assert (stat.S_IMODE(new_dir.st_mode), new_dir.st_uid) == (0o755, 0)


def test_parents_created_without_chown_are_root_0755(ctx, rootfs) -> None:
    run_copy(ctx, rootfs, ["a.txt"], "/one/two/three")
    st = os.stat(rootfs / "one" / "two")
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o755, os.geteuid())


def test_hard_links_kept(ctx, rootfs) -> None:
    os.link(ctx / "dir" / "c.txt", ctx / "dir" / "sub" / "hard")
    run_copy(ctx, rootfs, ["dir"], "/d")
    assert os.stat(rootfs / "d" / "c.txt").st_ino == os.stat(rootfs / "d/sub/hard").st_ino


@ROOT_ONLY
def test_devices_and_fifos_copied_as_they_are(ctx, rootfs) -> None:
    os.mkfifo(ctx / "dir" / "fifo")
    os.mknod(ctx / "dir" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    run_copy(ctx, rootfs, ["dir"], "/d")
    assert stat.S_ISFIFO(os.lstat(rootfs / "d" / "fifo").st_mode)
    st = os.lstat(rootfs / "d" / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert st.st_mode == os.lstat(ctx / "dir" / "null").st_mode
    run_copy(ctx, rootfs, ["dir/fifo"], "/f")  # a top-level fifo: not opened, recreated
    assert stat.S_ISFIFO(os.lstat(rootfs / "f").st_mode)
    copyfiles.hash_sources(ctx, ["dir", "dir/fifo"], CopyOptions())  # never blocks on it


def test_xattrs_kept_best_effort(ctx, rootfs) -> None:
    try:
        os.setxattr(ctx / "a.txt", "user.freight", b"yes")
    except OSError:
        pytest.skip("no user xattrs on this file system")
    run_copy(ctx, rootfs, ["a.txt"], "/x")
    assert os.getxattr(rootfs / "x", "user.freight") == b"yes"


# ADD: archives -------------------------------------------------------------------------------


def make_tar(
    entries: list[tuple[str, bytes | None, Callable[[tarfile.TarInfo], None] | None]],
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, tweak in entries:
            info = tarfile.TarInfo(name)
            info.mtime = OLD
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            else:
                info.size = len(data)
                info.mode = 0o644
            if tweak:
                tweak(info)
            tar.addfile(info, io.BytesIO(data) if data is not None and info.isreg() else None)
    return buf.getvalue()


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda d: d,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": _zstd,
}
SAMPLE_TAR = make_tar([("top", None, None), ("top/f.txt", b"F", None), ("g.txt", b"G", None)])


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_add_extracts_local_archives(ctx, rootfs, kind: str) -> None:
    (ctx / "pkg.tar").write_bytes(COMPRESSORS[kind](SAMPLE_TAR))
    run_copy(ctx, rootfs, ["pkg.tar"], "/opt", expand_archives=True)  # no trailing /: still a dir
    assert (rootfs / "opt" / "top" / "f.txt").read_text() == "F"
    assert (rootfs / "opt" / "g.txt").read_text() == "G"
    run_copy(ctx, rootfs, ["pkg.tar"], "/copied")  # COPY never extracts
    assert (rootfs / "copied").read_bytes() == COMPRESSORS[kind](SAMPLE_TAR)


def test_add_of_a_compressed_non_archive_is_copied(ctx, rootfs) -> None:
    (ctx / "notes.gz").write_bytes(gzip.compress(b"just text, no tar"))
    (ctx / "zeros").write_bytes(bytes(2048))
    run_copy(ctx, rootfs, ["notes.gz", "zeros", "a.txt"], "/x/", expand_archives=True)
    assert gzip.decompress((rootfs / "x" / "notes.gz").read_bytes()) == b"just text, no tar"
    assert (rootfs / "x" / "zeros").read_bytes() == bytes(2048)
    assert (rootfs / "x" / "a.txt").read_text() == "A"


@ROOT_ONLY
def test_add_archive_with_chown(ctx, rootfs) -> None:
    (ctx / "pkg.tar").write_bytes(SAMPLE_TAR)
    run_copy(ctx, rootfs, ["pkg.tar"], "/opt/", expand_archives=True, chown=(7, 8))
    st = os.stat(rootfs / "opt" / "top" / "f.txt")
    assert (st.st_uid, st.st_gid) == (7, 8)


def test_add_hostile_archive_stays_in_the_destination(ctx, rootfs, tmp_path) -> None:
    # Attack: an absolute entry, and a symlink to a host directory followed by a
    # file written through it. Safe outcome: everything lands inside the rootfs.
    host = tmp_path / "hostdir"
    host.mkdir()

    def to_host(info: tarfile.TarInfo) -> None:
        info.type, info.linkname = tarfile.SYMTYPE, str(host)

    hostile = make_tar(
        [("/abs.txt", b"abs", None), ("link", b"", to_host), ("link/through.txt", b"x", None)]
    )
    (ctx / "evil.tar").write_bytes(hostile)
    run_copy(ctx, rootfs, ["evil.tar"], "/x/", expand_archives=True)
    assert list(host.iterdir()) == []
    assert (rootfs / "x" / "abs.txt").read_text() == "abs"
    assert (rootfs / str(host).lstrip("/") / "through.txt").read_text() == "x"


def test_add_archive_climbing_out_is_refused(ctx, rootfs, tmp_path) -> None:
    # Attack: an entry "../../../../escape.txt". Safe outcome: refused, as docker's
    # "is outside of" breakout error; nothing is written outside the rootfs.
    (ctx / "evil.tar").write_bytes(make_tar([("../../../../escape.txt", b"dotdot", None)]))
    with pytest.raises(errors.InvalidArgument, match="escapes"):
        run_copy(ctx, rootfs, ["evil.tar"], "/x/", expand_archives=True)
    assert not any(p.name == "escape.txt" for p in tmp_path.rglob("*"))


# ADD: URLs ------------------------------------------------------------------------------------

MODIFIED = 1_500_000_000


@pytest.fixture
def http_server() -> Iterator[tuple[str, dict[str, tuple[int, bytes, dict[str, str]]]]]:
    """A loopback server answering from a dict: path -> (status, body, headers)."""
    routes: dict[str, tuple[int, bytes, dict[str, str]]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, body, headers = routes.get(self.path, (404, b"no such page", {}))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _served(routes, path: str, body: bytes, **headers: str) -> None:
    routes[path] = (
        200,
        body,
        {"Last-Modified": email.utils.formatdate(MODIFIED, usegmt=True), **headers},
    )


def test_add_url_downloads_with_mode_and_last_modified(ctx, rootfs, http_server) -> None:
    base, routes = http_server
    _served(routes, "/files/tool.tar.gz", gzip.compress(SAMPLE_TAR))
    run_copy(ctx, rootfs, [f"{base}/files/tool.tar.gz"], "/dl/", expand_archives=True)
    out = rootfs / "dl" / "tool.tar.gz"
    assert out.read_bytes() == gzip.compress(SAMPLE_TAR)  # URLs are never extracted
    st = os.stat(out)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_mtime == MODIFIED
    run_copy(ctx, rootfs, [f"{base}/files/tool.tar.gz"], "/named", expand_archives=True)
    assert (rootfs / "named").is_file()


def test_add_url_filename_from_content_disposition(ctx, rootfs, http_server) -> None:
    base, routes = http_server
    _served(routes, "/", b"body", **{"Content-Disposition": 'attachment; filename="report.csv"'})
    run_copy(ctx, rootfs, [f"{base}/"], "/dl/", expand_archives=True)
    assert (rootfs / "dl" / "report.csv").read_bytes() == b"body"


def test_add_url_checksum(ctx, rootfs, http_server) -> None:
    base, routes = http_server
    _served(routes, "/f.bin", b"payload")
    good = "sha256:" + hashlib.sha256(b"payload").hexdigest()
    bad = "sha256:" + hashlib.sha256(b"other").hexdigest()
    run_copy(ctx, rootfs, [f"{base}/f.bin"], "/ok/", expand_archives=True, checksum=good)
    assert (rootfs / "ok" / "f.bin").read_bytes() == b"payload"
    with pytest.raises(errors.InvalidArgument, match="digest mismatch"):
        run_copy(ctx, rootfs, [f"{base}/f.bin"], "/bad/", expand_archives=True, checksum=bad)
    assert not (rootfs / "bad").exists()  # nothing written
    with pytest.raises(errors.InvalidArgument, match="invalid checksum"):
        run_copy(ctx, rootfs, [f"{base}/f.bin"], "/x", expand_archives=True, checksum="md5:00")
    # the checksum stands for the content in the cache key: no download needed
    opts = CopyOptions(expand_archives=True, checksum=good)
    first = copyfiles.hash_sources(ctx, [f"{base}/f.bin"], opts)
    del routes["/f.bin"]
    assert copyfiles.hash_sources(ctx, [f"{base}/f.bin"], opts) == first


def test_add_url_http_error(ctx, rootfs, http_server) -> None:
    base, _routes = http_server
    with pytest.raises(errors.InvalidArgument, match="failed to GET .* with status 404"):
        run_copy(ctx, rootfs, [f"{base}/missing"], "/x", expand_archives=True)


def test_add_url_hash_follows_the_content(ctx, http_server) -> None:
    base, routes = http_server
    opts = CopyOptions(expand_archives=True)
    _served(routes, "/f", b"one")
    first = copyfiles.hash_sources(ctx, [f"{base}/f"], opts)
    assert copyfiles.hash_sources(ctx, [f"{base}/f"], opts) == first
    _served(routes, "/f", b"two")
    assert copyfiles.hash_sources(ctx, [f"{base}/f"], opts) != first


def test_checksum_only_for_urls(ctx, rootfs) -> None:
    with pytest.raises(errors.InvalidArgument, match="non-HTTP"):
        run_copy(ctx, rootfs, ["a.txt"], "/x", expand_archives=True, checksum="sha256:00")


# ADD: git --------------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[str]:
    """A bare repository served by `git daemon` on 127.0.0.1; its git:// URL."""
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "hello.txt").write_text("from git\n")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "one")
    served = tmp_path / "served"
    served.mkdir()
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(served / "repo.git"))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={served}",
            str(served),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/repo.git"
    finally:
        proc.terminate()
        proc.wait(5)


def test_add_git_url(ctx, rootfs, git_daemon) -> None:
    run_copy(ctx, rootfs, [git_daemon], "/src", expand_archives=True)
    assert (rootfs / "src" / "hello.txt").read_text() == "from git\n"
    assert not (rootfs / "src" / ".git").exists()
    opts = CopyOptions(expand_archives=True)
    assert copyfiles.hash_sources(ctx, [git_daemon], opts) == copyfiles.hash_sources(
        ctx, [git_daemon], opts
    )


# hashing ----------------------------------------------------------------------------------------


def digest(
    ctx: Path, sources: list[str] | None = None, cache: StatCache | None = None, **kw
) -> str:
    return copyfiles.hash_sources(ctx, sources or ["."], CopyOptions(**kw), cache)


def test_hash_is_stable_and_ignores_mtimes(ctx) -> None:
    first = digest(ctx)
    assert digest(ctx) == first
    assert digest(ctx, cache=StatCache()) == first
    os.utime(ctx / "a.txt", (OLD + 99, OLD + 99))
    assert digest(ctx) == first  # BuildKit: mtimes are not in COPY's cache key


@pytest.mark.parametrize(
    "change",
    [
        lambda c: (c / "a.txt").write_text("changed"),
        lambda c: (c / "a.txt").write_text("Z"),  # same size
        lambda c: os.chmod(c / "a.txt", 0o755),
        lambda c: (c / "new.txt").write_text(""),
        lambda c: (c / "a.txt").rename(c / "renamed.txt"),
        lambda c: (c / "dir" / "link").unlink() or (c / "dir" / "link").symlink_to("sub"),
        lambda c: (c / "empty" / "deeper").mkdir(),
        lambda c: os.chown(c / "b.txt", 1, 1),
    ],
)
def test_hash_detects_changes(ctx, change) -> None:
    cache = StatCache()
    before = digest(ctx, cache=cache)
    change(ctx)
    assert digest(ctx, cache=cache) != before


def test_hash_depends_on_sources_and_options(ctx) -> None:
    assert digest(ctx, ["a.txt"]) != digest(ctx, ["b.txt"])
    assert digest(ctx, ["*.txt"]) == digest(ctx, ["*.txt"])
    assert digest(ctx, ["dir"]) != digest(ctx, ["dir"], exclude=("sub",))
    assert digest(ctx, ["dir/sub/d.txt"]) != digest(ctx, ["dir/sub/d.txt"], parents=True)
    os.chown(ctx / "a.txt", 3, 3)
    assert digest(ctx, ["a.txt"], chown=(0, 0)) == digest(ctx, ["a.txt"], chown=(5, 5))


def test_stat_cache_skips_unchanged_files_and_persists(ctx, tmp_path) -> None:
    cache = StatCache()
    first = digest(ctx, cache=cache)
    assert cache.misses == 4 and len(cache) == 4
    again = digest(ctx, cache=cache)
    assert again == first and cache.hits == 4
    path = tmp_path / "state" / "stat-cache.json"
    cache.save(path)
    loaded = StatCache.load(path)
    assert len(loaded) == 4 and digest(ctx, cache=loaded) == first and loaded.misses == 0
    assert len(StatCache.from_json(cache.to_json())) == 4
    path.write_text("{not json")
    assert len(StatCache.load(path)) == 0  # a damaged cache is an empty one
    assert len(StatCache.load(tmp_path / "missing.json")) == 0


def test_stat_cache_does_not_trust_fresh_files(ctx) -> None:
    # A file written just now could change again within the same mtime tick.
    cache = StatCache()
    (ctx / "a.txt").write_text("fresh")
    digest(ctx, cache=cache)
    (ctx / "a.txt").write_text("FRESH")  # same size, maybe the same mtime
    assert cache.get(StatCache.key("a.txt", os.stat(ctx / "a.txt"))) is None


def test_hash_of_5000_small_files_with_a_warm_cache_is_fast(tmp_path) -> None:
    big = tmp_path / "big"
    for d in range(50):
        (big / f"pkg{d}").mkdir(parents=True)
        for f in range(100):
            p = big / f"pkg{d}" / f"mod{f}.py"
            p.write_bytes(os.urandom(10_000))
            os.utime(p, (OLD, OLD))
    cache = StatCache()
    cold_start = time.perf_counter()
    cold = digest(big, cache=cache)
    cold_s = time.perf_counter() - cold_start
    warm_start = time.perf_counter()
    warm = digest(big, cache=StatCache.from_json(cache.to_json()))
    warm_s = time.perf_counter() - warm_start
    assert warm == cold
    print(f"5000 files, 50 MB: cold {cold_s * 1000:.0f} ms, warm {warm_s * 1000:.0f} ms")
    assert warm_s < 0.5  # ~100 ms measured here; generous for a loaded machine
