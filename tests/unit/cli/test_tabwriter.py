"""Go text/tabwriter alignment as docker configures it (minwidth 10, padding 3)."""

from __future__ import annotations

from freight.cli.tabwriter import align


def test_empty_ps_header_matches_docker():
    header = "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n"
    assert (
        align(header) == "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    )


def test_columns_grow_to_widest_cell_plus_padding():
    text = "A\tB\tC\nlong-value-here\tx\tlast cell is never padded\n"
    assert (
        align(text)
        == "A                 B         C\nlong-value-here   x         last cell is never padded\n"
    )


def test_line_without_tabs_ends_a_column_block():
    text = "aaaaaaaaaaaaaa\tb\nno tabs here\nc\td\n"
    assert align(text) == "aaaaaaaaaaaaaa   b\nno tabs here\nc         d\n"


def test_trailing_empty_cells_and_no_final_newline():
    assert align("x\t\ty") == "x                   y"
    assert align("") == ""


def test_custom_widths():
    assert align("a\tb\n", minwidth=0, padding=1) == "a b\n"
