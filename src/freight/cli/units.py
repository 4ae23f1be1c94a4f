"""Human units as the docker CLI reads and writes them.

Owns: parsing memory sizes (go-units ``RAMInBytes``), ``--cpus`` to nano-CPUs,
and printing sizes (``HumanSizeWithPrecision(n, 3)``) and durations
(``HumanDuration``). Error texts are go-units' word for word, because the
flag parser wraps them into docker's ``invalid argument ...`` message.
"""

from __future__ import annotations

from freight.dockerapi.humanize import bytes_size, human_duration, human_size

_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_NUMBER_CHARS = "0123456789. "


class UnitError(ValueError):
    """A value that go-units would refuse; str() is go-units' message."""


def ram_in_bytes(text: str) -> int:
    """Parse ``512m``, ``1g``, ``100k``, ``1.5GiB`` or plain bytes (1024-based)."""
    sep = max(text.rfind(c) for c in _NUMBER_CHARS)
    if sep == -1:
        raise UnitError(f"invalid size: '{text}'")
    if text[sep] == " ":
        num, suffix = text[:sep], text[sep + 1 :]
    else:
        num, suffix = text[: sep + 1], text[sep + 1 :]
    size = _parse_float(num)
    if size < 0:
        raise UnitError(f"invalid size: '{text}'")
    return int(size * _suffix_multiplier(suffix))


def _parse_float(num: str) -> float:
    try:
        return float(num)
    except ValueError:
        raise UnitError(f'strconv.ParseFloat: parsing "{num}": invalid syntax') from None


def _suffix_multiplier(suffix: str) -> int:
    if not suffix:
        return 1
    if len(suffix) > 3:
        raise UnitError(f"invalid suffix: '{suffix}'")
    low = suffix.lower()
    if low[0] == "b":
        if len(low) > 1:
            raise UnitError(f"invalid suffix: '{low}'")
        return 1
    mul = _BINARY.get(low[0])
    bad_tail = (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib")
    if mul is None or bad_tail:
        raise UnitError(f"invalid suffix: '{low}'")
    return mul


def memory_swap_bytes(text: str) -> int:
    """``--memory-swap``: like memory, but ``-1`` means unlimited."""
    return -1 if text == "-1" else ram_in_bytes(text)


def nano_cpus(text: str) -> int:
    """``--cpus 1.5`` -> 1500000000, refusing more than nine decimals like docker."""
    whole, dot, frac = text.strip().partition(".")
    negative = whole.startswith("-")
    whole = whole.lstrip("+-")
    if not (whole or frac) or not (whole + frac).isdigit():
        raise UnitError(f"failed to parse {text} as a rational number")
    frac = frac.rstrip("0")
    if len(frac) > 9:
        raise UnitError("value is too precise")
    value = int(whole or "0") * 1_000_000_000 + int(frac.ljust(9, "0") or "0")
    return -value if negative else value


__all__ = [
    "bytes_size",
    "human_duration",
    "human_size",
    "memory_swap_bytes",
    "nano_cpus",
    "ram_in_bytes",
]
