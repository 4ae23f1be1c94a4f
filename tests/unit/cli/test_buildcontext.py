"""cli.buildcontext: what `freight build SOURCE` sends, for every kind of SOURCE."""

from __future__ import annotations

import gzip
import io
import os
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from freight.cli import buildcontext as bc
from freight.cli.session import CliError

NO_STDIN = io.BytesIO(b"")


def body_bytes(context: bc.BuildContext) -> bytes:
    body = context.body
    assert body is not None
    if isinstance(body, Iterator):
        return b"".join(body)
    return body.read()  # type: ignore[union-attr]


class Member:
    """A tar entry and, for a regular file, its content."""

    def __init__(self, info: tarfile.TarInfo, content: bytes | None) -> None:
        self.info = info
        self.content = content

    def __getattr__(self, name: str) -> object:
        return getattr(self.info, name)


def members(context: bc.BuildContext) -> dict[str, Member]:
    data = body_bytes(context)
    found: dict[str, Member] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            reader = tar.extractfile(m) if m.isreg() else None
            found[m.name] = Member(m, reader.read() if reader else None)
    return found


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    write(
        root,
        {
            "Dockerfile": "FROM scratch\n",
            "app.py": "print(1)\n",
            "a.log": "log",
            "keep.log": "kept",
            "logs/x.log": "x",
            "logs/keep/y": "y",
            "node_modules/m/index.js": "js",
            "src/z.py": "z",
            "src/a.py": "a",
        },
    )
    return root


# a folder -------------------------------------------------------------------------------


def test_folder_without_dockerignore_sends_everything_sorted(project: Path) -> None:
    context = bc.prepare(str(project), None, NO_STDIN)
    assert context.dockerfile == "Dockerfile" and context.remote is None
    names = list(members(context))
    assert names == [
        "Dockerfile",
        "a.log",
        "app.py",
        "keep.log",
        "logs",
        "logs/keep",
        "logs/keep/y",
        "logs/x.log",
        "node_modules",
        "node_modules/m",
        "node_modules/m/index.js",
        "src",
        "src/a.py",
        "src/z.py",
    ]
    context.cleanup()


def test_folder_filtered_by_dockerignore(project: Path) -> None:
    (project / ".dockerignore").write_text(
        "# build junk\n*.log\n!keep.log\nlogs\n!logs/keep\nnode_modules\nDockerfile\n.dockerignore\n"
    )
    found = members(bc.prepare(str(project), None, NO_STDIN))
    assert sorted(found) == [
        ".dockerignore",  # always sent, and the Dockerfile too: the daemon reads them
        "Dockerfile",
        "app.py",
        "keep.log",
        "logs",  # excluded, but the parent of what an exception re-includes
        "logs/keep",
        "logs/keep/y",
        "src",
        "src/a.py",
        "src/z.py",
    ]
    assert found["logs"].isdir()


def test_entries_keep_owner_mode_time_links(project: Path) -> None:
    os.chmod(project / "app.py", 0o751)
    os.utime(project / "app.py", (1_600_000_000.7, 1_600_000_000.7))
    os.symlink("app.py", project / "link")
    os.link(project / "src/a.py", project / "src/hard")
    if os.geteuid() == 0:
        os.chown(project / "app.py", 1234, 5678)
    found = members(bc.prepare(str(project), None, NO_STDIN))
    app = found["app.py"]
    assert app.mode == 0o751 and app.mtime == 1_600_000_000
    assert app.content == b"print(1)\n"
    if os.geteuid() == 0:
        assert (app.uid, app.gid) == (1234, 5678)
    assert found["link"].issym() and found["link"].linkname == "app.py"
    assert found["src/a.py"].isreg()
    assert found["src/hard"].islnk() and found["src/hard"].linkname == "src/a.py"
    assert not any(k.startswith("mtime") for k in app.pax_headers)


def test_sockets_are_skipped(project: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(project / "sock"))
        assert "sock" not in members(bc.prepare(str(project), None, NO_STDIN))


def test_dockerfile_specific_ignore_file_wins(project: Path, monkeypatch) -> None:
    write(
        project,
        {"build/app.Dockerfile": "FROM scratch\n", "build/app.Dockerfile.dockerignore": "src\n"},
    )
    (project / ".dockerignore").write_text("app.py\n")
    monkeypatch.chdir(project)
    context = bc.prepare(".", "build/app.Dockerfile", NO_STDIN)
    assert context.dockerfile == "build/app.Dockerfile"
    found = members(context)
    assert "app.py" in found and "src/a.py" not in found and "build/app.Dockerfile" in found


def test_dash_f_is_relative_to_the_current_directory(
    project: Path, tmp_path: Path, monkeypatch
) -> None:
    write(tmp_path, {"elsewhere/Dockerfile.dev": "FROM busybox\n"})
    write(project, {"sub/Dockerfile.dev": "FROM scratch\n"})
    monkeypatch.chdir(project / "sub")
    context = bc.prepare(str(project), "Dockerfile.dev", NO_STDIN)
    assert context.dockerfile == "sub/Dockerfile.dev"


def test_dockerfile_outside_the_context_travels_under_a_random_name(
    project: Path, tmp_path: Path
) -> None:
    write(tmp_path, {"elsewhere/Dockerfile.dev": "FROM busybox\n"})
    (project / ".dockerignore").write_text("*.log")
    context = bc.prepare(str(project), str(tmp_path / "elsewhere/Dockerfile.dev"), NO_STDIN)
    name = context.dockerfile
    assert name.startswith(".dockerfile.") and len(name) == len(".dockerfile.") + 20
    found = members(context)
    assert found[name].content == b"FROM busybox\n"
    assert found[".dockerignore"].content == b"*.log\n" + name.encode() + b"\n"
    assert list(found).count(".dockerignore") == 1
    assert "a.log" not in found


def test_dockerfile_from_stdin_with_a_folder(project: Path) -> None:
    context = bc.prepare(str(project), "-", io.BytesIO(b"FROM alpine\n"))
    found = members(context)
    assert found[context.dockerfile].content == b"FROM alpine\n"
    # No .dockerignore before: docker's one lists itself and the random name.
    assert found[".dockerignore"].content == (
        b".dockerignore\n" + context.dockerfile.encode() + b"\n"
    )


def test_lowercase_dockerfile_is_found(tmp_path: Path) -> None:
    write(tmp_path, {"c/dockerfile": "FROM scratch\n"})
    assert bc.prepare(str(tmp_path / "c"), None, NO_STDIN).dockerfile == "dockerfile"


def test_missing_dockerfile_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    with pytest.raises(CliError, match="Cannot locate specified Dockerfile"):
        bc.prepare(str(tmp_path / "c"), None, NO_STDIN)


def test_bad_ignore_pattern_is_an_error(project: Path) -> None:
    (project / ".dockerignore").write_text("a[\n")
    with pytest.raises(CliError, match="error reading .dockerignore: syntax error"):
        bc.prepare(str(project), None, NO_STDIN)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_fails_before_sending(project: Path) -> None:
    os.chmod(project / "app.py", 0)
    with pytest.raises(CliError, match="no permission to read"):
        bc.prepare(str(project), None, NO_STDIN)


def test_the_folder_is_streamed_not_buffered(project: Path) -> None:
    (project / "big").write_bytes(os.urandom(3 * bc.CHUNK + 5))
    body = bc.prepare(str(project), None, NO_STDIN).body
    assert isinstance(body, Iterator)
    chunks = list(body)
    assert len(chunks) >= 3 and max(map(len, chunks)) < 2 * bc.CHUNK + 1024


def test_a_file_shrinking_while_sent_is_an_error(project: Path) -> None:
    (project / "big").write_bytes(bytes(3 * bc.CHUNK))
    body = bc.prepare(str(project), None, NO_STDIN).body
    assert isinstance(body, Iterator)
    (project / "big").write_bytes(b"short")
    with pytest.raises(CliError, match="shrank"):
        b"".join(body)


# stdin, tar files ------------------------------------------------------------------


def small_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile.x")
        info.size = 13
        tar.addfile(info, io.BytesIO(b"FROM scratch\n"))
    return out.getvalue()


@pytest.mark.parametrize(
    "compress", [lambda b: b, gzip.compress, lambda b: zstandard.ZstdCompressor().compress(b)]
)
def test_stdin_tar_is_sent_as_is(compress) -> None:
    data = compress(small_tar())
    context = bc.prepare("-", "Dockerfile.x", io.BytesIO(data))
    assert context.dockerfile == "Dockerfile.x"
    assert body_bytes(context) == data


def test_stdin_dockerfile_is_wrapped(tmp_path: Path) -> None:
    context = bc.prepare("-", None, io.BytesIO(b"FROM busybox\nRUN true\n"))
    assert context.dockerfile == "Dockerfile"
    found = members(context)
    assert list(found) == ["Dockerfile"]
    assert found["Dockerfile"].content == b"FROM busybox\nRUN true\n"


def test_stdin_for_both_is_refused() -> None:
    with pytest.raises(CliError, match="can't use stdin for both"):
        bc.prepare("-", "-", io.BytesIO(b""))


def test_tar_file_is_sent_as_is(tmp_path: Path) -> None:
    path = tmp_path / "ctx.tar.gz"
    data = gzip.compress(small_tar())
    path.write_bytes(data)
    context = bc.prepare(str(path), "Dockerfile.x", NO_STDIN)
    assert body_bytes(context) == data and context.dockerfile == "Dockerfile.x"
    context.cleanup()
    assert context.body.closed  # type: ignore[union-attr]


def test_a_file_that_is_no_tar_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(CliError, match="neither a directory nor a tar archive"):
        bc.prepare(str(tmp_path / "Dockerfile"), None, NO_STDIN)


def test_missing_path() -> None:
    with pytest.raises(CliError, match='unable to prepare context: path "/no/such" not found'):
        bc.prepare("/no/such", None, NO_STDIN)


# URLs --------------------------------------------------------------------------------


def test_http_url_is_fetched_by_the_daemon() -> None:
    context = bc.prepare("https://example.com/ctx.tar.gz", "sub/Dockerfile", NO_STDIN)
    assert context.remote == "https://example.com/ctx.tar.gz"
    assert context.body is None and context.dockerfile == "sub/Dockerfile"
    assert bc.prepare("http://example.com/Dockerfile", None, NO_STDIN).dockerfile == "Dockerfile"


def git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd),
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=True)


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[str]:
    """`git daemon` on 127.0.0.1 serving repo.git: branch main, tag v1, subdir app."""
    base = tmp_path / "served"
    repo = base / "repo.git"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    write(repo, {"Dockerfile": "FROM scratch\n# root\n", "app/Dockerfile": "FROM scratch\n# app\n"})
    write(repo, {"app/.dockerignore": "*.tmp\n", "app/junk.tmp": "j", "app/main.py": "m"})
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    git(repo, "tag", "v1")
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
            f"--base-path={base}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/repo.git"
    finally:
        proc.terminate()
        proc.wait(5)


def test_git_url_is_cloned_and_sent_as_a_folder(git_daemon: str) -> None:
    context = bc.prepare(f"{git_daemon}#v1:app", None, NO_STDIN)
    assert context.remote is None and context.dockerfile == "Dockerfile"
    found = members(context)
    assert sorted(found) == [".dockerignore", "Dockerfile", "main.py"]
    assert b"# app" in found["Dockerfile"].content
    context.cleanup()


def test_git_clone_is_removed_by_cleanup(git_daemon: str, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    context = bc.prepare(git_daemon, "app/Dockerfile", NO_STDIN)
    assert context.dockerfile == "app/Dockerfile"  # -f is relative to the repository
    assert list((tmp_path / "tmp").iterdir())
    context.cleanup()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_git_errors_are_cli_errors(git_daemon: str) -> None:
    with pytest.raises(CliError, match="unable to prepare context: .*'nope'"):
        bc.prepare(f"{git_daemon}#nope", None, NO_STDIN)


def test_round_trip_through_the_daemon_side(project: Path, tmp_path: Path) -> None:
    from freight.builder.context import extract_context, remove_ignored_build_files

    (project / ".dockerignore").write_text("*.log\nnode_modules\n")
    os.symlink("src/a.py", project / "link")
    outside = tmp_path / "Dockerfile.out"
    outside.write_text("FROM busybox\n")
    context = bc.prepare(str(project), str(outside), NO_STDIN)
    chunks = context.body
    assert isinstance(chunks, Iterator)

    class Reader(io.RawIOBase):
        def __init__(self) -> None:
            self.rest = b""

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            while not self.rest:
                self.rest = next(chunks, b"")
                if not self.rest:
                    return 0
            n = min(len(b), len(self.rest))
            b[:n], self.rest = self.rest[:n], self.rest[n:]
            return n

    dest = tmp_path / "extracted"
    extract_context(io.BufferedReader(Reader()), dest)  # type: ignore[arg-type]
    assert (dest / context.dockerfile).read_text() == "FROM busybox\n"
    remove_ignored_build_files(dest, context.dockerfile)
    left = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert left == [
        ".dockerignore",
        "Dockerfile",
        "app.py",
        "link",
        "logs",
        "logs/keep",
        "logs/keep/y",
        "logs/x.log",  # "*.log" is for the top level only
        "src",
        "src/a.py",
        "src/z.py",
    ]
    assert os.readlink(dest / "link") == "src/a.py"
