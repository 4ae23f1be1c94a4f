"""Build contexts on the daemon side: the uploaded tar, a URL, a git repository.

`POST /build` carries the context as its body (a tar, any compression), or
names it with `remote=`: a git repository (cloned here) or an http(s) URL
whose body is either a tarball or the Dockerfile itself.

    extract_context(body, ctx)                     # the body, hostile input
    name = fetch_remote(url, ctx, "Dockerfile")    # remote=https://.../ctx.tar.gz
    ctx = git_checkout("https://h/r.git#v1:docs", work / "git")
    apply_dockerignore(ctx, name)                  # remote contexts only
    ...the Dockerfile is read...
    remove_ignored_build_files(ctx, name)          # every context, as dockerd

A context is hostile input like a layer: it is extracted with
`archive.apply` (names confined, symlinks resolved inside, size and entry
count bounded). `git_checkout` is also used by the CLI, which clones git
contexts locally as docker's classic builder does; git URLs are recognised
by docker's rules (`is_git_url`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import BinaryIO

from freight import errors
from freight.archive import confine
from freight.archive.apply import apply_layer
from freight.archive.compression import Compression, Prefixed, detect
from freight.archive.dockerignore import IgnoreMatcher, read_patterns

DEFAULT_DOCKERFILE = "Dockerfile"
MAX_CONTEXT_SIZE = 32 << 30  # uncompressed bytes
MAX_CONTEXT_ENTRIES = 1 << 20
MAX_DOCKERFILE_SIZE = 16 << 20  # a URL answering with a Dockerfile
GIT_TIMEOUT = 600.0  # seconds for one git command
HTTP_TIMEOUT = 60.0
_TAR_BLOCK = 512


# the uploaded tar -----------------------------------------------------------


def extract_context(
    stream: BinaryIO,
    dest: Path,
    *,
    max_size: int = MAX_CONTEXT_SIZE,
    max_entries: int = MAX_CONTEXT_ENTRIES,
) -> None:
    """Extract the context tar in `stream` (plain, gzip, bzip2, xz or zstd) into `dest`.

    An empty body is an empty context. A malformed or oversized archive
    raises InvalidArgument; `dest` is then half-filled and is the caller's to
    remove. Entries named `.wh.*` are files like any other (a context is no
    layer), as docker's untar of a context keeps them.
    """
    dest.mkdir(parents=True, exist_ok=True)
    head = stream.read(_TAR_BLOCK)
    if not head:
        return
    try:
        apply_layer(
            Prefixed(head, stream),  # type: ignore[arg-type]
            dest,
            whiteouts="plain",
            max_entries=max_entries,
            max_size=max_size,
        )
    except errors.InvalidArgument as e:
        raise errors.InvalidArgument(f"invalid build context: {_context_words(e)}") from None
    except OSError as e:
        raise errors.InvalidArgument(f"invalid build context: {e.strerror or e}") from None


def _context_words(e: Exception) -> str:
    # archive.apply speaks of layers; here the archive is a build context.
    return str(e).replace("layer archive", "archive").replace("layer entry", "entry")


def looks_like_archive(head: bytes) -> bool:
    """Whether these first bytes (up to 512) start a tar, compressed or not.

    Docker's test: a known compression magic, or a tar header whose checksum
    is right.
    """
    if detect(head) is not Compression.PLAIN:
        return True
    if len(head) < _TAR_BLOCK:
        return False
    try:
        tarfile.TarInfo.frombuf(head[:_TAR_BLOCK], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


# freightcontext=PATH: a folder on this machine ------------------------------

LOCAL_CONTEXT_REFUSED = "the build context folder is not visible to freightd"
_OVERLAY_UNSAFE = set(",:\\")  # would need escaping in overlay's lowerdir option


def local_view(folder: Path, ident: str, workdir: Path) -> Path:
    """A private, writable view of the client's `folder` at `workdir/context`:
    an overlay whose lower layer is the folder, so that dropping ignored files
    (and anything a build writes) never touches the user's files. A folder
    whose "dev:ino" is not `ident` is another one than the client meant (a
    client in another mount namespace): InvalidArgument(LOCAL_CONTEXT_REFUSED)."""
    try:
        st = os.stat(folder)
    except OSError:
        st = None
    if not folder.is_absolute() or st is None or f"{st.st_dev}:{st.st_ino}" != ident:
        raise errors.InvalidArgument(f"{LOCAL_CONTEXT_REFUSED}: {folder}; send it as a tar")
    view = workdir / "context"
    view.mkdir(exist_ok=True)
    if not _OVERLAY_UNSAFE & set(str(folder)):
        from freight.services import mounting
        from freight.snapshots import Mount

        (workdir / "upper").mkdir()
        (workdir / "work").mkdir()
        options = [f"lowerdir={folder}", f"upperdir={workdir / 'upper'}"]
        try:
            mounting.mount_all(
                [Mount("overlay", "overlay", [*options, f"workdir={workdir / 'work'}"])], view
            )
            return view
        except OSError:
            pass  # e.g. a folder on a file system overlay can't stack on: copy it
    shutil.copytree(folder, view, symlinks=True, dirs_exist_ok=True, ignore=_sockets)
    return view


def _sockets(directory: str, names: list[str]) -> list[str]:
    import stat

    return [n for n in names if stat.S_ISSOCK(os.lstat(os.path.join(directory, n)).st_mode)]


def discard_workdir(workdir: Path) -> None:
    """Remove a build's work directory, its context view unmounted first."""
    view = workdir / "context"
    if os.path.ismount(view):
        from freight.services import mounting

        mounting.unmount(view)
    shutil.rmtree(workdir, ignore_errors=True)


def unmount_views(root: Path) -> None:
    """Unmount every mount below `root` (deepest first): a view left by a killed
    daemon must be unmounted before its directory is removed."""
    from freight.services import mounting

    prefix = str(root).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [_unescape(line.split()[4]) for line in f]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        with contextlib.suppress(OSError):
            mounting.unmount(Path(point))


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


# remote=http(s)://... --------------------------------------------------------


def fetch_remote(url: str, dest: Path, dockerfile_name: str) -> str:
    """GET `url` into context `dest`: a tarball is extracted, anything else is
    the Dockerfile, stored as `dockerfile_name` (default "Dockerfile").
    Returns the Dockerfile's path in the context."""
    import httpx  # the daemon has it loaded; imported here to keep this module light

    name = dockerfile_name or DEFAULT_DOCKERFILE
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with (
            httpx.Client(follow_redirects=True, timeout=HTTP_TIMEOUT, trust_env=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                body = response.read()[:512].decode("utf-8", "replace").strip()
                raise errors.InvalidArgument(
                    f"failed to GET {url} with status {response.status_code} "
                    f"{response.reason_phrase}: {body}"
                )
            chunks = response.iter_bytes()
            reader = _ChunkReader(chunks)
            head = reader.read(_TAR_BLOCK)
            if looks_like_archive(head):
                extract_context(Prefixed(head, reader), dest)  # type: ignore[arg-type]
                return name
            _store_dockerfile(dest, name, head, reader)
            return name
    except httpx.HTTPError as e:
        raise errors.InvalidArgument(f"failed to GET {url}: {e}") from None


class _ChunkReader:
    """A file-like reader over an iterator of byte chunks."""

    def __init__(self, chunks: object) -> None:
        self._chunks = iter(chunks)  # type: ignore[call-overload]
        self._buffer = b""

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _store_dockerfile(dest: Path, name: str, head: bytes, reader: _ChunkReader) -> None:
    relative = confine.clean_name(name, name)
    if relative is None:
        raise errors.InvalidArgument(f"invalid Dockerfile name {name!r}")
    parent, base = os.path.split(relative)
    path = confine.make_parents(dest, parent, name) / base
    size = 0
    with open(path, "wb") as out:
        data = head
        while data:
            size += len(data)
            if size > MAX_DOCKERFILE_SIZE:
                raise errors.InvalidArgument(
                    f"the Dockerfile at the URL is larger than {MAX_DOCKERFILE_SIZE} bytes"
                )
            out.write(data)
            data = reader.read(1 << 16)


# remote=git URL --------------------------------------------------------------

_GIT_PREFIXES = ("git://", "github.com/", "git@")
_GIT_SUFFIX = re.compile(r"\.git(?:#.+)?$")


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def is_git_url(source: str) -> bool:
    """Docker's rule: an http(s) URL ending in `.git` (before `#`), or git://,
    git@..., github.com/..."""
    if is_url(source) and _GIT_SUFFIX.search(source):
        return True
    return source.startswith(_GIT_PREFIXES)


def split_git_url(url: str) -> tuple[str, str, str]:
    """(repository, ref, subdir) of `repo#ref:subdir`; github.com/... gets https://."""
    repo, _, fragment = url.partition("#")
    ref, _, subdir = fragment.partition(":")
    if repo.startswith("github.com/"):
        repo = "https://" + repo
    return repo, ref, subdir


def git_checkout(url: str, dest: Path, keep_git_dir: bool = False) -> Path:
    """Clone `url` (`repo#ref:subdir`) into `dest` (which must not exist yet,
    or be empty) and return the context directory: `dest/subdir`.

    A branch or tag is fetched shallow; a commit the server will not hand out
    alone falls back to a full fetch. Submodules are fetched too. git never
    prompts (no terminal, ssh in batch mode). Errors are InvalidArgument with
    git's own words.
    """
    repo, ref, subdir = split_git_url(url)
    if not repo:
        raise errors.InvalidArgument(f"invalid git URL {url!r}")
    dest.mkdir(parents=True, exist_ok=True)
    _git(dest, "init", "-q")
    _git(dest, "remote", "add", "origin", repo)
    target = ref or "HEAD"
    try:
        _git(dest, "fetch", "-q", "--depth", "1", "origin", target)
        _git(dest, "checkout", "-q", "FETCH_HEAD")
    except errors.InvalidArgument:
        if not ref:
            raise
        _full_fetch(dest, url, ref)
    _git(dest, "submodule", "update", "-q", "--init", "--recursive", "--depth", "1")
    context = _subdir(dest, subdir, url)
    if not keep_git_dir:
        shutil.rmtree(dest / ".git", ignore_errors=True)
    return context


def _full_fetch(dest: Path, url: str, ref: str) -> None:
    """A commit id (or a ref the shallow fetch missed): everything, then check out."""
    _git(
        dest,
        "fetch",
        "-q",
        "origin",
        "+refs/heads/*:refs/remotes/origin/*",
        "+refs/tags/*:refs/tags/*",
    )
    try:
        _git(dest, "checkout", "-q", ref)
    except errors.InvalidArgument:
        try:
            _git(dest, "checkout", "-q", f"origin/{ref}")
        except errors.InvalidArgument:
            raise errors.InvalidArgument(
                f"unable to checkout git reference {ref!r} of {url}"
            ) from None


def _subdir(root: Path, subdir: str, url: str) -> Path:
    """`root/subdir`, symlinks resolved inside the checkout (`..` stops at its root)."""
    if not subdir:
        return root
    missing = errors.InvalidArgument(f"subdirectory {subdir!r} not found in git repository {url}")
    try:
        relative = confine.clean_name(subdir, subdir)
    except errors.InvalidArgument:
        raise missing from None
    if relative is None:
        return root
    path = confine.resolve(root, relative, subdir)
    if not path.is_dir():
        raise missing
    return path


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    # The user's or system git config must not turn the clone interactive or odd.
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_ASKPASS"] = "true"
    env["LC_ALL"] = "C"
    return env


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-c", "advice.detachedHead=false", *args],
            cwd=cwd,
            env=_git_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise errors.Unavailable("git is not installed: it is needed for git contexts") from None
    except subprocess.TimeoutExpired:
        raise errors.InvalidArgument(
            f"git {args[0]} took longer than {GIT_TIMEOUT:.0f} s"
        ) from None
    if done.returncode != 0:
        words = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        raise errors.InvalidArgument(f"git {args[0]} failed: {words}")
    return done.stdout.decode("utf-8", "replace")


# .dockerignore for contexts the client did not filter --------------------------


def ignore_file_for(context: Path, dockerfile: str) -> Path | None:
    """`<Dockerfile>.dockerignore` next to the Dockerfile if there is one (BuildKit's
    rule), else `.dockerignore` at the root, else None. Symlinks stay inside."""
    for candidate in (dockerfile.strip("/") + ".dockerignore", ".dockerignore"):
        with contextlib.suppress(OSError, errors.InvalidArgument):
            real = confine.resolve(context, candidate, candidate)
            if real.is_file():
                return real
    return None


def apply_dockerignore(context: Path, dockerfile: str) -> None:
    """Remove from `context` what its ignore file excludes, but the Dockerfile
    (still to be read) and the ignore file."""
    ignore = ignore_file_for(context, dockerfile)
    if ignore is None:
        return
    patterns = read_patterns(ignore.read_text("utf-8", "replace"))
    keep = {dockerfile.strip("/"), str(ignore.relative_to(context))}
    matcher = IgnoreMatcher([*patterns, *("!" + k for k in keep)])
    _prune(context, "", matcher)


def remove_ignored_build_files(context: Path, dockerfile: str) -> None:
    """After the Dockerfile is read: drop it and the ignore file from the context
    when the ignore file lists them (docker's daemon does this, so `COPY . .`
    leaves out what the client had to send anyway, and the `.dockerfile.<hex>`
    the CLI adds for a Dockerfile from outside the context)."""
    ignore = ignore_file_for(context, dockerfile)
    if ignore is None:
        return
    matcher = IgnoreMatcher(read_patterns(ignore.read_text("utf-8", "replace")))
    for name in (str(ignore.relative_to(context)), dockerfile.strip("/")):
        if not matcher.matches(name):
            continue
        with contextlib.suppress(OSError, errors.InvalidArgument):
            parent, base = os.path.split(name)
            path = confine.resolve(context, parent, name) / base
            if not path.is_dir() or path.is_symlink():
                path.unlink()


def _prune(root: Path, relative: str, matcher: IgnoreMatcher) -> None:
    directory = root / relative if relative else root
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        child = f"{relative}/{entry.name}" if relative else entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if matcher.matches(child):
            if not is_dir:
                os.unlink(entry.path)
            elif matcher.may_include_below(child):
                _prune(root, child, matcher)
            else:
                shutil.rmtree(entry.path)
        elif is_dir:
            _prune(root, child, matcher)


__all__ = [
    "apply_dockerignore",
    "extract_context",
    "fetch_remote",
    "git_checkout",
    "ignore_file_for",
    "is_git_url",
    "is_url",
    "looks_like_archive",
    "remove_ignored_build_files",
    "split_git_url",
]
