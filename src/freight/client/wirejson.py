"""JSON for the CLI's hot path, without ``import json``.

``json.decoder`` imports ``re``, and ``re`` imports ``enum``: about 10 ms of
every CLI command on this machine, most of an ``exec`` budget of 50 ms. The
work itself is done by the same C accelerator ``json`` uses (``_json``), so
results are exactly the stdlib's; this module only skips the pure-Python
scaffolding around it. Without ``_json`` (another interpreter) it falls back
to ``json``.

Errors: ``ValueError`` (``json.JSONDecodeError`` is one) for a malformed
document, as ``json.loads`` raises.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None  # type: ignore[assignment]


class _ScanContext:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _unserialisable(o: object) -> object:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


if _json is not None:
    _scan = _json.make_scanner(_ScanContext())

    def _encoder(separators: tuple[str, str], ensure_ascii: bool, default: Any) -> Any:
        strings = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
        item_separator, key_separator = separators
        return _json.make_encoder(
            {}, default or _unserialisable, strings, None,
            key_separator, item_separator, False, False, True,
        )  # fmt: skip

    def raw_decode(text: str, pos: int = 0) -> tuple[Any, int]:
        """The value starting at ``pos`` (no leading whitespace) and where it ends."""
        try:
            return _scan(text, pos)
        except StopIteration as stop:
            raise _error("Expecting value", text, stop.value) from None

    def dumps(
        obj: Any,
        separators: tuple[str, str] = (", ", ": "),
        ensure_ascii: bool = True,
        default: Any = None,
    ) -> str:
        """``json.dumps`` with these options (and ``indent=None``, unsorted keys)."""
        return "".join(_encoder(separators, ensure_ascii, default)(obj, 0))

else:  # pragma: no cover
    import json as _stdjson

    def raw_decode(text: str, pos: int = 0) -> tuple[Any, int]:
        return _stdjson.JSONDecoder().raw_decode(text, pos)

    def dumps(
        obj: Any,
        separators: tuple[str, str] = (", ", ": "),
        ensure_ascii: bool = True,
        default: Any = None,
    ) -> str:
        return _stdjson.dumps(
            obj, separators=separators, ensure_ascii=ensure_ascii, default=default
        )


def loads(data: str | bytes | bytearray) -> Any:
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    value, end = raw_decode(text, start)
    if text[end:].strip(_WHITESPACE):
        raise _error("Extra data", text, end)
    return value


def _error(message: str, text: str, pos: int) -> ValueError:
    """json's own error type; importing it is fine on this (rare) path."""
    from json import JSONDecodeError

    return JSONDecodeError(message, text, pos)
