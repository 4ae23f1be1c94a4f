"""Column alignment the way Go's ``text/tabwriter`` does it.

Owns: turning tab-separated text into padded columns. docker's tables use
``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`` — minimum cell width 10,
padding 3, left aligned — so that is the default here.

Go's rule, kept exactly because output must match docker byte for byte: a
cell is text terminated by a tab; the last cell of a line is not part of any
column and is never padded. A column is a run of consecutive lines that all
have a tab-terminated cell at that index; its width is the widest cell plus
padding (at least ``minwidth``), so a line with fewer cells ends the block.
"""

from __future__ import annotations


def align(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Return ``text`` with its tab-separated cells padded into columns."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    _format(lines, 0, len(lines), [], out, minwidth, padding)
    return "\n".join(out)


def _format(
    lines: list[list[str]],
    line0: int,
    line1: int,
    widths: list[int],
    out: list[str],
    minwidth: int,
    padding: int,
) -> None:
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        # A cell in this column starts a block: print what came before it.
        _write_lines(lines, line0, this, widths, out)
        line0 = this
        width = minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        widths.append(width)
        _format(lines, line0, this, widths, out, minwidth, padding)
        widths.pop()
        line0 = this
    _write_lines(lines, line0, line1, widths, out)


def _write_lines(
    lines: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str]
) -> None:
    for cells in lines[line0:line1]:
        parts = []
        for j, cell in enumerate(cells):
            parts.append(cell.ljust(widths[j]) if j < len(widths) else cell)
        out.append("".join(parts))
