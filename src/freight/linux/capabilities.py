"""Capability names, numbers and the steps that apply an OCI capability set.

Names follow OCI/Docker spelling ("CAP_CHOWN"); numbers are the kernel's
(include/uapi/linux/capability.h). Applying a set is split in two because the
bounding set must be dropped while we are still root with CAP_SETPCAP, and the
effective/permitted/inheritable/ambient sets only after the uid change.
"""

from __future__ import annotations

from freight.linux import syscalls

CAP_NUMBERS: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# What `docker run` grants by default (moby oci/caps/defaults.go); CapEff 0xa80425fb.
DOCKER_DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)


def normalize(name: str) -> str:
    """Accept "chown", "CHOWN" or "CAP_CHOWN" and return the OCI spelling."""
    upper = name.upper()
    return upper if upper.startswith("CAP_") else "CAP_" + upper


def to_mask(names: list[str] | tuple[str, ...]) -> int:
    """Bit mask of capability names; unknown names raise ValueError."""
    mask = 0
    for name in names:
        number = CAP_NUMBERS.get(normalize(name))
        if number is None:
            raise ValueError(f"unknown capability {name!r}")
        mask |= 1 << number
    return mask


def last_cap() -> int:
    """Highest capability the running kernel knows (older kernels stop before 40)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAP_NUMBERS.values())


def drop_bounding(keep: int) -> None:
    """Remove every capability not in `keep` from the bounding set (needs CAP_SETPCAP)."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)


def apply_sets(effective: int, permitted: int, inheritable: int, ambient: int) -> None:
    """capset the three classic sets, then raise the ambient ones.

    Ambient capabilities must be in both permitted and inheritable or the
    kernel refuses them (EPERM), so the spec is trusted to be consistent.
    """
    syscalls.capset(effective, permitted, inheritable)
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(last_cap() + 1):
        if ambient & (1 << cap):
            syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, cap)
