"""Find the container's command on its PATH, failing with Docker's exact words.

Runs inside the container init after pivot_root and the user switch, so the
lookup sees the container's files with the container user's rights, before
the init blocks waiting for `start` (as runc does). The messages are Go's
exec.LookPath errors as runc reports them; Docker clients map them to exit
codes: "not found"/"no such file" → 127, "permission denied" → 126.
"""

from __future__ import annotations

import os
import stat

from freight.errors import ExecError


def _check_executable(path: str) -> None:
    """Go's findExecutable: a regular (or symlinked) file with any x bit."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        raise PermissionError


def find_executable(name: str, path_env: str) -> str:
    """The path execve should run for `name`; ExecError (127/126) if there is none."""
    if "/" in name:
        try:
            _check_executable(name)
        except PermissionError:
            raise ExecError(f'exec: "{name}": permission denied', 126) from None
        except FileNotFoundError:
            raise ExecError(
                f'exec: "{name}": stat {name}: no such file or directory', 127
            ) from None
        except NotADirectoryError:
            raise ExecError(f'exec: "{name}": stat {name}: not a directory', 127) from None
        return name
    for directory in path_env.split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            _check_executable(candidate)
        except OSError:
            continue
        return candidate
    raise ExecError(f'exec: "{name}": executable file not found in $PATH', 127)
