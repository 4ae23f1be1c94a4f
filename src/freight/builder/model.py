"""What a build is asked to do and what it tells while doing it: plain typed models.

The API edge (apiserver/routes_build.py) turns `POST /build`'s query into a
`BuildRequest` and the events into Docker's JSON message stream; the
builder never sees either wire format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from freight.distribution.auth import Credentials
from freight.errors import FreightError


@dataclass
class BuildRequest:
    context: Path  # the extracted (or local) context directory
    dockerfile: str = "Dockerfile"  # path inside the context
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    platform: str = ""
    no_cache: bool = False
    pull: bool = False
    cache_from: list[str] = field(default_factory=list)
    remove: bool = True  # --rm: intermediate containers of successful steps
    force_remove: bool = False  # --force-rm: also those of failed steps
    quiet: bool = False
    network_mode: str = "default"
    extra_hosts: list[str] = field(default_factory=list)
    secrets: dict[str, bytes] = field(default_factory=dict)
    credentials: dict[str, Credentials] = field(default_factory=dict)  # registry host -> login
    # The client takes step events and step-tagged output (freight's views): parallel
    # stages then report as they go, else one stage after another (stageorder).
    live_steps: bool = False


@dataclass(frozen=True)
class Output:
    """Text for the build's log (docker's `stream` messages)."""

    text: str
    step: int = 0  # the step it belongs to (0: the build's own)


@dataclass(frozen=True)
class StepEvent:
    """A step changed state (freight's live view; not part of Docker's stream)."""

    step: int
    total: int
    stage: str
    instruction: str
    state: str  # running | cached | done | error
    seconds: float = 0.0


BuildEvent = Output | StepEvent
Emit = Callable[[BuildEvent], None]  # thread-safe: steps report from worker threads


class BuildFailed(FreightError):
    """A step failed: docker's message for it (the API sends it as `error`)."""


class StepFailed(BuildFailed):
    """A RUN step exited non-zero."""

    def __init__(self, command: str, code: int) -> None:
        super().__init__(f"The command '{command}' returned a non-zero code: {code}")
        self.code = code
