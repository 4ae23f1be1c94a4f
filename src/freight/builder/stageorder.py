"""Stages run side by side, their events told one stage after another.

The legacy builder's stream (`Step N/M`, a step's output, ` ---> id`) reads as
one sequence, and views attribute a line of output to the step announced
before it; so the stages' events go out in plan order, each stage's as one
block:

    stage 0 (first not finished)   its events go out as they come
    stage 1, 2, ... running too     theirs are held, in order
    stage 0 finishes                stage 1's held events go out, then stage 1
                                    is live; a stage already finished is
                                    flushed whole and skipped
    a stage fails                   its held events go out at once (its output
                                    says why), then the error

With `hold=False` (a client that reads the step each output belongs to,
freight's views) every stage's events go out as they come.

Emit functions are called from worker threads (and the loop): one lock.
"""

from __future__ import annotations

import threading

from freight.builder.model import BuildEvent, Emit


class StageOrder:
    def __init__(self, emit: Emit, stages: int, hold: bool = True) -> None:
        self._emit = emit
        self._hold = hold
        self._lock = threading.Lock()
        self._held: list[list[BuildEvent]] = [[] for _ in range(stages)]
        self._done = [False] * stages
        self._live = [False] * stages  # a failed stage: no holding any more
        self._active = 0  # the first stage not finished

    def emit_for(self, position: int) -> Emit:
        """The emit function of the stage at `position` in plan order."""
        if not self._hold:
            return self._emit

        def emit(event: BuildEvent) -> None:
            with self._lock:
                if position <= self._active or self._live[position]:
                    self._emit(event)
                else:
                    self._held[position].append(event)

        return emit

    def finished(self, position: int) -> None:
        with self._lock:
            self._done[position] = True
            while self._active < len(self._done) and self._done[self._active]:
                self._active += 1
                if self._active < len(self._held):
                    self._release(self._active)

    def failed(self, position: int) -> None:
        with self._lock:
            self._live[position] = True
            self._release(position)

    def _release(self, position: int) -> None:
        held, self._held[position] = self._held[position], []
        for event in held:
            self._emit(event)
