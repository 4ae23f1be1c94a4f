"""The cgroup v2 device filter's compiler: the instructions it emits and what they decide.

`devicebpf.evaluate` interprets the few opcodes the compiler emits, so each
decision is checked without loading anything into a kernel (the security
suite loads the same programs for real).
"""

from __future__ import annotations

import struct

import pytest

from freight.linux import devicebpf as d

CHAR, BLOCK = d.DEV_CHAR, d.DEV_BLOCK
R, W, M = d.ACC_READ, d.ACC_WRITE, d.ACC_MKNOD

# Docker's default list as specgen writes it (deny all, mknod any, the usual nodes).
DOCKER_DEFAULT = [
    d.rule_of(False, None, None, None, "rwm"),
    d.rule_of(True, "c", None, None, "m"),
    d.rule_of(True, "b", None, None, "m"),
    *(
        d.rule_of(True, "c", major, minor, "rwm")
        for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2))
    ),
    d.rule_of(True, "c", 136, -1, "rwm"),
    d.rule_of(True, "c", 10, 200, "rwm"),
]


def decide(rules: list[d.Rule], kind: int, access: int, major: int, minor: int) -> int:
    return d.evaluate(d.compile_rules(rules), kind, access, major, minor)


def test_prologue_loads_type_access_major_minor() -> None:
    prog = d.compile_rules([])
    assert [(i.code, i.dst, i.src, i.off, i.imm) for i in prog[:6]] == [
        (0x61, 2, 1, 0, 0),  # r2 = *(u32 *)(ctx + 0)
        (0x57, 2, 0, 0, 0xFFFF),  # r2 &= 0xffff: the device type
        (0x61, 3, 1, 0, 0),
        (0x77, 3, 0, 0, 16),  # r3 >>= 16: the access
        (0x61, 4, 1, 4, 0),  # major
        (0x61, 5, 1, 8, 0),  # minor
    ]
    # No rules: everything is denied (r0 = 0; exit).
    assert [(i.code, i.imm) for i in prog[6:]] == [(0xB7, 0), (0x95, 0)]


def test_encoding_is_struct_bpf_insn() -> None:
    insn = d.Insn(0x55, dst=4, src=0, off=3, imm=136)
    assert insn.encode() == struct.pack("<BBhi", 0x55, 4, 3, 136)
    assert d.Insn(0xBF, dst=1, src=3).encode()[1] == 0x31  # src in the high nibble
    assert len(d.encode(d.compile_rules(DOCKER_DEFAULT))) % 8 == 0


def test_rule_block_jumps_land_after_the_block() -> None:
    rule = d.rule_of(True, "c", 1, 5, "r")
    prog = d.compile_rules([rule])
    block = prog[6:-2]  # between the prologue and the final deny
    # type, access, major, minor tests, then r0 = 1; exit
    assert [i.code for i in block] == [0x55, 0x45, 0x55, 0x55, 0xB7, 0x95]
    for index, insn in enumerate(block[:4]):
        assert index + 1 + insn.off == len(block)  # the first instruction past the block
    assert block[1].imm == W | M  # any bit outside "r" fails the allow rule


def test_wildcards_and_type_a_emit_no_tests() -> None:
    prog = d.compile_rules([d.rule_of(True, "c", 136, -1, "rwm")])
    assert [i.code for i in prog[6:-2]] == [0x55, 0x55, 0xB7, 0x95]  # type, major only
    prog = d.compile_rules([d.rule_of(True, None, None, None, "rwm")])
    assert [(i.code, i.imm) for i in prog[6:]] == [(0xB7, 1), (0x95, 0)]  # allow all, no tail


def test_docker_default_list() -> None:
    assert decide(DOCKER_DEFAULT, CHAR, R | W, 1, 3) == 1  # /dev/null
    assert decide(DOCKER_DEFAULT, CHAR, R, 136, 7) == 1  # a pts
    assert decide(DOCKER_DEFAULT, CHAR, R, 1, 11) == 0  # /dev/kmsg
    assert decide(DOCKER_DEFAULT, BLOCK, R, 8, 0) == 0  # /dev/sda
    assert decide(DOCKER_DEFAULT, BLOCK, M, 8, 0) == 1  # mknod of anything
    assert decide(DOCKER_DEFAULT, CHAR, M, 1, 11) == 1
    assert decide(DOCKER_DEFAULT, CHAR, R, 10, 200) == 1  # /dev/net/tun
    # The deny-all comes first in OCI order, so the program stops after it.
    prog = d.compile_rules(DOCKER_DEFAULT)
    assert [(i.code, i.imm) for i in prog[-2:]] == [(0xB7, 0), (0x95, 0)]


def test_mapped_device_with_partial_access() -> None:
    rules = [*DOCKER_DEFAULT, d.rule_of(True, "c", 10, 237, "r")]  # --device /dev/x:r
    assert decide(rules, CHAR, R, 10, 237) == 1
    assert decide(rules, CHAR, W, 10, 237) == 0
    assert decide(rules, CHAR, R | W, 10, 237) == 0  # rw asks for more than r


def test_last_matching_rule_wins() -> None:
    rules = [
        d.rule_of(True, None, None, None, "rwm"),
        d.rule_of(False, "c", 1, 5, "w"),
    ]
    assert decide(rules, CHAR, R, 1, 5) == 1
    assert decide(rules, CHAR, W, 1, 5) == 0
    assert decide(rules, CHAR, R | W, 1, 5) == 0  # any overlap with a deny rule denies
    assert decide(rules, CHAR, W, 1, 3) == 1
    rules.append(d.rule_of(True, "c", 1, None, "rw"))
    assert decide(rules, CHAR, W, 1, 5) == 1  # a later allow overrides the deny


def test_privileged_allows_everything() -> None:
    rules = [d.rule_of(True, None, None, None, None)]
    assert decide(rules, BLOCK, R | W | M, 8, 0) == 1


@pytest.mark.parametrize(
    ("kind", "access", "message"),
    [("x", "rwm", "type 'x'"), ("c", "rx", "access 'rx'")],
)
def test_bad_rules_are_refused(kind: str, access: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        d.rule_of(True, kind, 1, 1, access)
