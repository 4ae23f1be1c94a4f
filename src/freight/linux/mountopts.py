"""Mount options as fstab and the OCI spec write them ("ro", "nosuid", "rbind",
"rprivate", "size=64m") turned into mount(2) flags and the fs-specific data string.
"""

from __future__ import annotations

from freight.linux import syscalls

# option -> (flag, clears): "rw" clears MS_RDONLY, "ro" sets it.
FLAG_OPTIONS: dict[str, tuple[int, bool]] = {
    "ro": (syscalls.MS_RDONLY, False),
    "rw": (syscalls.MS_RDONLY, True),
    "nosuid": (syscalls.MS_NOSUID, False),
    "suid": (syscalls.MS_NOSUID, True),
    "nodev": (syscalls.MS_NODEV, False),
    "dev": (syscalls.MS_NODEV, True),
    "noexec": (syscalls.MS_NOEXEC, False),
    "exec": (syscalls.MS_NOEXEC, True),
    "sync": (syscalls.MS_SYNCHRONOUS, False),
    "async": (syscalls.MS_SYNCHRONOUS, True),
    "dirsync": (syscalls.MS_DIRSYNC, False),
    "remount": (syscalls.MS_REMOUNT, False),
    "mand": (syscalls.MS_MANDLOCK, False),
    "nomand": (syscalls.MS_MANDLOCK, True),
    "noatime": (syscalls.MS_NOATIME, False),
    "atime": (syscalls.MS_NOATIME, True),
    "nodiratime": (syscalls.MS_NODIRATIME, False),
    "diratime": (syscalls.MS_NODIRATIME, True),
    "relatime": (syscalls.MS_RELATIME, False),
    "norelatime": (syscalls.MS_RELATIME, True),
    "strictatime": (syscalls.MS_STRICTATIME, False),
    "nostrictatime": (syscalls.MS_STRICTATIME, True),
    "bind": (syscalls.MS_BIND, False),
    "rbind": (syscalls.MS_BIND | syscalls.MS_REC, False),
}

PROPAGATION: dict[str, int] = {
    "private": syscalls.MS_PRIVATE,
    "rprivate": syscalls.MS_PRIVATE | syscalls.MS_REC,
    "shared": syscalls.MS_SHARED,
    "rshared": syscalls.MS_SHARED | syscalls.MS_REC,
    "slave": syscalls.MS_SLAVE,
    "rslave": syscalls.MS_SLAVE | syscalls.MS_REC,
    "unbindable": syscalls.MS_UNBINDABLE,
    "runbindable": syscalls.MS_UNBINDABLE | syscalls.MS_REC,
}


def parse_mount_options(options: list[str]) -> tuple[int, tuple[int, ...], str]:
    """Split options into (MS_* flags, propagation flags, fs-specific data string)."""
    flags, propagation, data = 0, [], []
    for opt in options:
        if opt in FLAG_OPTIONS:
            flag, clears = FLAG_OPTIONS[opt]
            flags = flags & ~flag if clears else flags | flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        else:
            data.append(opt)
    return flags, tuple(propagation), ",".join(data)
