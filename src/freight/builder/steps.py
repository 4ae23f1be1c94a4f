"""One stage, step by step: each instruction's effect on the state, cache first.

For every instruction after FROM:

    key  = cache.step_key(previous key, the instruction as expanded, its inputs)
    hit  -> the recorded image becomes the state ("Using cache")
    miss -> run it: config-only instructions (ENV, CMD, LABEL...) store an image
            with the changed config and a history entry; RUN runs a container
            and commits it; COPY/ADD/WORKDIR change a snapshot; the result is
            stored and recorded under the key

A cached rebuild is therefore a chain of lookups plus, for COPY/ADD, hashing
the sources (with a persistent stat cache: unchanged files are not re-read).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import posixpath
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from freight.builder import cachefrom, copyfiles
from freight.builder import dockerfile as parser
from freight.builder import instructions as ins
from freight.builder.cache import step_key
from freight.builder.layercommit import commit_step
from freight.builder.model import (
    BuildEvent,
    BuildFailed,
    BuildRequest,
    Emit,
    Output,
    StepEvent,
    StepFailed,
)
from freight.builder.runstep import RunSettings, argv_of, finish, run_step
from freight.builder.stages import PROXY_ARGS, Plan, Stage, stage_ref
from freight.builder.state import (
    State,
    filesystem_step,
    load_state,
    make_dirs,
    mounted_view,
    store,
    with_config,
)
from freight.distribution import platforms
from freight.errors import FreightError, InvalidArgument, NotFound
from freight.oci import reference as refs
from freight.oci.image import Healthcheck, HistoryEntry, ImageConfig
from freight.services.clock import format_ns, now_rfc3339
from freight.services.usergroup import resolve_user

if TYPE_CHECKING:
    from freight.builder.engine import Builder

T = TypeVar("T")
DEFAULT_SHELL = ["/bin/sh", "-c"]
NOP = "/bin/sh -c #(nop) "


class BuildSession:
    """What the stages of one build share."""

    def __init__(self, builder: Builder, req: BuildRequest, plan: Plan, escape: str, emit: Emit):
        self.builder = builder
        self.images = builder.containers.images
        self.containers = builder.containers
        self.req = req
        self.plan = plan
        self.escape = escape
        self.emit = emit
        self.stage_results: dict[int, asyncio.Future[State]] = {}
        self.builders: dict[int, StageBuilder] = {}
        self.consumed_args: set[str] = set()
        self.epoch = _epoch(req.build_args)
        self.statcache = copyfiles.StatCache.load(builder.statcache_path)
        self.cache_sources = cachefrom.load_sources(self.images, req.cache_from)
        self._secrets_dir = tempfile.TemporaryDirectory(prefix="freight-secrets-")
        self.run_settings = RunSettings(
            network_mode=req.network_mode or "default",
            extra_hosts=list(req.extra_hosts),
            secrets=dict(req.secrets),
            cache_root=builder.cache_root,
            secrets_root=Path(self._secrets_dir.name) / "s",
            remove=req.remove,
            force_remove=req.force_remove,
        )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.statcache.save(self.builder.statcache_path)
        self._secrets_dir.cleanup()

    def stage_builder(self, index: int) -> StageBuilder:
        return self.builders[index]

    def created(self) -> str:
        return format_ns(self.epoch * 1_000_000_000) if self.epoch is not None else now_rfc3339()

    def _local(self, ref: str) -> str | None:
        try:
            return self.images.resolve(ref)
        except (NotFound, InvalidArgument):
            return None

    # images -------------------------------------------------------------------

    async def image_state(self, ref: str, platform: str | None, pull: bool) -> State:
        """A FROM/--from image: local unless missing (or --pull), else pulled."""
        if ref.lower() == "scratch":
            return _scratch_state()
        if platform:
            _check_platform(platform)
        image_id = None if pull else self._local(ref)
        if image_id is None:
            image_id = await settled(self._pull, ref, platform or "")
        return await settled(load_state, self.images, image_id, image_id)

    def _pull(self, ref: str, platform: str) -> str:
        try:
            reference = refs.parse_normalized(ref)
        except InvalidArgument as e:
            raise BuildFailed(f"invalid reference format {ref!r}: {e}") from None
        if not reference.tag and not reference.digest:
            reference = reference.with_tag(refs.DEFAULT_TAG)
        creds = self.req.credentials.get(reference.domain)
        from freight.distribution.auth import ANONYMOUS

        try:
            pull_plan = self.builder.puller.resolve(reference, platform, creds or ANONYMOUS)
        except FreightError:
            if not self.req.pull:
                raise
            local = self._local(ref)  # --pull with the registry unreachable: what we have
            if local is None:
                raise
            return local
        self.emit(Output(f"Pulling {reference.familiar_string()}\n"))
        return self.builder.puller.execute(pull_plan, self._pull_progress)

    def _pull_progress(self, message: Any) -> None:
        status = message.get("status") if isinstance(message, dict) else None
        if status and not message.get("progressDetail"):
            ident = message.get("id")
            self.emit(Output(f"{ident}: {status}\n" if ident else f"{status}\n"))

    async def source_root(self, ref: str, before: int, stack: ExitStack) -> Path:
        """The filesystem `--from=ref` names, mounted read-only for the step."""
        index = stage_ref(ref, self.plan.stages, before)
        if index is not None:
            state = await self.stage_results[index]
        else:
            state = await self.image_state(ref, None, False)
        return stack.enter_context(mounted_view(self.images, state))


class StageBuilder:
    def __init__(
        self, session: BuildSession, stage: Stage, offset: int, emit: Emit | None = None
    ) -> None:
        self.s = session
        self._emit = emit or session.emit  # this stage's events (engine orders them)
        self._step_number = 0  # the announced step: what its output belongs to
        self.stage = stage
        self.offset = offset  # steps before this stage
        self.args: dict[str, str | None] = {}
        self.cmd_set = False
        self._hit = False  # the current step came from the cache

    # the stage ------------------------------------------------------------------

    async def run(self) -> State:
        stage = self.stage
        base = stage.base
        self._announce(0, stage.from_node)
        started = time.monotonic()
        index = stage_ref(base.image, self.s.plan.stages, stage.index)
        if index is not None:
            state = await self.s.stage_results[index]
        else:
            state = await self.s.image_state(base.image, base.platform, self.s.req.pull)
        self._event(0, stage.from_node, "done", started)
        self._emit_id(state)
        triggers = list(state.oci.on_build or [])
        if triggers:
            state = replace(
                state, config=replace(state.config, config=replace(state.oci, on_build=None))
            )
            self.emit(
                Output(f"# Executing {len(triggers)} build trigger{'s' * (len(triggers) > 1)}\n")
            )
            for text in triggers:
                node = parser.parse_instruction(text, self.s.escape)
                state = await self._step(state, node, 0)
        for i, node in enumerate(stage.nodes, start=1):
            self._announce(i, node)
            state = await self._step(state, node, i)
        return state

    async def apply_labels(self, state: State, labels: dict[str, str]) -> State:
        """`docker build --label`: one more config step on the final image."""
        change = {"labels": {**(state.oci.labels or {}), **labels}}
        text = "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
        return await self._config_step(state, text, change, ["label", sorted(labels.items())])

    # one step -------------------------------------------------------------------

    async def _step(self, state: State, node: parser.Node, number: int) -> State:
        started = time.monotonic()
        try:
            inst = ins.to_instruction(node, self._expansion_env(state), self.s.escape)
            state = await self._dispatch(state, inst, node)
        except StepFailed:
            self._event(number, node, "error", started)
            raise
        except (FreightError, OSError) as e:
            self._event(number, node, "error", started)
            if isinstance(e, parser.DockerfileError):
                raise
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise BuildFailed(
                f"{node.keyword.upper()} failed (Dockerfile line {node.line}): {reason}"
            ) from None
        self._event(number, node, "cached" if self._hit else "done", started)
        return state

    async def _dispatch(self, state: State, inst: ins.Instruction, node: parser.Node) -> State:
        self._hit = False
        if isinstance(inst, ins.Arg):
            self._declare_args(inst)
            return state
        if isinstance(inst, ins.Run):
            return await self._run(state, inst)
        if isinstance(inst, (ins.Copy, ins.Add)):
            return await self._copy(state, inst)
        if isinstance(inst, ins.Workdir):
            return await self._workdir(state, inst)
        if isinstance(inst, ins.From):
            raise BuildFailed("FROM can't be an ONBUILD trigger")
        change = self._config_change(state, inst)
        return await self._config_step(state, node.original.strip(), change, _canonical(inst))

    def _config_change(self, state: State, inst: ins.Instruction) -> dict[str, Any]:
        oci = state.oci
        shell = oci.shell or DEFAULT_SHELL
        if isinstance(inst, ins.Env):
            env = dict(_env_pairs(oci.env or []))
            env.update(dict(inst.pairs))
            return {"env": [f"{k}={v}" for k, v in env.items()]}
        if isinstance(inst, ins.Label):
            return {"labels": {**(oci.labels or {}), **dict(inst.pairs)}}
        if isinstance(inst, ins.Cmd):
            self.cmd_set = True
            return {"cmd": [*shell, *inst.cmd] if inst.prepend_shell else list(inst.cmd)}
        if isinstance(inst, ins.Entrypoint):
            argv = [*shell, *inst.cmd] if inst.prepend_shell else list(inst.cmd)
            change: dict[str, Any] = {"entrypoint": argv}
            if not self.cmd_set:
                change["cmd"] = None  # a CMD inherited from the base no longer applies
            return change
        if isinstance(inst, ins.Expose):
            ports = set(oci.exposed_ports or []) | {_port(p) for p in inst.ports}
            return {"exposed_ports": sorted(ports)}
        if isinstance(inst, ins.Volume):
            return {"volumes": sorted(set(oci.volumes or []) | set(inst.paths))}
        if isinstance(inst, ins.User):
            return {"user": inst.user}
        if isinstance(inst, ins.Shell):
            return {"shell": list(inst.shell)}
        if isinstance(inst, ins.StopSignal):
            return {"stop_signal": inst.signal}
        if isinstance(inst, ins.Healthcheck):
            return {"healthcheck": _healthcheck(inst)}
        if isinstance(inst, ins.Onbuild):
            return {"on_build": [*(oci.on_build or []), inst.expression]}
        if isinstance(inst, ins.Maintainer):
            return {"__author": inst.name}
        raise BuildFailed(f"unsupported instruction {type(inst).__name__}")

    async def _config_step(
        self, state: State, text: str, change: dict[str, Any], canonical: object
    ) -> State:
        key = step_key(state.key, canonical)
        hit = self._lookup(key)
        if hit:
            return await self._use_cache(hit, key)
        author = change.pop("__author", None)
        entry = HistoryEntry(created=self.s.created(), created_by=NOP + text, empty_layer=True)
        config = self._new_config(state, entry, change)
        if author is not None:
            config = replace(config, author=author)
        if restored := await self._restore(state, config, key):
            return restored
        return await self._store(state, config, key)

    # ARG --------------------------------------------------------------------------

    def _declare_args(self, inst: ins.Arg) -> None:
        meta = self.s.plan.meta_args
        given = self.s.req.build_args
        for name, default in inst.args:
            self.s.consumed_args.add(name)
            if name in given and given[name] is not None:
                self.args[name] = given[name]
            elif default is not None:
                self.args[name] = default
            else:
                self.args[name] = meta.get(name)

    def _expansion_env(self, state: State) -> dict[str, str]:
        env = {k: v for k, v in self.args.items() if v is not None}
        env.update(state.env())  # ENV wins over ARG, as in docker
        return env

    def _run_args(self) -> list[tuple[str, str]]:
        """The declared ARGs with values: the RUN's environment, cache key and history."""
        return sorted((k, v) for k, v in self.args.items() if v is not None)

    # RUN ----------------------------------------------------------------------------

    async def _run(self, state: State, run: ins.Run) -> State:
        shell = state.oci.shell or DEFAULT_SHELL
        argv = argv_of(run, shell)
        args = self._run_args()
        mounts_key = [dataclasses.asdict(m) for m in run.mounts]
        key = step_key(state.key, "run", argv, args, mounts_key, run.network, self._net_key())
        hit = self._lookup(key)
        if hit:
            return await self._use_cache(hit, key)
        shown = " ".join(argv)
        created_by = (
            f"|{len(args)} {' '.join(f'{k}={v}' for k, v in args)} {shown}" if args else shown
        )
        entry = HistoryEntry(created=self.s.created(), created_by=created_by)
        config = self._new_config(state, entry, {})
        if restored := await self._restore(state, config, key):
            return restored
        if not state.image_id:
            raise BuildFailed("RUN needs a filesystem: the stage has none (FROM scratch)")
        proxies = [f"{k}={v}" for k, v in self.s.req.build_args.items() if k in PROXY_ARGS and v]
        env = [f"{k}={v}" for k, v in args] + proxies

        with ExitStack() as stack:
            mount_roots: dict[str | None, Path] = {None: self.s.req.context}
            for m in run.mounts:
                if m.from_ and m.from_ not in mount_roots:
                    mount_roots[m.from_] = await self.s.source_root(
                        m.from_, self.stage.index, stack
                    )
            cid, stubs = await run_step(
                self.s.containers,
                state.image_id,
                run,
                argv,
                env,
                self.s.run_settings,
                lambda ref, _stack: mount_roots[ref],
                self.s.builder.locks,
                self.emit,
            )
        c = self.s.containers.get(cid)

        # A kept container (--rm=false) keeps its filesystem: the layer is a copy.
        in_place = self.s.run_settings.remove or self.s.run_settings.force_remove

        def commit() -> State:
            with self.s.images.creating():
                layer, _ = commit_step(
                    self.s.images,
                    state.config.rootfs_diff_ids,
                    c.snapshot_key,
                    stubs,
                    self.s.epoch,
                    in_place,
                )
                return store(self.s.images, state, config, layer, key)

        try:
            new = await settled(commit)
        finally:
            await finish(self.s.containers, cid, True, self.s.run_settings)
        self.s.builder.cache.record(key, new.image_id)
        self._emit_id(new)
        return new

    def _net_key(self) -> list[str]:
        return [self.s.req.network_mode or "default", *sorted(self.s.req.extra_hosts)]

    # COPY / ADD ---------------------------------------------------------------------

    async def _copy(self, state: State, inst: ins.Copy | ins.Add) -> State:
        is_add = isinstance(inst, ins.Add)
        workdir = state.oci.working_dir or "/"
        with ExitStack() as stack:
            src_root, sources, from_id = await self._copy_sources(inst, stack)
            opts = copyfiles.CopyOptions(
                chmod=int(inst.chmod, 8) if inst.chmod else None,
                expand_archives=is_add,
                exclude=tuple(inst.exclude),
                parents=getattr(inst, "parents", False),
                checksum=getattr(inst, "checksum", None),
                keep_git_dir=getattr(inst, "keep_git_dir", False),
            )
            content = await settled(
                copyfiles.hash_sources, src_root, sources, opts, self.s.statcache
            )
            canonical = [
                "add" if is_add else "copy",
                sources,
                inst.dest,
                workdir,
                from_id,
                inst.chown,
                inst.chmod,
                list(inst.exclude),
                opts.parents,
                opts.checksum,
                content,
            ]
            key = step_key(state.key, canonical)
            hit = self._lookup(key)
            if hit:
                return await self._use_cache(hit, key)
            kind = "ADD" if is_add else "COPY"
            entry = HistoryEntry(
                created=self.s.created(),
                created_by=f"{NOP}{kind} {content.removeprefix('sha256:')[:16]} in {inst.dest} ",
            )
            config = self._new_config(state, entry, {})
            if restored := await self._restore(state, config, key):
                return restored

            def change(root: Path) -> None:
                # Context files become root's, as docker's COPY; --from keeps owners.
                chown = (
                    _chown(root, inst.chown)
                    if inst.chown
                    else (None if from_id.startswith(("stage:", "image:")) else (0, 0))
                )
                copyfiles.copy(
                    src_root, sources, root, inst.dest, workdir, replace(opts, chown=chown)
                )

            new = await settled(self._filesystem_store, state, change, config, key)
        self._emit_id(new)
        return new

    async def _copy_sources(
        self, inst: ins.Copy | ins.Add, stack: ExitStack
    ) -> tuple[Path, list[str], str]:
        if inst.heredocs:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="freight-heredoc-")))
            names = []
            for doc in inst.heredocs:
                (tmp / doc.name).write_text(doc.content)
                names.append(doc.name)
            others = [s for s in inst.sources if s not in names]
            if others:
                raise BuildFailed("mixing heredocs and files in one COPY is not supported")
            return tmp, names, "heredoc"
        from_ = getattr(inst, "from_", None)
        if from_:
            root = await self.s.source_root(from_, self.stage.index, stack)
            index = stage_ref(from_, self.s.plan.stages, self.stage.index)
            ident = f"stage:{index}" if index is not None else f"image:{from_}"
            return root, list(inst.sources), ident
        return self.s.req.context, list(inst.sources), "context"

    # WORKDIR --------------------------------------------------------------------------

    async def _workdir(self, state: State, inst: ins.Workdir) -> State:
        path = posixpath.normpath(posixpath.join(state.oci.working_dir or "/", inst.path))
        key = step_key(state.key, "workdir", path)
        hit = self._lookup(key)
        if hit:
            return await self._use_cache(hit, key)
        entry = HistoryEntry(created=self.s.created(), created_by=f"{NOP}WORKDIR {path}")
        config = self._new_config(state, entry, {"working_dir": path})
        if restored := await self._restore(state, config, key):
            return restored

        def change(root: Path) -> None:
            make_dirs(root, path)

        new = await settled(self._filesystem_store, state, change, config, key)
        self._emit_id(new)
        return new

    # storing ----------------------------------------------------------------------------

    def _filesystem_store(
        self, state: State, change: Callable[[Path], None], config: ImageConfig, key: str
    ) -> State:
        images = self.s.images
        with images.creating():
            layer = filesystem_step(images, state, change, self.s.epoch)
            if layer is None:
                last = config.history[-1]
                config = replace(
                    config, history=[*config.history[:-1], replace(last, empty_layer=True)]
                )
            new = store(images, state, config, layer, key)
        self.s.builder.cache.record(key, new.image_id)
        return new

    def _new_config(self, state: State, entry: HistoryEntry, change: dict[str, Any]) -> ImageConfig:
        config = with_config(state, entry, **change)
        os_name, arch, variant = platforms.host_platform()
        return replace(
            config,
            created=entry.created,
            architecture=config.architecture or arch,
            os=config.os or os_name,
            variant=config.variant or (variant or None),
        )

    async def _store(self, state: State, config: ImageConfig, key: str) -> State:
        """A config-only step's image (same layers, one more history entry)."""
        images = self.s.images

        def work() -> State:
            with images.creating():
                return store(images, state, config, None, key)

        new = await settled(work)
        self.s.builder.cache.record(key, new.image_id)
        self._emit_id(new)
        return new

    # cache ------------------------------------------------------------------------------

    def _lookup(self, key: str) -> str | None:
        if self.s.req.no_cache:
            return None
        return self.s.builder.cache.lookup(key)

    async def _restore(self, state: State, config: ImageConfig, key: str) -> State | None:
        """The step from a --cache-from image (see cachefrom), or None."""
        if self.s.req.no_cache or not self.s.cache_sources:
            return None
        match = cachefrom.find(self.s.cache_sources, state.config, config.history[-1].created_by)
        if match is None:
            return None
        images = self.s.images

        def work() -> State:
            if match.last:
                return load_state(images, match.source.image_id, key)
            new_config, layers = cachefrom.restored(config, match, len(state.layers))
            with images.creating():
                image_id = images.store_image(
                    new_config.to_json(), layers, [], parent=state.image_id
                )
            return State(image_id, new_config, layers, key)

        new = await settled(work)
        self.s.builder.cache.record(key, new.image_id)
        self._hit = True
        self.emit(Output(" ---> Using cache\n"))
        self._emit_id(new)
        return new

    async def _use_cache(self, image_id: str, key: str) -> State:
        self._hit = True
        state = await settled(load_state, self.s.images, image_id, key)
        self.emit(Output(" ---> Using cache\n"))
        self._emit_id(state)
        return state

    # output --------------------------------------------------------------------------

    def emit(self, event: BuildEvent) -> None:
        if isinstance(event, Output) and not event.step:
            event = replace(event, step=self._step_number)
        self._emit(event)

    def _announce(self, number: int, node: parser.Node) -> None:
        step = self.offset + number + 1
        self._step_number = step
        self.emit(Output(f"Step {step}/{self.s.plan.steps} : {node.original.strip()}\n"))
        self.emit(
            StepEvent(step, self.s.plan.steps, self.stage.label, node.original.strip(), "running")
        )

    def _event(self, number: int, node: parser.Node, state: str, started: float) -> None:
        step = self.offset + number + 1
        self.emit(
            StepEvent(
                step,
                self.s.plan.steps,
                self.stage.label,
                node.original.strip(),
                state,
                round(time.monotonic() - started, 3),
            )
        )

    def _emit_id(self, state: State) -> None:
        if state.image_id:
            self.emit(Output(f" ---> {state.image_id.removeprefix('sha256:')[:12]}\n"))


# pure helpers -------------------------------------------------------------------------


async def settled(fn: Callable[..., T], *args: Any) -> T:
    """`fn` in a worker thread; if the build is cancelled meanwhile, the thread is
    waited for before the cancellation goes on, so nothing it uses (a mount, the
    step's container) is torn down under it."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await work
        raise


def _scratch_state() -> State:
    os_name, arch, variant = platforms.host_platform()
    config = ImageConfig(architecture=arch, os=os_name, variant=variant or None)
    return State("", config, [], "scratch")


def _check_platform(platform: str) -> None:
    if platforms.is_foreign(platform):
        host = platforms.host_platform()
        raise BuildFailed(
            f"FROM --platform={platform}: freight builds for the host's platform "
            f"({platforms.format_platform(host)}) only"
        )


def _epoch(build_args: dict[str, str | None]) -> int | None:
    value = build_args.get("SOURCE_DATE_EPOCH")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(
            f"invalid SOURCE_DATE_EPOCH {value!r}: must be unix seconds"
        ) from None


def _canonical(inst: ins.Instruction) -> list[Any]:
    fields = dataclasses.asdict(inst)  # type: ignore[call-overload]
    fields.pop("line", None)
    fields.pop("original", None)
    return [type(inst).__name__, fields]


def _env_pairs(env: list[str]) -> list[tuple[str, str]]:
    out = []
    for e in env:
        k, _, v = e.partition("=")
        out.append((k, v))
    return out


def _port(spec: str) -> str:
    return spec if "/" in spec else f"{spec}/tcp"


def _healthcheck(h: ins.Healthcheck) -> Healthcheck:
    return Healthcheck(
        test=h.test,
        interval=h.interval or None,
        timeout=h.timeout or None,
        start_period=h.start_period or None,
        start_interval=h.start_interval or None,
        retries=h.retries or None,
    )


def _chown(root: Path, spec: str) -> tuple[int, int]:
    """--chown: names looked up in the destination's /etc/passwd and /etc/group; a user
    alone means the group of the same name (or number), as docker's builder."""
    user, _, group = spec.partition(":")
    try:
        resolved = resolve_user(root, f"{user}:{group or user}")
    except InvalidArgument:
        if group:
            raise
        resolved = resolve_user(root, user)
    return resolved.uid, resolved.gid
