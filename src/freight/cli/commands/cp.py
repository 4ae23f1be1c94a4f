"""``cp``: copy files between containers and the local filesystem (docker's rules).

Owns: telling container paths (``web:/etc``) from local ones, docker's copy
semantics — an existing directory destination receives the source under its
own name, a missing one is the new name, ``SRC/.`` copies the contents,
``-L`` follows a symlink source, ``-`` is a tar stream on stdin/stdout — and,
beyond docker, several sources in one call and globs in container paths
(``freight cp web:/var/log/*.log ./logs/``; the daemon expands them).

Archives from a container are extracted with `freight.archive.inroot`, with
the destination directory as the root, so a hostile archive cannot write
outside it.
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_mod
import sys

from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

CP = Command(
    "cp",
    "[OPTIONS] CONTAINER:SRC_PATH [CONTAINER:SRC_PATH...] DEST_PATH|-\n"
    "\tfreight cp [OPTIONS] SRC_PATH|- [SRC_PATH...] CONTAINER:DEST_PATH",
    "Copy files/folders between a container and the local filesystem",
    [
        Flag("archive", "a", help="Archive mode (copy all uid/gid information)"),
        Flag("follow-link", "L", help="Always follow symbol link in SRC_PATH"),
        Flag("quiet", "q", help="Suppress progress output during copy"),
    ],
    min_args=2,
    aliases=("freight container cp", "freight cp"),
)

GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
_GLOB = set("*?[")


def split_arg(arg: str) -> tuple[str | None, str]:
    """("web", "/etc") for "web:/etc"; (None, path) for a local path (docker's splitCpArg)."""
    if arg == "-" or arg.startswith(("/", ".")):
        return None, arg
    container, sep, path = arg.partition(":")
    if not sep or not container:
        return None, arg
    return container, path


def main(session: Session, argv: list[str]) -> int:
    opts, args = CP.parse(argv)
    sources = [split_arg(a) for a in args[:-1]]
    dest_container, dest = split_arg(args[-1])
    from_container = all(c is not None for c, _ in sources)
    to_container = all(c is None for c, _ in sources)
    if dest_container is None and to_container:
        raise CliError("must specify at least one container source")
    if dest_container is not None and from_container:
        raise CliError("copying between containers is not supported")
    if not (from_container or to_container):
        raise CliError("copying between containers is not supported")
    if dest_container is None and not dest:
        raise CliError("destination can not be empty")
    try:
        if dest_container is None:
            pairs = [(str(c), p) for c, p in sources]
            _from_container(session, pairs, dest, opts["follow_link"])
        else:
            _to_container(session, [p for _, p in sources], dest_container, dest, opts)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
    return 0


# container → local ---------------------------------------------------------


def _expand_remote(session: Session, container: str, path: str) -> list[str]:
    if not _GLOB & set(path):
        return [path]
    try:
        session.api.container_stat_path(container, path)
        return [path]  # a file with that very name
    except ApiError:
        pass
    matches = session.api.http.get_json(f"/freight/containers/{container}/glob", {"pattern": path})
    if not matches:
        raise CliError(f"Error: No such container:path: {container}:{path}")
    return matches


def _from_container(
    session: Session, sources: list[tuple[str, str]], dest: str, follow: bool
) -> None:
    expanded = [(c, p) for c, path in sources for p in _expand_remote(session, c, path)]
    if dest == "-":
        if len(expanded) != 1:
            raise CliError("only one source can be written to stdout")
        container, path = expanded[0]
        response, _ = session.api.container_get_archive(container, path)
        out = sys.stdout.buffer
        for chunk in response.iter_chunks():
            out.write(chunk)
        out.flush()
        return
    if len(expanded) > 1 and not os.path.isdir(dest):
        raise CliError(f"destination {dest!r} must be an existing directory for several sources")
    for container, path in expanded:
        _copy_out(session, container, path, dest, follow)


def _copy_out(session: Session, container: str, path: str, dest: str, follow: bool) -> None:
    rebase = None
    if follow:
        try:
            st = session.api.container_stat_path(container, path)
        except ApiError as exc:
            if exc.status == 404:  # HEAD has no body to say why
                raise CliError(f"Error: No such container:path: {container}:{path}") from None
            raise
        if st.get("mode", 0) & GO_SYMLINK and st.get("linkTarget"):
            rebase = posixpath.basename(path.rstrip("/"))
            path = st["linkTarget"]
    response, st = session.api.container_get_archive(container, path)
    src_is_dir = bool(st.get("mode", 0) & GO_DIR)
    src_base = st.get("name") or posixpath.basename(path)
    # The root's archive ("/") has its entries at the top, like "dir/.".
    contents = path.endswith("/.") or src_base == "/"
    root_dir, rename = _local_target(dest, src_base, rebase, src_is_dir, contents)
    _extract_local(response, root_dir, rename)


def _local_target(
    dest: str, src_base: str, rebase: str | None, src_is_dir: bool, contents: bool
) -> tuple[str, tuple[str, str] | None]:
    """(directory to extract into, rename of the archive's top entry) — docker's CopyInfo rules."""
    top = "." if contents else src_base
    if os.path.isdir(dest):
        return dest, (top, rebase) if rebase and not contents else None
    if os.path.lexists(dest):
        if src_is_dir:
            raise CliError(f'cannot overwrite non-directory "{dest}" with directory "{src_base}"')
        return os.path.dirname(os.path.abspath(dest)), (top, os.path.basename(dest))
    if dest.endswith(("/", "/.")) and not src_is_dir:
        raise CliError(f'destination "{dest}" does not exist: no such directory')
    parent = os.path.dirname(os.path.abspath(dest.rstrip("/")))
    if not os.path.isdir(parent):
        raise CliError(f'destination "{dest}": parent directory "{parent}" does not exist')
    return parent, (top, os.path.basename(dest.rstrip("/")))


class _ChunkReader:
    """A file-like over a response's chunks (what tarfile reads)."""

    def __init__(self, response: Any) -> None:
        self._chunks = response.iter_chunks()
        self._buf = bytearray()  # deleting from the front of a bytearray is cheap

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buf += chunk
        if n < 0 or n >= len(self._buf):
            data = bytes(self._buf)
            self._buf.clear()
        else:
            data = bytes(self._buf[:n])
            del self._buf[:n]
        return data


def _extract_local(response: Any, root_dir: str, rename: tuple[str, str] | None) -> None:
    from freight.archive import inroot
    from freight.errors import FreightError

    fd = os.open(root_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        options = inroot.ExtractOptions(
            no_overwrite_dir_non_dir=True, same_owner=False, rename=rename
        )
        inroot.extract(_ChunkReader(response), fd, "/", options)  # type: ignore[arg-type]
    except FreightError as exc:
        raise CliError(str(exc)) from None
    finally:
        os.close(fd)


# local → container ---------------------------------------------------------


def _expand_local(path: str) -> list[str]:
    if os.path.lexists(path) or not _GLOB & set(path):
        return [path]
    import glob

    return sorted(glob.glob(path)) or [path]


def _to_container(
    session: Session, sources: list[str], container: str, dest: str, opts: dict[str, Any]
) -> None:
    if sources == ["-"]:
        session.api.container_put_archive(
            container, dest, sys.stdin.buffer, copy_uid_gid=opts["archive"]
        )
        return
    expanded = [p for s in sources for p in _expand_local(s)]
    dest_stat = _remote_stat(session, container, dest)
    if len(expanded) > 1 and not (dest_stat and dest_stat.get("mode", 0) & GO_DIR):
        raise CliError(
            f"destination {container}:{dest} must be an existing directory for several sources"
        )
    for src in expanded:
        _copy_in(session, src, container, dest, dest_stat, opts)


def _remote_stat(session: Session, container: str, path: str) -> dict[str, Any] | None:
    try:
        st = session.api.container_stat_path(container, path)
    except ApiError as exc:
        if exc.status != 404:
            raise
        # HEAD carries no body: tell a missing container from a missing path.
        session.api.container_inspect(container)
        return None
    if st.get("mode", 0) & GO_SYMLINK and st.get("linkTarget"):
        try:
            return session.api.container_stat_path(container, st["linkTarget"])
        except ApiError:
            return None
    return st


def _copy_in(
    session: Session,
    src: str,
    container: str,
    dest: str,
    dest_stat: dict[str, Any] | None,
    opts: dict[str, Any],
) -> None:
    follow = opts["follow_link"]
    st = os.stat(src) if follow else os.lstat(src)
    src_is_dir = stat_mod.S_ISDIR(st.st_mode)
    contents = src.endswith("/.") or src == "."
    if contents:
        src_parent, src_base = os.path.abspath(src[:-2] if len(src) > 1 else "."), "."
    else:
        src_parent, src_base = os.path.split(os.path.abspath(src))
    if dest_stat is not None and dest_stat.get("mode", 0) & GO_DIR:
        target_dir, name = dest, src_base
    elif dest_stat is not None:
        if src_is_dir:
            raise CliError(f'cannot overwrite non-directory "{dest}" with directory "{src}"')
        target_dir, name = posixpath.dirname(dest) or "/", posixpath.basename(dest)
    else:
        if dest.endswith("/") and not src_is_dir:
            raise CliError(f'destination "{container}:{dest}" does not exist: no such directory')
        stripped = dest.rstrip("/") or "/"
        target_dir, name = posixpath.dirname(stripped) or "/", posixpath.basename(stripped)
    stream = _tar_stream(src_parent, src_base, name, follow)
    try:
        session.api.container_put_archive(
            container,
            target_dir,
            stream,
            no_overwrite_dir_non_dir=True,
            copy_uid_gid=opts["archive"],
        )
    finally:
        stream.close()


def _tar_stream(parent: str, base: str, name: str, follow: bool) -> BinaryIO:
    """A reader of the tar of `parent/base` with its top entry named `name` (made in a thread)."""
    import threading

    from freight.archive import inroot
    from freight.linux.pipes import big_pipe

    read_fd, write_fd = big_pipe()
    root = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out:
                path = "/." if base == "." else "/" + base
                inroot.pack(out, root, path, name, follow=follow)
        except BrokenPipeError:
            pass  # the daemon refused early; its answer says why
        finally:
            os.close(root)

    threading.Thread(target=produce, daemon=True).start()
    return os.fdopen(read_fd, "rb")
