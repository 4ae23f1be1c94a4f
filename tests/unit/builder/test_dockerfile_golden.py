"""Golden Dockerfiles: tests/data/dockerfiles/NAME.Dockerfile -> NAME.json.

Each instruction is parsed and made typed with the values a build would have
at that point (meta ARGs for FROM; ARG defaults and ENV of the stage after),
and compared with the reviewed expectation. After a deliberate change:
FREIGHT_REGEN_GOLDEN=1 pytest tests/unit/builder/test_dockerfile_golden.py,
then review the diff of the .json files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from freight.builder import instructions as ins
from freight.builder.dockerfile import parse

DATA = Path(__file__).parents[2] / "data" / "dockerfiles"
CASES = sorted(p.stem for p in DATA.glob("*.Dockerfile"))


def evaluate(text: str) -> dict[str, Any]:
    df = parse(text)
    meta: dict[str, str] = {}
    env: dict[str, str] | None = None  # None: before the first FROM
    out = []
    for node in df.nodes:
        scope = meta if env is None or node.keyword == "from" else env
        inst = ins.to_instruction(node, scope, df.escape)
        if isinstance(inst, ins.From):
            env = {}
        scope = meta if env is None else env
        if isinstance(inst, ins.Arg):
            scope.update({k: v for k, v in inst.args if v is not None})
        elif isinstance(inst, ins.Env):
            scope.update(dict(inst.pairs))
        fields = dataclasses.asdict(inst)
        fields.pop("original")
        out.append(
            {
                "node": [node.keyword, node.flags, node.args, node.line, node.end_line],
                type(inst).__name__: fields,
            }
        )
    return {"directives": df.directives, "escape": df.escape, "instructions": out}


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    text = (DATA / f"{name}.Dockerfile").read_bytes().decode()
    got = json.loads(json.dumps(evaluate(text)))  # tuples -> lists, as stored
    expected_path = DATA / f"{name}.json"
    if os.environ.get("FREIGHT_REGEN_GOLDEN"):
        expected_path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    assert got == json.loads(expected_path.read_text())


def test_every_instruction_is_covered() -> None:
    seen = set()
    for name in CASES:
        for item in json.loads((DATA / f"{name}.json").read_text())["instructions"]:
            seen.add(item["node"][0])
    assert seen >= set(ins._BUILDERS)
