"""The Go template subset: docker's --format and inspect -f cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freight.cli.gotemplate import Template, TemplateError, go_print, go_sprintf, render

DATA = {
    "Id": "abc",
    "State": {"Status": "running", "Running": True, "Pid": 42, "ExitCode": 0},
    "Config": {
        "Env": ["A=1", "B=2"],
        "Labels": {"com.example.b": "2", "com.example.a": "1"},
        "Cmd": None,
        "Tty": False,
    },
    "Names": ["web", "db"],
    "Empty": [],
    "Float": 1.5,
}


@pytest.mark.parametrize(
    ("src", "out"),
    [
        ("{{.Id}}", "abc"),
        ("{{.State.Status}}", "running"),
        ("{{.State.Pid}}", "42"),
        ("{{.State.Running}}", "true"),
        ("{{.Config.Env}}", "[A=1 B=2]"),
        ("{{.Config.Labels}}", "map[com.example.a:1 com.example.b:2]"),
        ("{{.Config.Cmd}}", "<nil>"),
        ("{{.Nope}}", "<no value>"),
        ("{{.Float}}", "1.5"),
        ("{{json .Config.Env}}", '["A=1","B=2"]'),
        ("{{json .State}}", '{"Status":"running","Running":true,"Pid":42,"ExitCode":0}'),
        ("{{json .Config.Cmd}}", "null"),
        ('{{index .Config.Labels "com.example.a"}}', "1"),
        ("{{index .Names 1}}", "db"),
        ('{{join .Names ","}}', "web,db"),
        ("{{upper .State.Status}}", "RUNNING"),
        ('{{lower "ABC"}}', "abc"),
        ('{{title "hello big world"}}', "Hello Big World"),
        ('{{printf "%s:%d" .Id .State.Pid}}', "abc:42"),
        ('{{printf "%-5s|" .Id}}', "abc  |"),
        ('{{printf "%q" .Id}}', '"abc"'),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ("{{if .State.ExitCode}}bad{{else}}ok{{end}}", "ok"),
        ("{{if .Empty}}x{{else if .Names}}names{{else}}none{{end}}", "names"),
        ("{{range .Names}}[{{.}}]{{end}}", "[web][db]"),
        ("{{range .Empty}}x{{else}}empty{{end}}", "empty"),
        ("{{range $i, $n := .Names}}{{$i}}:{{$n}} {{end}}", "0:web 1:db "),
        (
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            "com.example.a=1;com.example.b=2;",
        ),
        ("{{with .State}}{{.Status}}{{end}}", "running"),
        ("{{$x := .Id}}{{$x}}-{{$.Id}}", "abc-abc"),
        ("{{.Id | upper}}", "ABC"),
        ('{{.Names | join ","}}'.replace('join ","', "len"), "2"),
        ("{{len .Names}}", "2"),
        ('{{if eq .State.Status "running" "paused"}}y{{end}}', "y"),
        ("{{if and .State.Running (not .Config.Tty)}}y{{end}}", "y"),
        ("{{if or .Empty .Names}}y{{end}}", "y"),
        ("{{if gt .State.Pid 10}}big{{end}}", "big"),
        ('a {{- " b " -}} c', "a b c"),
        ("{{/* a comment */}}x", "x"),
        ("{{(index .Names 0)}}", "web"),
        ("{{`raw`}}", "raw"),
    ],
)
def test_render(src, out):
    assert render(src, DATA) == out


class Row:
    def ID(self):  # noqa: N802
        return "123"

    def Label(self, name):  # noqa: N802
        return {"a": "1"}.get(name, "")


def test_methods_and_method_arguments():
    assert render('{{.ID}} {{.Label "a"}}', Row()) == "123 1"


def test_unknown_field_on_object_is_an_error():
    with pytest.raises(TemplateError, match="can't evaluate field Nope"):
        render("{{.Nope}}", Row())


@pytest.mark.parametrize("src", ["{{.Id", "{{if .Id}}x", "{{end}}", "{{nofunc .Id}}"])
def test_bad_templates(src):
    with pytest.raises(TemplateError):
        Template(src).execute(DATA)


@given(st.text().filter(lambda s: "{{" not in s))
def test_plain_text_passes_through(text):
    assert render(text, DATA) == text


def test_go_print_values():
    assert go_print([1, "a", None, True]) == "[1 a <nil> true]"
    assert go_print({"b": {"c": 1}, "a": []}) == "map[a:[] b:map[c:1]]"
    assert go_print(1e21) == "1e+21"
    assert go_print(2.0) == "2"


def test_sprintf_missing_and_extra():
    assert go_sprintf("%s %s", "a") == "a %!s(MISSING)"
    assert go_sprintf("%s", "a", "b") == "a%!(EXTRA b)"
