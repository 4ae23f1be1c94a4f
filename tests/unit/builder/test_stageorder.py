"""builder.stageorder: parallel stages' events told in plan order."""

from __future__ import annotations

from freight.builder.model import BuildEvent, Output
from freight.builder.stageorder import StageOrder


def _order(stages: int) -> tuple[StageOrder, list[str]]:
    seen: list[str] = []

    def emit(event: BuildEvent) -> None:
        assert isinstance(event, Output)
        seen.append(event.text)

    return StageOrder(emit, stages), seen


def test_later_stages_wait_for_the_earlier_ones() -> None:
    order, seen = _order(3)
    first, second, third = (order.emit_for(i) for i in range(3))
    first(Output("a1"))
    third(Output("c1"))
    second(Output("b1"))
    first(Output("a2"))
    assert seen == ["a1", "a2"]
    order.finished(2)  # the third is done before the second: held still
    second(Output("b2"))
    assert seen == ["a1", "a2"]
    order.finished(0)
    assert seen == ["a1", "a2", "b1", "b2"]
    second(Output("b3"))  # live now
    order.finished(1)
    assert seen == ["a1", "a2", "b1", "b2", "b3", "c1"]
    first(Output("labels"))  # after every stage (the final --label step)
    assert seen[-1] == "labels"


def test_a_failed_stage_is_told_at_once() -> None:
    order, seen = _order(2)
    order.emit_for(1)(Output("broken"))
    assert seen == []
    order.failed(1)
    order.emit_for(1)(Output("exit 4"))
    assert seen == ["broken", "exit 4"]
