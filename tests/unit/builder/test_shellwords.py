"""Shell-word expansion as Docker's builder does it: quotes, escapes, ${} modifiers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freight.builder.shellwords import (
    ExpansionError,
    expand,
    expand_raw,
    expand_words,
    split_words,
)

ENV = {"v": "value", "empty": "", "path": "/usr/local/bin/tool.tar.gz", "sp": "a  b"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("plain", "plain"),
        ("$v", "value"),
        ("${v}", "value"),
        ("$v-x", "value-x"),
        ("${v}x", "valuex"),
        ("$unset", ""),
        ("${unset}", ""),
        ("$", "$"),
        ("a$", "a$"),
        ("$/x", "$/x"),
        ("'$v'", "$v"),
        ('"$v"', "value"),
        ('"a b"', "a b"),
        ("a b", "a b"),
        ("\\$v", "$v"),
        ("a\\ b", "a b"),
        ('"\\$v \\" \\\\ \\n"', '$v " \\ \\n'),
        ("'a\\b'", "a\\b"),
        ("x\\", "x"),
        ("${unset:-def}", "def"),
        ("${empty:-def}", "def"),
        ("${empty-def}", ""),
        ("${unset-def}", "def"),
        ("${v:-def}", "value"),
        ("${unset:-$v}", "value"),
        ("${unset:-'a b'}", "a b"),
        ("${v:+alt}", "alt"),
        ("${empty:+alt}", ""),
        ("${empty+alt}", "alt"),
        ("${unset+alt}", ""),
        ("${v:?boom}", "value"),
        ("${path#*/}", "usr/local/bin/tool.tar.gz"),
        ("${path##*/}", "tool.tar.gz"),
        ("${path%.*}", "/usr/local/bin/tool.tar"),
        ("${path%%.*}", "/usr/local/bin/tool"),
        ("${path#nomatch}", "/usr/local/bin/tool.tar.gz"),
        ("${path/local/LOCAL}", "/usr/LOCAL/bin/tool.tar.gz"),
        ("${path//o/0}", "/usr/l0cal/bin/t00l.tar.gz"),
        ("${path/o}", "/usr/lcal/bin/tool.tar.gz"),
        ("${path/#\\/usr/X}", "/usr/local/bin/tool.tar.gz"),
        ("${v/?a/Z}", "Zlue"),
        ("${v/[lu]/_}", "va_ue"),
        ("$1", ""),
        ("${#}", ""),
    ],
)
def test_expand(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_backtick_escape() -> None:
    assert expand("a`$v", ENV, "`") == "a$v"
    assert expand("C:\\dir", ENV, "`") == "C:\\dir"
    assert expand('"`""', ENV, "`") == '"'


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${unset:?}", "unset: is not allowed to be unset"),
        ("${unset?custom}", "unset: custom"),
        ("${empty:?}", "empty: is not allowed to be empty"),
        ("${empty:?must set}", "empty: must set"),
        ("'open", "unexpected end of statement while looking for matching single-quote"),
        ('"open', "unexpected end of statement while looking for matching double-quote"),
        ("${v", "syntax error: missing '}'"),
        ("${v:-x", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${:x}", "syntax error: bad substitution"),
        ("${v:#x}", "unsupported modifier (:#) in substitution"),
        ("${v^x}", "unsupported modifier (^) in substitution"),
    ],
)
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(ExpansionError) as e:
        expand(word, ENV)
    assert str(e.value) == message


def test_empty_unset_not_an_error_without_colon() -> None:
    assert expand("${empty?x}", ENV) == ""


def test_keep_unset_leaves_variables_as_written() -> None:
    assert expand("$unset ${unset} ${unset:-d} $v", ENV, keep_unset=True) == (
        "$unset ${unset} ${unset:-d} value"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b  c", ["a", "b", "c"]),
        ('"a b" c', ["a b", "c"]),
        ('"" x', ["", "x"]),
        ("$sp", ["a", "b"]),
        ('"$sp"', ["a  b"]),
        ("x$sp", ["xa", "b"]),
        ("$unset", []),
        ("a\\ b", ["a b"]),
        ("", []),
    ],
)
def test_expand_words(text: str, expected: list[str]) -> None:
    assert expand_words(text, ENV) == expected


def test_expand_raw_is_a_shell_heredoc_body() -> None:
    body = "echo \"$v\" '$v' \\$v \\\\ \\n don't ${unset:-d}\n"
    assert expand_raw(body, ENV) == "echo \"value\" 'value' $v \\ \\n don't d\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a=1 b="two words" c', ["a=1", 'b="two words"', "c"]),
        ("a\\ b c", ["a\\ b", "c"]),
        ("'x y'\"z\"", ["'x y'\"z\""]),
        ('""', ['""']),
        ("  ", []),
        ("tail\\", ["tail"]),
    ],
)
def test_split_words_keeps_quotes(text: str, expected: list[str]) -> None:
    assert split_words(text) == expected


# properties -----------------------------------------------------------------------------

_PLAIN = st.text(
    alphabet=st.characters(blacklist_characters="$'\"\\`", blacklist_categories=("Cs",)),
    max_size=40,
)
_WORDY = st.text(alphabet="ab $'\"\\{}:-+?#%/*x\t", max_size=30)


@given(_PLAIN)
def test_plain_text_is_its_own_expansion(text: str) -> None:
    assert expand(text, ENV) == text
    assert expand(text, ENV, "`") == text


@given(_PLAIN)
def test_plain_words_split_on_whitespace(text: str) -> None:
    assert expand_words(text, ENV) == text.split()


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_single_quoting_is_literal(text: str) -> None:
    quoted = "'" + text.replace("'", "'\"'\"'") + "'"
    assert expand(quoted, ENV) == text


@given(_WORDY)
def test_expansion_fails_only_with_expansion_error(text: str) -> None:
    try:
        expand(text, ENV)
        expand_words(text, ENV)
        expand_raw(text, ENV)
    except ExpansionError:
        pass
