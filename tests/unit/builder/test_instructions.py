"""Typed instructions from parser nodes: flags, forms, expansion, docker's errors."""

from __future__ import annotations

import pytest

from freight.builder import instructions as ins
from freight.builder.dockerfile import DockerfileError, Heredoc, parse, parse_instruction
from freight.builder.instructions import RunMount, parse_duration, to_instruction

ENV = {"v": "value", "dir": "/app", "ports": "80 443/udp", "empty": ""}


def one(line: str, env: dict[str, str] | None = None, escape: str = "\\") -> ins.Instruction:
    """The instruction on the line after a FROM, expanded with `env`."""
    text = f"# escape={escape}\nFROM x\n{line}\n"
    node = parse(text).nodes[-1]
    return to_instruction(node, ENV if env is None else env, escape)


def error(line: str, env: dict[str, str] | None = None) -> DockerfileError:
    """The error of one instruction, from parsing or expanding it."""
    with pytest.raises(DockerfileError) as e:
        one(line, env)
    assert e.value.line == 3
    return e.value


# FROM -------------------------------------------------------------------------------------


def test_from() -> None:
    node = parse("ARG base=alpine\nFROM --platform=$plat ${base}:3 AS Build-1\n").nodes[1]
    got = to_instruction(node, {"base": "alpine", "plat": "linux/arm64"})
    assert got == ins.From("alpine:3", "build-1", "linux/arm64", 2, node.original)
    assert to_instruction(parse("FROM x as y").nodes[0], {}) == ins.From(
        "x", "y", None, 1, "FROM x as y"
    )


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("FROM a b", "FROM requires either one or three arguments"),
        ("FROM a AS", "FROM requires either one or three arguments"),
        ("FROM a IS b", "FROM requires either one or three arguments"),
        (
            "FROM a AS 1x",
            'invalid name for build stage: "1x", '
            "name can't start with a number or contain symbols",
        ),
        ("FROM --bad=1 a", "unknown flag: bad"),
        ("FROM --platform a", "missing a value on flag: platform"),
    ],
)
def test_from_errors(text: str, msg: str) -> None:
    with pytest.raises(DockerfileError) as e:
        parse(text)
    assert e.value.msg == msg


def test_from_blank_after_expansion() -> None:
    node = parse("FROM $nothing").nodes[0]
    with pytest.raises(DockerfileError, match=r"base name \(\$nothing\) should not be blank"):
        to_instruction(node, {})


# RUN ---------------------------------------------------------------------------------------


def test_run_shell_and_exec_forms() -> None:
    run = one("RUN echo $v")
    assert isinstance(run, ins.Run)
    assert (run.cmd, run.prepend_shell, run.mounts) == (["echo $v"], True, [])
    run = one('RUN ["echo", "$v"]')
    assert isinstance(run, ins.Run)
    assert (run.cmd, run.prepend_shell) == (["echo", "$v"], False)


def test_run_network_and_security() -> None:
    run = one("RUN --network=none --security=insecure true")
    assert isinstance(run, ins.Run)
    assert (run.network, run.security) == ("none", "insecure")
    assert error("RUN --network=bridge x").msg == 'unsupported network mode "bridge"'
    assert error("RUN --security=x y").msg == 'unsupported security mode "x"'


def test_run_heredoc_alone_is_the_script() -> None:
    run = one("RUN <<EOF\nset -e\necho $v\nEOF")
    assert isinstance(run, ins.Run)
    assert (run.cmd, run.prepend_shell) == (["set -e\necho $v\n"], True)
    run = one("RUN <<-EOF\n\techo a\n\tEOF")
    assert isinstance(run, ins.Run)
    assert run.cmd == ["echo a\n"]


def test_run_heredoc_with_a_command_line_goes_to_the_shell() -> None:
    run = one("RUN cat <<EOF > /f && cat <<'B' >> /f\none $v\nEOF\ntwo\nB")
    assert isinstance(run, ins.Run)
    assert run.cmd == ["cat <<EOF > /f && cat <<'B' >> /f\none $v\nEOF\ntwo\nB"]
    assert run.prepend_shell


def test_run_shebang_heredoc_runs_as_an_executable() -> None:
    run = one("RUN <<EOF\n#!/usr/bin/env python3\nprint('hi')\nEOF")
    assert isinstance(run, ins.Run)
    (script,) = run.cmd
    assert "#!/usr/bin/env python3\nprint('hi')\n" in script
    assert script.startswith("set -e;") and run.prepend_shell


def test_run_needs_a_command() -> None:
    with pytest.raises(DockerfileError, match="RUN requires at least one argument"):
        parse("FROM x\nRUN\n")


def mount(spec: str, env: dict[str, str] | None = None) -> RunMount:
    run = one(f"RUN --mount={spec} true", env)
    assert isinstance(run, ins.Run)
    return run.mounts[0]


def test_mount_defaults_per_type() -> None:
    assert mount("target=/src") == RunMount("bind", "/src", readonly=True)
    assert mount("type=bind,target=/src,rw,from=build,source=/out") == RunMount(
        "bind", "/src", source="/out", from_="build", readonly=False
    )
    assert mount("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1") == (
        RunMount("cache", "/root/.cache", id="pip", sharing="locked", mode=0o700, uid=1)
    )
    assert mount("type=cache,target=/c,ro") == RunMount("cache", "/c", readonly=True)
    assert mount("type=tmpfs,target=/t,size=64m") == RunMount("tmpfs", "/t", size=64 << 20)
    assert mount("type=secret,id=tok") == RunMount(
        "secret", "/run/secrets/tok", id="tok", readonly=True
    )
    assert mount("type=secret,source=tok,target=/x,required=true") == RunMount(
        "secret", "/x", source="tok", id="tok", readonly=True, required=True
    )
    assert mount("type=secret,id=tok,env=TOKEN") == RunMount(
        "secret", "", id="tok", readonly=True, env="TOKEN"
    )
    assert mount("type=ssh") == RunMount(
        "ssh", "/run/buildkit/ssh_agent.0", id="default", readonly=True, mode=0o600
    )


def test_mount_values_are_expanded_and_flag_quotes_removed() -> None:
    m = mount('"type=cache,target=$dir/a b"', {"dir": "/app"})
    assert (m.type, m.target) == ("cache", "/app/a b")


def test_many_mounts() -> None:
    run = one("RUN --mount=type=ssh --mount=type=ssh,id=b --mount=type=cache,target=/c x")
    assert isinstance(run, ins.Run)
    assert [(m.type, m.target) for m in run.mounts] == [
        ("ssh", "/run/buildkit/ssh_agent.0"),
        ("ssh", "/run/buildkit/ssh_agent.1"),
        ("cache", "/c"),
    ]


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ("type=nfs,target=/x", 'unsupported mount type "nfs"'),
        ("type=bind", "mount type bind requires a target"),
        ("type=cache,target=/x,sharing=weird", 'unsupported sharing value "weird"'),
        ("type=bind,target=/x,sharing=locked", "invalid cache sharing set for bind mount"),
        ("type=bind,target=/x,mode=0700", 'mode not allowed for "bind" type mounts'),
        ("type=cache,target=/x,uid=abc", "invalid value abc for uid"),
        ("type=cache,target=/x,mode=9", "invalid value 9 for mode"),
        ("type=cache,target=/x,size=1m", "unexpected key 'size' for mount type 'cache'"),
        ("type=bind,target=/x,required", "unexpected key 'required' for mount type 'bind'"),
        ("type=bind,target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
        ("type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"),
        ("type=bind,target=/x,weird", "invalid field 'weird' must be a key=value pair"),
        ("type=secret,id=a,source=b", "both source and id can't be set"),
        ("type=secret,id=a,from=b", "secret mount should not have a from"),
        ("type=secret", "invalid secret mount. one of source, target required"),
    ],
)
def test_mount_errors(spec: str, msg: str) -> None:
    assert error(f"RUN --mount={spec} true").msg == msg


# CMD, ENTRYPOINT, SHELL -------------------------------------------------------------------------


def test_cmd_entrypoint_shell() -> None:
    assert one("CMD echo $v") == ins.Cmd(["echo $v"], True, 3, "CMD echo $v")
    assert one('CMD ["a", "b"]') == ins.Cmd(["a", "b"], False, 3, 'CMD ["a", "b"]')
    assert one("CMD []") == ins.Cmd([], False, 3, "CMD []")
    got = one('ENTRYPOINT ["/bin/app"]')
    assert isinstance(got, ins.Entrypoint) and got.cmd == ["/bin/app"] and not got.prepend_shell
    got = one('SHELL ["/bin/bash", "-c"]')
    assert isinstance(got, ins.Shell) and got.shell == ["/bin/bash", "-c"]
    assert error("SHELL /bin/bash -c").msg == "SHELL requires the arguments to be in JSON form"
    assert error("SHELL []").msg == "SHELL requires at least one argument"
    assert error("CMD --x=1 a").msg == "unknown flag: x"


# ENV, LABEL, ARG -----------------------------------------------------------------------------------


def test_env_forms() -> None:
    got = one('ENV a=1 b="two words" c=$v d=\\$v e=\'$v\' f= "g h"=i')
    assert isinstance(got, ins.Env)
    assert got.pairs == [
        ("a", "1"),
        ("b", "two words"),
        ("c", "value"),
        ("d", "$v"),
        ("e", "$v"),
        ("f", ""),
        ("g h", "i"),
    ]
    got = one("ENV legacy  the rest $v")
    assert isinstance(got, ins.Env) and got.pairs == [("legacy", "the rest value")]


def test_env_sees_values_from_before_the_instruction() -> None:
    got = one("ENV v=new w=$v", {"v": "old"})
    assert isinstance(got, ins.Env) and got.pairs == [("v", "new"), ("w", "old")]


def test_env_errors() -> None:
    assert error("ENV").msg == "ENV requires at least one argument"
    assert error("ENV lonely").msg == "ENV must have two arguments"
    assert error("ENV a=1 b").msg == (
        'Syntax error - can\'t find = in "b". Must be of the form: name=value'
    )
    assert error("ENV =x").msg == "ENV names can not be blank"
    assert error("ENV a=${unset:?no}").msg == "unset: no"


def test_label() -> None:
    got = one('LABEL "com.example.vendor"="ACME Inc" version=1.0 desc="$v"')
    assert isinstance(got, ins.Label)
    assert got.pairs == [("com.example.vendor", "ACME Inc"), ("version", "1.0"), ("desc", "value")]
    assert error("LABEL").msg == "LABEL requires at least one argument"


def test_arg() -> None:
    got = one('ARG a b=1 c="x y" d=$v e=')
    assert isinstance(got, ins.Arg)
    assert got.args == [("a", None), ("b", "1"), ("c", "x y"), ("d", "value"), ("e", "")]
    assert error("ARG").msg == "ARG requires at least one argument"
    assert error("ARG =1").msg == "ARG names can not be blank"


# EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, MAINTAINER ----------------------------------------------


def test_expose() -> None:
    got = one("EXPOSE 80 53/UDP $ports 7000-7002/tcp")
    assert isinstance(got, ins.Expose)
    assert got.ports == ["80", "53/udp", "80", "443/udp", "7000/tcp", "7001/tcp", "7002/tcp"]
    assert error("EXPOSE").msg == "EXPOSE requires at least one argument"
    assert error("EXPOSE http").msg == "invalid containerPort: http"
    assert error("EXPOSE 9-1").msg == "invalid range specified for container port: 9-1"


def test_volume() -> None:
    got = one("VOLUME /a $dir")
    assert isinstance(got, ins.Volume) and got.paths == ["/a", "/app"]
    got = one('VOLUME ["/data", "$dir/x"]')
    assert isinstance(got, ins.Volume) and got.paths == ["/data", "/app/x"]
    assert error("VOLUME").msg == "VOLUME requires at least one argument"
    assert error('VOLUME [""]').msg == "VOLUME specified can not be an empty string"


def test_single_word_instructions() -> None:
    assert one("USER ${v}:grp") == ins.User("value:grp", 3, "USER ${v}:grp")
    got = one('WORKDIR "$dir/my dir"')
    assert isinstance(got, ins.Workdir) and got.path == "/app/my dir"
    got = one("STOPSIGNAL SIGKILL")
    assert isinstance(got, ins.StopSignal) and got.signal == "SIGKILL"
    got = one("MAINTAINER Jane <j@example.com> $v")
    assert isinstance(got, ins.Maintainer) and got.name == "Jane <j@example.com> $v"
    assert error("WORKDIR").msg == "WORKDIR requires exactly one argument"
    assert error("STOPSIGNAL").msg == "STOPSIGNAL requires exactly one argument"
    assert error("STOPSIGNAL SIG TERM").msg == "Invalid signal: SIG TERM"
    assert error("MAINTAINER").msg == "MAINTAINER requires exactly one argument"


def test_backtick_escape_in_expansion() -> None:
    got = one("WORKDIR C:\\app`$v", escape="`")
    assert isinstance(got, ins.Workdir) and got.path == "C:\\app$v"


# HEALTHCHECK -----------------------------------------------------------------------------------------


def test_healthcheck() -> None:
    got = one(
        "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s "
        "--start-interval=500ms --retries=5 CMD curl -f http://x/ || exit 1"
    )
    assert isinstance(got, ins.Healthcheck)
    assert got.test == ["CMD-SHELL", "curl -f http://x/ || exit 1"]
    assert (got.interval, got.timeout, got.start_period, got.start_interval, got.retries) == (
        30_000_000_000,
        90_000_000_000,
        1_500_000_000,
        500_000_000,
        5,
    )
    got = one('HEALTHCHECK cmd ["/bin/check", "$v"]')
    assert isinstance(got, ins.Healthcheck) and got.test == ["CMD", "/bin/check", "$v"]
    assert (got.interval, got.retries) == (0, 0)
    got = one("HEALTHCHECK NONE")
    assert isinstance(got, ins.Healthcheck) and got.test == ["NONE"]


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK CMD []", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK --interval=5 CMD x", 'time: invalid duration "5"'),
        ("HEALTHCHECK --interval=10us CMD x", 'Interval "interval" cannot be less than 1ms'),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=x CMD x", 'strconv.ParseInt: parsing "x": invalid syntax'),
        ("HEALTHCHECK --bogus=1 CMD x", "unknown flag: bogus"),
        ("HEALTHCHECK --retries=1 --retries=2 CMD x", "duplicate flag specified: retries"),
    ],
)
def test_healthcheck_errors(line: str, msg: str) -> None:
    assert error(line).msg == msg


@pytest.mark.parametrize(
    ("text", "ns"),
    [("0", 0), ("1s", 10**9), ("1h2m3s", 3723 * 10**9), ("1.5ms", 1_500_000), ("2us", 2000)],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "1s2", "--1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# ONBUILD ------------------------------------------------------------------------------------------------


def test_onbuild() -> None:
    got = one("ONBUILD RUN echo $v")
    assert isinstance(got, ins.Onbuild) and got.expression == "RUN echo $v"
    got = one("onbuild   COPY <<EOF /f\nbody\nEOF")
    assert isinstance(got, ins.Onbuild) and got.expression == "COPY <<EOF /f\nbody\nEOF"
    trigger = to_instruction(parse_instruction(got.expression), {})
    assert isinstance(trigger, ins.Copy)
    assert trigger.heredocs == [Heredoc("EOF", "body\n", True, False)]


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD from x", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("ONBUILD BOGUS x", "unknown instruction: BOGUS"),
        (
            "ONBUILD COPY a",
            "COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined.",
        ),
    ],
)
def test_onbuild_errors(line: str, msg: str) -> None:
    assert error(line).msg == msg


# COPY, ADD --------------------------------------------------------------------------------------------------


def test_copy() -> None:
    got = one(
        "COPY --from=$v --chown=$v:grp --chmod=0755 --link --parents --exclude=*.md "
        "--exclude=$dir/tmp a/ $dir/b /dest/"
    )
    assert got == ins.Copy(
        sources=["a/", "/app/b"],
        dest="/dest/",
        from_="value",
        chown="value:grp",
        chmod="0755",
        link=True,
        parents=True,
        exclude=["*.md", "/app/tmp"],
        heredocs=[],
        line=3,
        original=got.original,
    )
    got = one('COPY ["a b", "$dir/c d", "/e f/"]')
    assert isinstance(got, ins.Copy)
    assert (got.sources, got.dest) == (["a b", "/app/c d"], "/e f/")
    got = one("COPY --link=false a b")
    assert isinstance(got, ins.Copy) and not got.link


def test_copy_heredocs() -> None:
    got = one("COPY <<A <<-'B' <<C ./ /dest/\nv=$v\nA\n\tno $v\n\tB\nC")
    assert isinstance(got, ins.Copy)
    assert got.sources == ["./"]
    assert got.heredocs == [
        Heredoc("A", "v=value\n", True, False),
        Heredoc("B", "no $v\n", False, True),
        Heredoc("C", "", True, False),
    ]


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        (
            "COPY",
            "COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined.",
        ),
        (
            "COPY <<EOF\nx\nEOF",
            "COPY requires at least two arguments, but only one was "
            "provided. Destination could not be determined.",
        ),
        ("COPY a <<EOF\nx\nEOF", "COPY cannot accept a heredoc as a destination"),
        (
            "COPY --chmod=u+x a b",
            "invalid chmod parameter u+x. it should be octal string and between 0 and 07777",
        ),
        (
            "COPY --chmod=17777 a b",
            "invalid chmod parameter 17777. it should be octal string and between 0 and 07777",
        ),
        ("COPY --link=maybe a b", "expecting boolean value for flag link, not: maybe"),
        ("COPY --link= a b", "missing a value on flag: link"),
        ("COPY --from a b", "missing a value on flag: from"),
        ("COPY --from=a --from=b c d", "duplicate flag specified: from"),
        ("COPY --checksum=sha256:x a b", "unknown flag: checksum"),
        ("ADD --from=x a b", "unknown flag: from"),
        ("ADD --parents a b", "unknown flag: parents"),
        (
            'COPY $unset"x a b',
            "unexpected end of statement while looking for matching double-quote",
        ),
    ],
)
def test_copy_add_errors(line: str, msg: str) -> None:
    assert error(line).msg == msg


def test_add() -> None:
    got = one(
        "ADD --checksum=sha256:abc --keep-git-dir --chown=1 --chmod=644 --link "
        "--exclude=x https://example.com/a.tgz git@host:repo.git /dst"
    )
    assert got == ins.Add(
        sources=["https://example.com/a.tgz", "git@host:repo.git"],
        dest="/dst",
        chown="1",
        chmod="644",
        link=True,
        exclude=["x"],
        heredocs=[],
        checksum="sha256:abc",
        keep_git_dir=True,
        line=3,
        original=got.original,
    )
    got = one("ADD <<EOF /x\n$v\nEOF")
    assert isinstance(got, ins.Add) and got.heredocs == [Heredoc("EOF", "value\n", True, False)]


# expansion and checking ---------------------------------------------------------------------------------------


def test_no_expansion_for_run_cmd_entrypoint_healthcheck_onbuild() -> None:
    for line in ("RUN $v", "CMD $v", "ENTRYPOINT $v", "HEALTHCHECK CMD $v", "ONBUILD RUN $v"):
        assert "$v" in repr(one(line))


def test_values_unknown_at_parse_time_are_not_checked() -> None:
    text = (
        "FROM x AS $name\n"
        "RUN --mount=type=cache,target=/c,uid=$uid,mode=$m true\n"
        "EXPOSE $port\n"
        "COPY --chmod=$mode a b\n"
        "STOPSIGNAL $sig\n"
    )
    nodes = parse(text).nodes
    with pytest.raises(DockerfileError) as e:
        to_instruction(nodes[1], {"uid": "x", "m": "700"})
    assert e.value.msg == "invalid value x for uid"


def test_frozen_and_typed() -> None:
    got = one("USER u")
    with pytest.raises(AttributeError):
        got.user = "v"  # type: ignore[misc]
