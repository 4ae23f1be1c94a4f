"""Flag parsing like docker's pflag: run's options stop at the image, env files, errors."""

from __future__ import annotations

import pytest

from freight.cli.containerspec import CREATE, RUN, create_body, env_list, label_map, read_kv_file
from freight.cli.flags import HelpRequested, UsageError
from freight.cli.main import main, usage_error_text
from freight.cli.session import CliError


def test_options_stop_at_image():
    opts, args = RUN.parse(["-d", "--name", "x", "busybox", "ls", "-l", "--rm", "-e", "A"])
    assert opts["detach"] and opts["name"] == "x" and not opts["rm"]
    assert args == ["busybox", "ls", "-l", "--rm", "-e", "A"]


def test_forms_of_values():
    opts, args = RUN.parse(
        ["-eA=1", "-e=B=2", "--env", "C=3", "--env=D=4", "-itd", "-w/tmp", "img"]
    )
    assert opts["env"] == ["A=1", "B=2", "C=3", "D=4"]
    assert opts["interactive"] and opts["tty"] and opts["detach"]
    assert opts["workdir"] == "/tmp" and args == ["img"]


def test_double_dash_and_bool_values():
    opts, args = RUN.parse(["--rm=false", "-t=true", "--", "-img"])
    assert opts["rm"] is False and opts["tty"] is True and args == ["-img"]


def test_dash_h_is_hostname_for_run_and_help_elsewhere():
    opts, _ = RUN.parse(["-h", "box", "img"])
    assert opts["hostname"] == "box"
    with pytest.raises(HelpRequested):
        RUN.parse(["--help"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frob", "img"], "unknown flag: --frob"),
        (["-X", "img"], "unknown shorthand flag: 'X' in -X"),
        (["--name"], "flag needs an argument: --name"),
        (["img", "-e"], None),
        (["-e"], "flag needs an argument: 'e' in -e"),
        (
            ["-m", "12x", "img"],
            'invalid argument "12x" for "-m, --memory" flag: invalid suffix: \'x\'',
        ),
        (
            ["--memory-swap", "lots", "img"],
            'invalid argument "lots" for "--memory-swap" flag: invalid size: \'lots\'',
        ),
        (
            ["--pids-limit", "x", "img"],
            'invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax',
        ),
        (
            ["-a", "stdfoo", "img"],
            'invalid argument "stdfoo" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR',
        ),
        ([], '"freight run" requires at least 1 argument.'),
    ],
)
def test_errors(argv, message):
    if message is None:
        RUN.parse(argv)  # after the image, "-e" is the command's
        return
    with pytest.raises(UsageError) as info:
        RUN.parse(argv)
    assert info.value.message == message


def test_usage_error_text_shapes():
    with pytest.raises(UsageError) as info:
        RUN.parse([])
    assert usage_error_text(info.value).startswith(
        "freight: \"freight run\" requires at least 1 argument.\nSee 'freight run --help'.\n\n"
        "Usage:  freight run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    )
    with pytest.raises(UsageError) as info:
        RUN.parse(["--frob"])
    assert usage_error_text(info.value).endswith("Run 'freight run --help' for more information\n")


def test_usage_errors_exit_125(capsys):
    assert main(["run"]) == 125
    assert main(["stop"]) == 125
    assert '"freight stop" requires at least 1 argument.' in capsys.readouterr().err


def test_env_k_takes_value_from_environment(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "yes")
    monkeypatch.delenv("NOT_SET", raising=False)
    assert env_list([], ["FROM_HOST", "NOT_SET", "X=1"]) == ["FROM_HOST=yes", "NOT_SET", "X=1"]


def test_env_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PASSED", "through")
    monkeypatch.delenv("ABSENT", raising=False)
    path = tmp_path / "env"
    path.write_text("# comment\n\n  A=1\nB= spaced value \nPASSED\nABSENT\nC=x=y\n")
    assert read_kv_file(str(path), from_env=True) == [
        "A=1",
        "B= spaced value ",
        "PASSED=through",
        "C=x=y",
    ]
    assert env_list([str(path)], ["A=2"])[-1] == "A=2"  # -e comes after the file


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("BAD KEY=1", "poorly formatted environment: variable 'BAD KEY' contains whitespaces"),
        ("=value", "poorly formatted environment: no variable name on line '=value'"),
    ],
)
def test_env_file_bad_lines(tmp_path, line, message):
    path = tmp_path / "env"
    path.write_text(f"OK=1\n{line}\n")
    with pytest.raises(CliError) as info:
        read_kv_file(str(path), from_env=True)
    assert info.value.message == message


def test_labels(tmp_path):
    path = tmp_path / "labels"
    path.write_text("a=1\nbare\n")
    assert label_map([str(path)], ["b=2", "c"]) == {"a": "1", "b": "2", "c": ""}


def test_create_body():
    opts, args = CREATE.parse(
        ["-m", "512m", "--memory-swap", "-1", "--cpus", "1.5", "--pids-limit", "100", "--entrypoint", "",
         "-u", "1000:1000", "--stop-signal", "SIGINT", "--stop-timeout", "3", "--runtime", "runc", "-i",
         "busybox", "sh"]
    )  # fmt: skip
    body = create_body(opts, args[0], args[1:], detach=False)
    assert body["Image"] == "busybox" and body["Cmd"] == ["sh"]
    assert body["Entrypoint"] == [""]
    assert body["User"] == "1000:1000"
    assert body["StopSignal"] == "SIGINT" and body["StopTimeout"] == 3
    assert body["AttachStdin"] and body["OpenStdin"] and body["StdinOnce"]
    assert body["HostConfig"] == {
        "AutoRemove": False,
        "Memory": 512 * 1024**2,
        "MemorySwap": -1,
        "NanoCpus": 1_500_000_000,
        "PidsLimit": 100,
        "Runtime": "runc",
        "NetworkMode": "default",  # as the docker CLI sends it
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},  # so does docker 28
    }


def test_detached_body_attaches_nothing():
    opts, args = RUN.parse(["-d", "busybox"])
    body = create_body(opts, args[0], args[1:], detach=True)
    assert not (body["AttachStdin"] or body["AttachStdout"] or body["AttachStderr"])
    assert body["Cmd"] is None
