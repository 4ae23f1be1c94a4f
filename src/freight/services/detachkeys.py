"""Detach keys: Docker's "ctrl-p,ctrl-q" notation and a scanner over an input stream.

A client detaches from attach/exec by typing the sequence; the daemon watches
the client's input for it, strips it, and ends the session without touching
the process. Bytes that start the sequence but do not complete it are passed
on once it is clear they are ordinary input.
"""

from __future__ import annotations

from freight.errors import InvalidArgument

DEFAULT = "ctrl-p,ctrl-q"
_CTRL_SPECIALS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse(spec: str) -> bytes:
    """'ctrl-p,ctrl-q' → b'\\x10\\x11'; a single character stands for itself."""
    out = bytearray()
    for part in spec.split(","):
        key = part.strip()
        if len(key) == 1:
            out.append(ord(key))
        elif key.lower().startswith("ctrl-") and len(key) == 6:
            ch = key[5].lower()
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in _CTRL_SPECIALS:
                out.append(_CTRL_SPECIALS[ch])
            else:
                raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
        else:
            raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
    if not out:
        raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class Scanner:
    """Feeds input through; reports when the detach sequence was typed."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, detached?)."""
        out = bytearray()
        for byte in data:
            if byte == self.keys[self._matched]:
                self._matched += 1
                if self._matched == len(self.keys):
                    self._matched = 0
                    return bytes(out), True
                continue
            out += self.keys[: self._matched]  # a false start: it was input after all
            self._matched = 0
            if byte == self.keys[0]:
                self._matched = 1
            else:
                out.append(byte)
        return bytes(out), False
