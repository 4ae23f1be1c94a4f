"""Fuzzing the Dockerfile parser (`builder.dockerfile`) and instruction building
(`builder.instructions`).

Properties: any text gives a Dockerfile or an InvalidArgument (DockerfileError),
never another exception; every parsed instruction builds (variables expanded
from an arbitrary environment) or fails with InvalidArgument; and a parsed file
written back from its instructions' original text parses to the same
instructions.
"""

from __future__ import annotations

import contextlib

from fuzz_settings import fuzz
from hypothesis import example, given
from hypothesis import strategies as st

from freight import errors
from freight.builder import dockerfile, instructions

KEYWORD = st.sampled_from(
    sorted(dockerfile.KEYWORDS) + ["FROM", "Run", "bogus", "#", "# escape=`", "# syntax=x"]
)
PIECE = st.sampled_from(
    [
        " ", "  ", "\t", "a", "busybox", "AS", "b", "--from=a", "--mount=type=cache,target=/x",
        "--chown=1:1", "--platform=$X", "--network=none", "$X", "${X:-d}", "${X:+y}", "${", "}",
        '"', "'", "\\", "`", "[", "]", '["a"]', '["a", 1]', "[\"sh\", \"-c\"]", ",", "=", "k=v",
        "<<EOF", "<<-'E'", "2<<X", "EOF", "E", "X", "\n", "\\\n", "`\n", "#c\n", "CMD", "ONBUILD",
        "--interval=1s", "NONE", "80/tcp", "1-2/udp", "\x00", "é", "{}",
    ]
)  # fmt: skip
LINE = st.tuples(KEYWORD, st.lists(PIECE, max_size=8)).map(lambda t: t[0] + " " + "".join(t[1]))
TEXT = st.lists(LINE, min_size=1, max_size=8).map("\n".join)
ENV = st.dictionaries(st.sampled_from(["X", "Y", "HOME", "PATH"]), st.text(max_size=8), max_size=3)

SEEDS = [
    "FROM busybox\nRUN <<EOF\necho hi\nEOF\n",
    "# escape=`\nFROM busybox\nRUN echo a `\n  b\n",
    "FROM busybox AS a\nFROM a\nCOPY --from=a /x /y\n",
    'FROM busybox\nCMD ["a", 1]\n',
    "FROM busybox\nRUN <<EOF\nnever ends\n",
    "FROM ${X:-busybox}\nARG X\nENV A=${X:?need}\n",
    "FROM busybox\nHEALTHCHECK --interval=1s CMD true\nONBUILD ONBUILD RUN x\n",
    "FROM busybox\nEXPOSE 80/tcp 1-2/udp 99999\n",
    "FROM busybox\n" + "RUN a \\\n" * 500 + "b\n",
]


def _parse(text: str) -> dockerfile.Dockerfile | None:
    try:
        return dockerfile.parse(text)
    except errors.InvalidArgument:
        return None


def _key(node: dockerfile.Node) -> tuple:
    return (node.keyword, node.flags, node.args, node.json_args)


@fuzz(400)
@given(text=st.one_of(TEXT, st.text(max_size=300)), env=ENV)
@example(text=SEEDS[0], env={})
@example(text=SEEDS[1], env={})
@example(text=SEEDS[2], env={})
@example(text=SEEDS[3], env={})
@example(text=SEEDS[4], env={})
@example(text=SEEDS[5], env={"X": "v"})
@example(text=SEEDS[6], env={})
@example(text=SEEDS[7], env={})
@example(text=SEEDS[8], env={})
def test_parse_and_build_raise_only_invalid_argument(text: str, env: dict[str, str]) -> None:
    parsed = _parse(text)
    if parsed is None:
        return
    for node in parsed.nodes:
        with contextlib.suppress(errors.InvalidArgument):
            instructions.to_instruction(node, env, parsed.escape)


@fuzz(300)
@given(text=TEXT)
@example(text=SEEDS[1])
@example(text=SEEDS[2])
@example(text=SEEDS[6])
def test_original_text_round_trips(text: str) -> None:
    parsed = _parse(text)
    if parsed is None or any(n.heredocs for n in parsed.nodes):
        return
    header = f"# escape={parsed.escape}\n" if parsed.escape != "\\" else ""
    again = dockerfile.parse(header + "\n".join(n.original for n in parsed.nodes))
    assert [_key(n) for n in again.nodes] == [_key(n) for n in parsed.nodes]
