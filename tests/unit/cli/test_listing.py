"""ps/images/history rows and --format handling, against docker's outputs."""

from __future__ import annotations

from freight.cli.formatter import ellipsis, render, resolve_format
from freight.cli.listing import (
    IMAGES_HEADERS,
    IMAGES_TABLE,
    PS_HEADERS,
    ContainerRow,
    HistoryRow,
    display_ports,
    image_rows,
    truncate_id,
)

NOW = 1_700_000_000
CONTAINER = {
    "Id": "f" * 64,
    "Names": ["/web", "/other/alias"],
    "Image": "busybox",
    "ImageID": "sha256:" + "e" * 64,
    "Command": "echo hello",
    "Created": NOW - 7200,
    "State": "exited",
    "Status": "Exited (0) 2 hours ago",
    "Labels": {"a": "1", "b": "2"},
    "SizeRw": 12,
    "SizeRootFs": 4261550,
    "NetworkSettings": {"Networks": {"bridge": {}, "alpha": {}}},
}


def test_container_row_fields():
    row = ContainerRow(CONTAINER, now=NOW)
    assert row.ID() == "f" * 12
    assert row.Names() == "web"
    assert row.Command() == '"echo hello"'
    assert row.RunningFor() == "2 hours ago"
    assert row.Labels() == "a=1,b=2" and row.Label("b") == "2"
    assert row.Size() == "12B (virtual 4.26MB)"
    assert row.Networks() == "alpha,bridge"
    assert ContainerRow(CONTAINER, trunc=False).Names() == "web,other/alias"


def test_image_shown_as_short_id_when_run_by_id():
    c = dict(CONTAINER, Image="sha256:" + "e" * 64)
    assert ContainerRow(c).Image() == "e" * 12


def test_custom_table_and_raw_formats():
    rows = [ContainerRow(CONTAINER, now=NOW)]
    assert (
        render("table {{.Names}}\\t{{.State}}", rows, PS_HEADERS)
        == "NAMES     STATE\nweb       exited\n"
    )
    assert render("{{.Names}}: {{.Status}}", rows, PS_HEADERS) == "web: Exited (0) 2 hours ago\n"
    assert render("table {{upper .Names}}", rows, PS_HEADERS) == "NAMES\nWEB\n"


def test_json_format_is_the_row_fields():
    out = render(resolve_format("json", "", False), [ContainerRow(CONTAINER, now=NOW)], PS_HEADERS)
    assert out.startswith('{"Command":"\\"echo hello\\"","CreatedAt":')
    assert '"Names":"web"' in out


def test_quiet_uses_ids():
    assert resolve_format(None, "table X", True) == "{{.ID}}"
    assert resolve_format("{{.Names}}", "table X", True) == "{{.Names}}"


def test_images_table():
    images = [
        {
            "Id": "sha256:" + "a" * 64,
            "RepoTags": ["busybox:latest", "busybox:1.36"],
            "Created": NOW,
            "Size": 4261550,
        },
        {
            "Id": "sha256:" + "b" * 64,
            "RepoTags": [],
            "RepoDigests": [],
            "Created": NOW,
            "Size": 1000,
        },
    ]
    rows = image_rows(images)
    assert [(r.Repository(), r.Tag(), r.ID(), r.Size()) for r in rows] == [
        ("busybox", "latest", "a" * 12, "4.26MB"),
        ("busybox", "1.36", "a" * 12, "4.26MB"),
        ("<none>", "<none>", "b" * 12, "1kB"),
    ]
    table = render(IMAGES_TABLE, rows[:1], IMAGES_HEADERS)
    header, line = table.splitlines()
    assert header.startswith("REPOSITORY   TAG       IMAGE ID       CREATED")
    assert line.startswith("busybox      latest    aaaaaaaaaaaa   ") and line.endswith("   4.26MB")


def test_history_row():
    row = HistoryRow(
        {
            "Id": "<missing>",
            "CreatedBy": '/bin/sh -c #(nop)\tCMD ["sh"] and a lot more text here',
            "Size": 0,
        }
    )
    assert row.ID() == "<missing>"
    assert row.CreatedBy() == '/bin/sh -c #(nop) CMD ["sh"] and a lot more …'
    assert len(row.CreatedBy()) == 45
    assert row.Size() == "0B"


def test_helpers():
    assert truncate_id("sha256:" + "1" * 64) == "1" * 12
    assert ellipsis("abcdef", 4) == "abc…"
    assert ellipsis("abc", 4) == "abc"
    ports = [
        {"PrivatePort": 80, "PublicPort": 8080, "IP": "0.0.0.0", "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"},
    ]
    assert display_ports(ports) == "0.0.0.0:8080->80/tcp, 443/tcp"
