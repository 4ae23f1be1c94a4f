"""The build context, client side: what `freight build SOURCE` sends to the daemon.

    ctx = prepare(".", None, sys.stdin.buffer)   # POST /build?dockerfile=ctx.dockerfile
    try: api.build(ctx.body, dockerfile=ctx.dockerfile, remote=ctx.remote, ...)
    finally: ctx.cleanup()

SOURCE is, in docker's order:

- `-`: stdin holds a tar (plain or compressed; sent as it is) or a Dockerfile
  (wrapped into a tar holding just `Dockerfile`);
- a directory: streamed as a tar, filtered by `.dockerignore` on this side
  (or by `<Dockerfile>.dockerignore` next to the Dockerfile, BuildKit's
  rule); the Dockerfile and `.dockerignore` are sent even when ignored, as
  docker does (the daemon reads them); entries come sorted, directory by
  directory, with their owners, modes and second-precision times;
- a git URL (docker's rules, see `builder.context.is_git_url`): cloned here
  into a temporary directory (`#ref:subdir`), then sent as a directory;
- another http(s) URL: the daemon fetches it (`remote=`), no body;
- a tar file: sent as it is.

A directory given to freightd on this machine (a unix socket whose `/_ping`
says `Freight-Local-Context: 1`) is not sent at all: `local=True` names it
instead (`freightcontext=PATH`, with its device and inode so that a daemon
in another mount namespace can tell it sees a different folder), and the
daemon reads it through an overlay of its own and applies `.dockerignore`
itself. Only a Dockerfile from outside the folder travels, in a small tar.
`BuildContext.upload()` is the same context as a full tar, for a daemon that
refuses the path.

`-f` names the Dockerfile: relative to the current directory for a local
directory, to the context otherwise, `-` for stdin. A Dockerfile outside the
context (or from stdin) travels as `.dockerfile.<random hex>` and is added
to `.dockerignore`, as docker does, so that the daemon can drop it again.

Imported only by `freight build`; the heavier modules (tarfile, the git
checkout) are imported where they are needed.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from freight.archive.dockerignore import IgnoreMatcher, read_patterns
from freight.cli.session import CliError

if TYPE_CHECKING:
    import tarfile

DEFAULT_DOCKERFILE = "Dockerfile"
IGNORE_FILE = ".dockerignore"
CHUNK = 1 << 20  # bytes per piece of the upload
_BLOCK = 512
_GLOB_SPECIAL = set("*?[]\\!")


def _nothing() -> None:
    pass


@dataclass
class BuildContext:
    body: Iterator[bytes] | BinaryIO | None  # the tar to POST (None when remote)
    dockerfile: str  # the `dockerfile=` query value (path inside the context)
    remote: str | None  # the `remote=` query value (http(s) URL) when the daemon fetches
    cleanup: Callable[[], None] = field(default=_nothing)
    local_path: str | None = None  # `freightcontext=`: the folder, read by the daemon
    local_id: str = ""  # `freightcontextid=`: "<st_dev>:<st_ino>" of that folder
    upload: Callable[[], BuildContext] | None = None  # the same context as a full tar


def prepare(
    source: str, dockerfile: str | None, stdin: BinaryIO, *, local: bool = False
) -> BuildContext:
    """The context for `freight build [-f dockerfile] source`; CliError if unusable.
    `local`: the daemon can read this machine's folders (see the module docstring)."""
    if source == "-":
        if dockerfile == "-":
            raise CliError(
                "invalid argument: can't use stdin for both build context and dockerfile"
            )
        return _from_stdin(stdin, dockerfile)
    if os.path.isdir(source):
        if local:
            return name_folder(Path(source), dockerfile, stdin, dockerfile_base=Path.cwd())
        return pack_folder(Path(source), dockerfile, stdin, dockerfile_base=Path.cwd())
    if _maybe_url(source):
        from freight.builder.context import is_git_url, is_url

        if is_git_url(source):
            return _from_git(source, dockerfile, stdin)
        if is_url(source):
            if dockerfile == "-":
                raise CliError("a Dockerfile from stdin (-f -) needs a local context, not a URL")
            return BuildContext(None, dockerfile or DEFAULT_DOCKERFILE, source)
    if os.path.isfile(source):
        return _from_tar_file(source, dockerfile)
    raise CliError(f'unable to prepare context: path "{source}" not found')


def _maybe_url(source: str) -> bool:
    return "://" in source or source.startswith(("git@", "github.com/"))


# stdin and tar files ----------------------------------------------------------


def _from_stdin(stdin: BinaryIO, dockerfile: str | None) -> BuildContext:
    from freight.builder.context import looks_like_archive

    head = _read_exactly(stdin, _BLOCK)
    if looks_like_archive(head):
        return BuildContext(_replayed(head, stdin), dockerfile or DEFAULT_DOCKERFILE, None)
    text = head + stdin.read()
    return BuildContext(
        iter([_single_file_tar(DEFAULT_DOCKERFILE, text)]), DEFAULT_DOCKERFILE, None
    )


def _from_tar_file(source: str, dockerfile: str | None) -> BuildContext:
    from freight.builder.context import looks_like_archive

    if dockerfile == "-":
        raise CliError("a Dockerfile from stdin (-f -) needs a directory as the context")
    try:
        f = open(source, "rb")  # noqa: SIM115 - closed by cleanup
    except OSError as e:
        raise CliError(f"unable to prepare context: {e.strerror}: {source}") from None
    if not looks_like_archive(f.read(_BLOCK)):
        f.close()
        raise CliError(
            f'unable to prepare context: "{source}" is neither a directory nor a tar archive'
        )
    f.seek(0)
    return BuildContext(f, dockerfile or DEFAULT_DOCKERFILE, None, f.close)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := stream.read(size - len(data))):
        data += chunk
    return data


def _replayed(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    if head:
        yield head
    while chunk := stream.read(CHUNK):
        yield chunk


# git ----------------------------------------------------------------------------


def _from_git(url: str, dockerfile: str | None, stdin: BinaryIO) -> BuildContext:
    import shutil
    import tempfile

    from freight.builder.context import git_checkout
    from freight.errors import FreightError

    workdir = Path(tempfile.mkdtemp(prefix="freight-build-git-"))

    def remove() -> None:
        shutil.rmtree(workdir, ignore_errors=True)

    try:
        context = git_checkout(url, workdir / "repo")
        prepared = pack_folder(context, dockerfile, stdin, dockerfile_base=context)
    except FreightError as e:
        remove()
        raise CliError(f"unable to prepare context: {e}") from None
    except BaseException:
        remove()
        raise
    prepared.cleanup = remove
    return prepared


# a folder -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    name: str  # in the archive
    path: str  # on disk
    st: os.stat_result


@dataclass(frozen=True)
class _FolderPlan:
    root: Path  # the folder, resolved
    dockerfile: str  # its name in the context sent
    additions: list[tuple[str, bytes]]  # files sent beside the folder's own
    matcher: IgnoreMatcher  # what is left out


def _plan_folder(
    folder: Path, dockerfile: str | None, stdin: BinaryIO, dockerfile_base: Path
) -> _FolderPlan:
    """What a folder context is made of. A relative `dockerfile` is taken from
    `dockerfile_base` (the current directory, or the context for git)."""
    from freight.errors import InvalidArgument

    root = Path(os.path.realpath(folder))
    extra: bytes | None = None  # a Dockerfile from outside the context
    if dockerfile == "-":
        extra, relative = stdin.read(), None
        dockerfile_path = None
    else:
        dockerfile_path = _locate_dockerfile(root, dockerfile, dockerfile_base)
        relative = os.path.relpath(dockerfile_path, root)
        if relative == ".." or relative.startswith("../"):
            extra, relative = _read_file(dockerfile_path), None
    ignore_text = _read_ignore_file(root, dockerfile_path)
    try:
        patterns = read_patterns(ignore_text or "")
        matcher = IgnoreMatcher(patterns)
        # Docker sends these two even when ignored: the daemon needs them.
        if matcher.matches(IGNORE_FILE):
            patterns.append("!" + IGNORE_FILE)
        if relative is not None and matcher.matches(relative):
            patterns.append("!" + _escape_glob(relative))
        matcher = IgnoreMatcher(patterns)
    except InvalidArgument as e:
        raise CliError(f"error reading {IGNORE_FILE}: {e}") from None
    if extra is None:
        return _FolderPlan(root, relative or DEFAULT_DOCKERFILE, [], matcher)
    name = ".dockerfile." + secrets.token_hex(10)
    root_ignore = (root / IGNORE_FILE).read_bytes() if (root / IGNORE_FILE).is_file() else None
    additions = [(name, extra), (IGNORE_FILE, _ignore_with(root_ignore, name))]
    return _FolderPlan(root, name, additions, matcher)


def pack_folder(
    folder: Path, dockerfile: str | None, stdin: BinaryIO, dockerfile_base: Path
) -> BuildContext:
    """Stream `folder` as a context tar."""
    return _packed(_plan_folder(folder, dockerfile, stdin, dockerfile_base))


def _packed(plan: _FolderPlan) -> BuildContext:
    entries = _walk(plan.root, "", plan.matcher)
    if plan.additions:  # the ignore file sent is the one made with the additions
        entries = [e for e in entries if e.name != IGNORE_FILE]
    return BuildContext(_coalesced(_stream(entries, plan.additions)), plan.dockerfile, None)


def name_folder(
    folder: Path, dockerfile: str | None, stdin: BinaryIO, dockerfile_base: Path
) -> BuildContext:
    """`folder` for a daemon that reads it in place: only the additions travel."""
    plan = _plan_folder(folder, dockerfile, stdin, dockerfile_base)
    st = os.stat(plan.root)
    body = iter([_tar_of(plan.additions)]) if plan.additions else None
    return BuildContext(
        body,
        plan.dockerfile,
        None,
        local_path=str(plan.root),
        local_id=f"{st.st_dev}:{st.st_ino}",
        upload=lambda: _packed(plan),
    )


def _locate_dockerfile(root: Path, dockerfile: str | None, base: Path) -> str:
    if dockerfile:
        candidate = os.path.join(base, dockerfile)
    else:
        candidate = os.path.join(root, DEFAULT_DOCKERFILE)
        if not os.path.lexists(candidate) and os.path.lexists(os.path.join(root, "dockerfile")):
            candidate = os.path.join(root, "dockerfile")  # docker accepts the lower-case name
    real = os.path.realpath(candidate)
    if not os.path.exists(real):
        raise CliError(
            f"unable to prepare context: Cannot locate specified Dockerfile: {candidate}"
        )
    if os.path.isdir(real):
        raise CliError(f"unable to prepare context: the Dockerfile ({candidate}) is a directory")
    return real


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise CliError(f"unable to open Dockerfile: {e.strerror}: {path}") from None


def _read_ignore_file(root: Path, dockerfile_path: str | None) -> str | None:
    candidates = [root / IGNORE_FILE]
    if dockerfile_path is not None:
        candidates.insert(0, Path(dockerfile_path + IGNORE_FILE))
    for candidate in candidates:
        try:
            return candidate.read_text("utf-8", "replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except OSError as e:
            raise CliError(f"error reading {candidate}: {e.strerror}") from None
    return None


def _ignore_with(existing: bytes | None, name: str) -> bytes:
    # As docker: the ignore file lists itself when it was not there before.
    text = existing if existing is not None else IGNORE_FILE.encode()
    return text + b"\n" + name.encode() + b"\n"


def _escape_glob(path: str) -> str:
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in path)


def _walk(root: Path, relative: str, matcher: IgnoreMatcher) -> list[_Entry]:
    """The entries to send below `root/relative`, sorted, checked readable now so
    that an unreadable file fails the build before the upload starts."""
    directory = os.path.join(root, relative) if relative else str(root)
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise CliError(f"error checking context: can't read '{directory}': {e.strerror}") from None
    entries: list[_Entry] = []
    for base in names:
        name = f"{relative}/{base}" if relative else base
        path = os.path.join(directory, base)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # removed while we looked
        excluded = matcher.matches(name)
        if stat.S_ISDIR(st.st_mode):
            if excluded and not matcher.may_include_below(name):
                continue
            below = _walk(root, name, matcher)
            if not excluded or below:  # an excluded directory only as a parent
                entries.append(_Entry(name, path, st))
                entries.extend(below)
            continue
        if excluded or stat.S_ISSOCK(st.st_mode):
            continue  # docker never archives sockets
        if stat.S_ISREG(st.st_mode) and not os.access(path, os.R_OK):
            raise CliError(f"error checking context: no permission to read from '{path}'")
        entries.append(_Entry(name, path, st))
    return entries


# the tar stream ----------------------------------------------------------------


def _stream(entries: list[_Entry], additions: list[tuple[str, bytes]]) -> Iterator[bytes]:
    import tarfile

    links: dict[tuple[int, int], str] = {}
    for entry in entries:
        info = _tarinfo(entry, links)
        yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if info.type == tarfile.REGTYPE:
            yield from _file_blocks(entry.path, info.size)
    for name, data in additions:
        yield _member(name, data, 0o600)
    yield b"\0" * (2 * _BLOCK)


def _now() -> float:
    import time

    return time.time()


def _tarinfo(entry: _Entry, links: dict[tuple[int, int], str]) -> tarfile.TarInfo:
    import tarfile as tf

    st = entry.st
    info = tf.TarInfo(entry.name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)  # seconds, as docker: no pax record per entry
    mode = st.st_mode
    if stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:  # a hard link to a file sent before
            info.type, info.linkname = tf.LNKTYPE, links[key]
        else:
            if st.st_nlink > 1:
                links[key] = entry.name
            info.type, info.size = tf.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tf.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tf.SYMTYPE, os.readlink(entry.path)
    elif stat.S_ISFIFO(mode):
        info.type = tf.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tf.CHRTYPE if stat.S_ISCHR(mode) else tf.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return info


def _file_blocks(path: str, size: int) -> Iterator[bytes]:
    """Exactly `size` bytes of the file (as its header said), then the padding."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; a generator holds it
    except OSError as e:
        raise CliError(f"error sending build context: {e.strerror}: {path}") from None
    with f:
        left = size
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise CliError(f"error sending build context: {path} shrank while being sent")
            left -= len(chunk)
            yield chunk
    yield _padding(size)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


def _coalesced(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Small pieces (headers, padding) joined into upload-sized chunks."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        if len(buffer) >= CHUNK:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _single_file_tar(name: str, data: bytes) -> bytes:
    return _tar_of([(name, data)], 0o644)


def _tar_of(files: list[tuple[str, bytes]], mode: int = 0o600) -> bytes:
    return b"".join([*(_member(name, data, mode) for name, data in files), b"\0" * (2 * _BLOCK)])


def _member(name: str, data: bytes, mode: int) -> bytes:
    """One regular file made here (not read from disk), as a tar member."""
    import tarfile

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(_now())
    header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return header + data + _padding(len(data))


__all__ = ["BuildContext", "name_folder", "pack_folder", "prepare"]
