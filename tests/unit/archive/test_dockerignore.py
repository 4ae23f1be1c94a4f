"""archive.dockerignore: moby's .dockerignore semantics, by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight import errors
from freight.archive.dockerignore import IgnoreMatcher, read_patterns


def matcher(text: str) -> IgnoreMatcher:
    return IgnoreMatcher(read_patterns(text))


# reading the file -------------------------------------------------------------


def test_read_patterns_cleans_like_docker() -> None:
    text = "\ufeff# comment\n\n  *.log  \n./a//b/\n/abs\n!  keep.log\n  # not a comment\n!/x/../y\n"
    assert read_patterns(text) == ["*.log", "a/b", "abs", "!keep.log", "# not a comment", "!y"]


def test_read_patterns_keeps_a_lone_slash_and_dot() -> None:
    assert read_patterns("/\n.\n") == ["/", "."]


def test_a_bare_exclamation_mark_is_an_error() -> None:
    with pytest.raises(errors.InvalidArgument, match="illegal exclusion pattern"):
        IgnoreMatcher(["!"])


@pytest.mark.parametrize("pattern", ["a[", "[]a]x", "[z-a]"])
def test_bad_classes_are_syntax_errors(pattern: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="syntax error in pattern"):
        IgnoreMatcher([pattern])


# matching -------------------------------------------------------------------------

CASES = [
    # (patterns, path, excluded)
    ("*.log", "a.log", True),
    ("*.log", "dir/a.log", False),  # "*" does not cross "/"
    ("*/*.log", "dir/a.log", True),
    ("**/*.log", "a.log", True),
    ("**/*.log", "x/y/z/a.log", True),
    ("**", "anything/at/all", True),
    ("a/**", "a/b/c", True),
    ("a/**", "a", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/x/y/c", False),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False),
    ("file?", "file/", False),
    ("[abc].txt", "b.txt", True),
    ("[^abc].txt", "b.txt", False),
    ("[^abc].txt", "d.txt", True),
    ("[a-c]x", "cx", True),
    ("build", "build/out/bin", True),  # a matched parent takes its children
    ("build", "builder", False),
    ("*.log", "x.log/inner", True),
    ("a.b", "axb", False),  # "." is no regex here
    ("a+(b)|{c}$", "a+(b)|{c}$", True),
    ("\\*", "*", True),
    ("\\*", "x", False),
    ("node_modules\n!node_modules/keep", "node_modules/keep/f", False),
    ("node_modules\n!node_modules/keep", "node_modules/other", True),
    ("*.md\n!README.md", "README.md", False),
    ("*.md\n!README.md\nREADME.md", "README.md", True),  # the last match wins
    ("!x\nx", "x", True),
    ("/abs/path", "abs/path", True),
    ("./rel", "rel/x", True),
    ("dir/", "dir", True),
    ("a", ".", False),
]


@pytest.mark.parametrize(("text", "path", "excluded"), CASES)
def test_matches(text: str, path: str, excluded: bool) -> None:
    assert matcher(text).matches(path) is excluded


def test_paths_are_cleaned_before_matching() -> None:
    m = matcher("a/b")
    assert m.matches("./a/b") and m.matches("a//b/") and m.matches("/a/b/c")


# may_include_below ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "directory", "expected"),
    [
        ("build", "build", False),  # no exceptions at all
        ("build\n!build/keep", "build", True),
        ("build\n!build/keep", "build/other", False),
        ("build\n!build/keep", "build/keep", True),
        ("build\n!build/keep", "src", False),
        ("build\n!*/keep", "build", True),
        ("build\n!**/keep", "build/deep/er", True),
        ("build\n!b*", "build", True),  # re-includes the directory itself
        ("build\n!b*", "build/x", True),  # ... and so everything below
        ("build\n![ab]uild/x", "build", True),
        ("build\n![xy]uild/x", "build", False),
        ("a/b\n!a", "a/b/c", True),
    ],
)
def test_may_include_below(text: str, directory: str, expected: bool) -> None:
    assert matcher(text).may_include_below(directory) is expected


# properties ------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "ab", "a.b", "ba", ".x"])
PATHS = st.lists(NAMES, min_size=1, max_size=4).map("/".join)
GLOB_PARTS = st.sampled_from(["a", "b", "ab", "*", "?", "**", "a*", "*b", "[ab]", "[^a]", "a.b"])
GLOBS = st.lists(GLOB_PARTS, min_size=1, max_size=3).map("/".join)
PATTERNS = st.lists(
    st.tuples(st.booleans(), GLOBS).map(lambda t: ("!" if t[0] else "") + t[1]), max_size=5
)


@settings(max_examples=300, deadline=None)
@given(PATTERNS, PATHS, PATHS)
def test_skipping_a_directory_is_safe(patterns: list[str], directory: str, below: str) -> None:
    """What a walker relies on: an excluded directory whose exceptions cannot
    reach below it has nothing below it that is included."""
    m = IgnoreMatcher(patterns)
    if m.matches(directory) and not m.may_include_below(directory):
        assert m.matches(f"{directory}/{below}")


@settings(max_examples=300, deadline=None)
@given(st.lists(GLOBS, min_size=1, max_size=4), PATHS, PATHS)
def test_without_exceptions_children_follow_their_parent(
    patterns: list[str], parent: str, child: str
) -> None:
    m = IgnoreMatcher(patterns)
    assert not m.may_include_below(parent)
    if m.matches(parent):
        assert m.matches(f"{parent}/{child}")


@settings(max_examples=200, deadline=None)
@given(st.lists(PATHS, min_size=1, max_size=4), PATHS)
def test_literal_patterns_match_the_path_and_below(literals: list[str], path: str) -> None:
    m = IgnoreMatcher(literals)
    expected = any(path == lit or path.startswith(lit + "/") for lit in literals)
    assert m.matches(path) is expected


@settings(max_examples=200, deadline=None)
@given(PATTERNS, PATHS)
def test_an_exception_for_the_path_itself_wins_last(patterns: list[str], path: str) -> None:
    escaped = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in path)
    assert not IgnoreMatcher([*patterns, "!" + escaped]).matches(path)
    assert IgnoreMatcher([*patterns, escaped]).matches(path)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "./b", "/c", "!d", "#e", "  f/  ", "", "g//h", "!/i"])))
def test_reading_twice_changes_nothing(lines: list[str]) -> None:
    once = read_patterns("\n".join(lines))
    assert read_patterns("\n".join(once)) == once


@settings(max_examples=200, deadline=None)
@given(PATHS, PATHS)
def test_double_star_prefix_matches_at_any_depth(prefix: str, name: str) -> None:
    last = name.rsplit("/", 1)[-1]
    m = IgnoreMatcher(["**/" + last])
    assert m.matches(last) and m.matches(f"{prefix}/{last}")
