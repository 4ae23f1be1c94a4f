"""The Dockerfile line grammar: directives, comments, continuations, heredocs, JSON."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.builder.dockerfile import (
    DockerfileError,
    Heredoc,
    parse,
    parse_instruction,
)
from freight.errors import InvalidArgument


def nodes(text: str) -> list[tuple[str, str, int, int]]:
    return [(n.keyword, n.args, n.line, n.end_line) for n in parse(text).nodes]


def test_error_is_an_invalid_argument_with_docker_words() -> None:
    e = DockerfileError(3, "unknown instruction: FOO")
    assert isinstance(e, InvalidArgument)
    assert (e.line, e.msg) == (3, "unknown instruction: FOO")
    assert str(e) == "dockerfile parse error on line 3: unknown instruction: FOO"


def test_keywords_are_case_insensitive_and_args_raw() -> None:
    df = parse("from alpine\n  run   echo  'a  b'  \ncmd [\"x\"]\n")
    assert [(n.keyword, n.args, n.line) for n in df.nodes] == [
        ("from", "alpine", 1),
        ("run", "echo  'a  b'", 2),
        ("cmd", '["x"]', 3),
    ]
    assert df.nodes[2].json_args == ["x"]
    assert df.nodes[1].json_args is None
    assert df.nodes[1].original == "run   echo  'a  b'  "  # as written, left-trimmed


def test_directives() -> None:
    df = parse("# syntax = docker/dockerfile:1.7\n#ESCAPE=`\n# check=skip=all\nFROM x\n")
    assert df.directives == {
        "syntax": "docker/dockerfile:1.7",
        "escape": "`",
        "check": "skip=all",
    }
    assert df.escape == "`"


@pytest.mark.parametrize(
    "text",
    [
        "# comment\n# escape=`\nFROM x\n",  # a comment ends directives
        "\n# escape=`\nFROM x\n",  # so does an empty line
        "FROM x\n# escape=`\nRUN a\n",  # and an instruction
        "# unknown=1\n# escape=`\nFROM x\n",  # and an unknown directive
    ],
)
def test_directives_only_at_the_top(text: str) -> None:
    df = parse(text)
    assert df.escape == "\\"
    assert "escape" not in df.directives


def test_directive_errors() -> None:
    with pytest.raises(DockerfileError, match="line 2: only one escape parser directive"):
        parse("# escape=`\n# escape=\\\nFROM x\n")
    with pytest.raises(DockerfileError, match="invalid escape token 'x' does not match"):
        parse("# escape=x\nFROM x\n")


def test_continuations_comments_and_empty_lines() -> None:
    text = (
        "FROM x\n"
        "RUN a \\\n"
        "  # a comment inside\n"
        "\n"
        "    \t\n"
        "  b \\  \n"
        "  c\n"
        "   # indented comment\n"
        "ENV k=v\n"
    )
    assert nodes(text) == [
        ("from", "x", 1, 1),
        ("run", "a   b   c", 2, 7),
        ("env", "k=v", 9, 9),
    ]


def test_backtick_escape_continues_and_backslash_is_plain() -> None:
    df = parse("# escape=`\nFROM x\nRUN dir C:\\ `\n  /s\nCOPY a\\ b\\ c:\\\n")
    assert [(n.keyword, n.args) for n in df.nodes] == [
        ("from", "x"),
        ("run", "dir C:\\   /s"),
        ("copy", "a\\ b\\ c:\\"),
    ]


def test_continuation_at_end_of_file() -> None:
    assert nodes("FROM x\nRUN a \\") == [("from", "x", 1, 1), ("run", "a", 2, 2)]


def test_crlf_and_bom() -> None:
    df = parse("\ufeff# escape=`\r\nFROM x\r\nRUN a `\r\n  b\r\n")
    assert df.escape == "`"
    assert [(n.keyword, n.args) for n in df.nodes] == [("from", "x"), ("run", "a   b")]


def test_inline_hash_is_not_a_comment() -> None:
    assert nodes("FROM x\nRUN echo # not a comment\n")[1][1] == "echo # not a comment"


def test_flags_are_split_off() -> None:
    node = parse('FROM x\nCOPY --from=build --chown="1:2" --link a b\n').nodes[1]
    assert node.flags == ["--from=build", "--chown=1:2", "--link"]
    assert node.args == "a b"
    node = parse("FROM x\nRUN --network=none -- echo --x\n").nodes[1]
    assert (node.flags, node.args) == (["--network=none"], "echo --x")


@pytest.mark.parametrize(
    ("args", "json_args"),
    [
        ('["a", "b c"]', ["a", "b c"]),
        ("[]", []),
        ('  ["x"]', ["x"]),
        ('["a", ', None),  # not JSON: shell form
        ("[ -f x ] && y", None),
        ("['single']", None),
        ('["a"] trailing', None),
        ("echo [x]", None),
    ],
)
def test_json_or_shell_form(args: str, json_args: list[str] | None) -> None:
    assert parse(f"FROM x\nRUN {args}\n").nodes[1].json_args == json_args


def test_json_array_of_non_strings_is_an_error() -> None:
    with pytest.raises(DockerfileError) as e:
        parse("FROM x\nCMD [1, 2]\n")
    assert e.value.line == 2
    assert e.value.msg == "when using JSON array syntax, arrays must be comprised of strings only"


def test_json_only_for_instructions_that_take_it() -> None:
    assert parse('FROM x\nUSER ["a"]\n').nodes[1].json_args is None


def test_heredocs() -> None:
    text = (
        "FROM x\n"
        "RUN <<EOF\n"
        "echo one\n"
        "  EOF\n"
        "EOF\n"
        "COPY <<-'A' <<\"B\" /dest/\n"
        "\tfirst\n"
        "\t\tA\n"
        "second $x\n"
        "B\n"
        "RUN 3<<X cat <&3\n"
        "x\n"
        "X\n"
        "ENV a=<<EOF\n"
    )
    df = parse(text)
    run, copy, fd, env = df.nodes[1:]
    assert run.heredocs == [Heredoc("EOF", "echo one\n  EOF\n", True, False)]
    assert (run.line, run.end_line) == (2, 5)
    assert copy.heredocs == [
        Heredoc("A", "\tfirst\n", False, True),
        Heredoc("B", "second $x\n", False, False),
    ]
    assert (copy.line, copy.end_line) == (6, 10)
    assert fd.heredocs == [Heredoc("X", "x\n", True, False)]
    assert env.heredocs == []  # only RUN, COPY and ADD take heredocs


def test_heredoc_partly_quoted_marker_does_not_expand() -> None:
    node = parse('FROM x\nRUN <<E"O"F\nbody\nEOF\n').nodes[1]
    assert node.heredocs == [Heredoc("EOF", "body\n", False, False)]


def test_heredoc_in_onbuild() -> None:
    node = parse("FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\nUSER u\n").nodes[1]
    assert node.heredocs == [Heredoc("EOF", "echo hi\n", True, False)]
    assert node.end_line == 4


def test_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileError, match="line 2: unterminated heredoc"):
        parse("FROM x\nRUN <<EOF\necho\n")


def test_heredoc_lines_are_not_comments_or_continuations() -> None:
    node = parse("FROM x\nRUN <<EOF\n# kept\nline \\\n\nEOF\n").nodes[1]
    assert node.heredocs[0].content == "# kept\nline \\\n\n"


@pytest.mark.parametrize(
    ("text", "line", "msg"),
    [
        ("", 1, "file with no instructions"),
        ("# only a comment\n\n", 1, "file with no instructions"),
        ("FROM x\nFOO bar\n", 2, "unknown instruction: FOO"),
        ("FROM x\nrunn bar\n", 2, "unknown instruction: RUNN"),
        ("RUN x\n", 1, "no build stage in current context"),
        ("ARG a\nENV b=c\nFROM x\n", 2, "no build stage in current context"),
        ("FROM x\nCOPY --bogus=1 a b\n", 2, "unknown flag: bogus"),
        ("FROM x\nUSER\n", 2, "USER requires exactly one argument"),
    ],
)
def test_parse_errors(text: str, line: int, msg: str) -> None:
    with pytest.raises(DockerfileError) as e:
        parse(text)
    assert (e.value.line, e.value.msg) == (line, msg)


def test_meta_args_before_from_are_fine() -> None:
    assert [n.keyword for n in parse("ARG a=1\nARG b\nFROM $a\n").nodes] == ["arg", "arg", "from"]


def test_parse_instruction_for_onbuild_triggers() -> None:
    node = parse_instruction("RUN echo hi")
    assert (node.keyword, node.args, node.line) == ("run", "echo hi", 1)
    node = parse_instruction("COPY <<EOF /f\nbody\nEOF")
    assert node.heredocs == [Heredoc("EOF", "body\n", True, False)]
    node = parse_instruction("RUN a `\n b", escape="`")
    assert node.args == "a  b"
    with pytest.raises(DockerfileError, match="unknown instruction: NOPE"):
        parse_instruction("NOPE x")


# properties ---------------------------------------------------------------------------

_LINES = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "FROM x",
                "FROM a AS b",
                "RUN <<EOF",
                "EOF",
                "COPY <<-X /y",
                "\tX",
                "# escape=`",
                "# syntax=x",
                "RUN a \\",
                "RUN a `",
                'CMD ["a"',
                "CMD [1]",
                'ENV a="b',
                "ARG x=${y",
                "  ",
                "",
                "# c",
                "ONBUILD ONBUILD x",
                "HEALTHCHECK --interval=x CMD y",
                "RUN --mount=type=cache x",
                "EXPOSE 1-99999",
            ]
        ),
        st.text(max_size=30),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_LINES, st.sampled_from(["\n", "\r\n"]))
def test_parse_fails_only_with_dockerfile_error(lines: list[str], newline: str) -> None:
    try:
        df = parse(newline.join(lines))
    except DockerfileError as e:
        assert e.line >= 1
        return
    for node in df.nodes:
        assert node.keyword == node.keyword.lower()
        assert 1 <= node.line <= node.end_line


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    with contextlib.suppress(DockerfileError):
        parse(text)
