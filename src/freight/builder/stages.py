"""A Dockerfile's stages and which of them a build needs, as a DAG.

    ARG BASE=busybox            <- meta ARG: only FROM lines see it
    FROM $BASE AS deps          stage 0 "deps"
    FROM deps AS app            stage 1, needs 0 (its base)
    COPY --from=deps /a /a      ...also through COPY --from / RUN --mount=from=
    FROM busybox                stage 2, needs nothing: built in parallel with 0

The target (`--target`, else the last stage) and what it needs, transitively,
are built; other stages are skipped. A stage's dependencies are found from
the raw flags, before any step runs, so independent stages can start at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from freight.builder.dockerfile import Dockerfile, DockerfileError, Node
from freight.builder.instructions import Arg, From, to_instruction
from freight.builder.shellwords import expand
from freight.errors import InvalidArgument

# ARGs every build knows without declaring them (not in the cache key or history).
PROXY_ARGS = frozenset(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
)
# BuildKit's automatic platform ARGs; SOURCE_DATE_EPOCH makes builds reproducible.
PLATFORM_ARGS = (
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
)


@dataclass
class Stage:
    index: int
    name: str | None  # lower-cased `AS name`
    base: From  # FROM with meta ARGs expanded
    nodes: list[Node]  # the instructions after FROM
    from_node: Node
    needs: set[int] = field(default_factory=set)  # stages this one reads from

    @property
    def label(self) -> str:
        return self.name or str(self.index)


@dataclass
class Plan:
    stages: list[Stage]
    target: int  # index of the stage whose result is the image
    needed: list[int]  # stages to build, each after the ones it needs
    meta_args: dict[str, str | None]  # declared before the first FROM, build args applied

    @property
    def steps(self) -> int:
        """Docker's "Step N/M" total: the instructions of the stages built, FROMs included."""
        return sum(1 + len(self.stages[i].nodes) for i in self.needed)


def plan(df: Dockerfile, build_args: dict[str, str | None], target: str = "") -> Plan:
    meta_nodes, stage_nodes = _split_meta(df)
    meta = _meta_args(meta_nodes, build_args, df.escape)
    meta_env = {k: v for k, v in meta.items() if v is not None}
    stages: list[Stage] = []
    for from_node, nodes in stage_nodes:
        base = to_instruction(from_node, meta_env, df.escape)
        assert isinstance(base, From)
        name = base.name.lower() if base.name else None
        if name and any(s.name == name for s in stages):
            raise DockerfileError(from_node.line, f"duplicate stage name {base.name!r}")
        stages.append(Stage(len(stages), name, base, nodes, from_node))
    for stage in stages:
        stage.needs = _dependencies(stage, stages, meta_env, df.escape)
    chosen = _target_index(stages, target)
    return Plan(stages, chosen, _order(stages, chosen), meta)


def stage_ref(ref: str, stages: list[Stage], before: int) -> int | None:
    """The earlier stage `ref` names (by name or index), None for an image reference."""
    ref = ref.lower()
    for s in stages[:before]:
        if s.name == ref:
            return s.index
    if ref.isdigit():
        index = int(ref)
        if index < before:
            return index
        raise DockerfileError(
            stages[before].from_node.line if before < len(stages) else 0,
            f"invalid stage index {ref}: refers to a stage that is not before this one",
        )
    return None


def _split_meta(df: Dockerfile) -> tuple[list[Node], list[tuple[Node, list[Node]]]]:
    meta: list[Node] = []
    stages: list[tuple[Node, list[Node]]] = []
    for node in df.nodes:
        if node.keyword == "from":
            stages.append((node, []))
        elif stages:
            stages[-1][1].append(node)
        elif node.keyword == "arg":
            meta.append(node)
        else:
            raise DockerfileError(node.line, "no build stage in current context")
    if not stages:
        raise DockerfileError(1, "file with no instructions")
    return meta, stages


def _meta_args(
    nodes: list[Node], build_args: dict[str, str | None], escape: str
) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for node in nodes:
        arg = to_instruction(node, {k: v for k, v in values.items() if v is not None}, escape)
        assert isinstance(arg, Arg)
        for name, default in arg.args:
            given = build_args.get(name)
            values[name] = given if name in build_args and given is not None else default
    return values


_FROM_FLAG = re.compile(r"^--from=(.+)$")
_MOUNT_FROM = re.compile(r"(?:^|,)from=([^,]+)")


def _dependencies(stage: Stage, stages: list[Stage], env: dict[str, str], escape: str) -> set[int]:
    refs: list[tuple[str, Node]] = [(stage.base.image, stage.from_node)]
    for node in stage.nodes:
        for flag in node.flags:
            if node.keyword in ("copy", "add") and (m := _FROM_FLAG.match(flag)):
                refs.append((expand(m.group(1), env, escape), node))
            elif node.keyword == "run" and flag.startswith("--mount="):
                refs += [(expand(v, env, escape), node) for v in _MOUNT_FROM.findall(flag[8:])]
    needs: set[int] = set()
    for ref, _node in refs:
        index = stage_ref(ref, stages, stage.index)
        if index is not None:
            needs.add(index)
    return needs


def _target_index(stages: list[Stage], target: str) -> int:
    if not target:
        return len(stages) - 1
    for s in stages:
        if s.name == target.lower():
            return s.index
    raise InvalidArgument(f"failed to reach build target {target} in Dockerfile")


def _order(stages: list[Stage], target: int) -> list[int]:
    """The target and everything it needs, dependencies first."""
    seen: set[int] = set()
    order: list[int] = []

    def visit(i: int) -> None:
        if i in seen:
            return
        seen.add(i)
        for dep in sorted(stages[i].needs):
            visit(dep)
        order.append(i)

    visit(target)
    return order
