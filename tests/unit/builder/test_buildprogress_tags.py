"""cli.buildprogress: output tagged with its step (parallel stages) goes to that step."""

from __future__ import annotations

import io

from freight.cli.buildprogress import drive, make_view


def _step(n: int, state: str, stage: str) -> dict:
    info = {"step": n, "total": 4, "stage": stage, "instruction": f"RUN s{n}", "state": state}
    return {"aux": {"freight": {**info, "seconds": 0.1}}}


def test_interleaved_stages_are_attributed_by_tag() -> None:
    out = io.StringIO()
    messages = [
        _step(2, "running", "one"),
        {"stream": "Step 2/4 : RUN s2\n", "freightStep": 2},
        _step(4, "running", "two"),
        {"stream": "Step 4/4 : RUN s4\n", "freightStep": 4},
        {"stream": "from two\n", "freightStep": 4},
        {"stream": "from ", "freightStep": 2},  # a line in two pieces
        {"stream": "one\n", "freightStep": 2},
        {"stream": "half a line", "freightStep": 4},
        _step(4, "done", "two"),
        _step(2, "done", "one"),
        {"aux": {"ID": "sha256:" + "a" * 64}},
    ]
    assert drive(messages, make_view("plain", out, [])) == "sha256:" + "a" * 64
    lines = out.getvalue().splitlines()
    assert "#4 from two" in lines and "#2 from one" in lines
    assert "#4 half a line" in lines  # flushed when its step finished
    assert not any("Step 2/4" in line for line in lines)  # the view draws its own header
