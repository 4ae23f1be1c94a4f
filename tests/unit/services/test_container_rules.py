"""Docker's create-time rules: config merge, command, resource checks, signals, names."""

from __future__ import annotations

import signal

import pytest

from freight.errors import InvalidArgument
from freight.services.changes import apply_changes
from freight.services.containers import command_of, merge_image_config, parse_signal, validate_host
from freight.services.model import ContainerConfig, HostSettings
from freight.services.names import random_name, validate_name

IMAGE = ContainerConfig(
    cmd=["sh"], env=["PATH=/bin", "A=image"], working_dir="/w", labels={"l": "1"}
)


def test_request_overrides_image_field_by_field():
    merged = merge_image_config(ContainerConfig(env=["A=req", "B=2"]), IMAGE)
    assert merged.env == ["PATH=/bin", "A=req", "B=2"]
    assert merged.cmd == ["sh"] and merged.working_dir == "/w" and merged.labels == {"l": "1"}


def test_entrypoint_in_request_drops_image_cmd():
    merged = merge_image_config(ContainerConfig(entrypoint=["/bin/echo"]), IMAGE)
    assert command_of(merged) == ("/bin/echo", [])


def test_memory_rules_have_dockers_words():
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        validate_host(HostSettings(memory=1024), ("freight",))
    with pytest.raises(InvalidArgument, match="Minimum memoryswap limit"):
        validate_host(HostSettings(memory=64 << 20, memory_swap=32 << 20), ("freight",))
    with pytest.raises(InvalidArgument, match="always set the Memory limit"):
        validate_host(HostSettings(memory_swap=64 << 20), ("freight",))
    with pytest.raises(InvalidArgument, match="Unknown runtime specified crun"):
        validate_host(HostSettings(runtime="crun"), ("freight",))


@pytest.mark.parametrize(
    "text,num",
    [("SIGTERM", 15), ("term", 15), ("9", 9), ("KILL", 9), ("SIGRTMIN+1", signal.SIGRTMIN + 1)],
)
def test_signals(text, num):
    assert parse_signal(text) == num


@pytest.mark.parametrize("text", ["SIGNOPE", "0", "999", ""])
def test_bad_signals(text):
    with pytest.raises(InvalidArgument, match="Invalid signal"):
        parse_signal(text)


def test_names():
    assert validate_name("/web-1") == "web-1"
    with pytest.raises(InvalidArgument, match="Invalid container name"):
        validate_name("bad name")
    adjective, _, surname = random_name().partition("_")
    assert adjective and surname


def test_changes():
    c = apply_changes(
        ContainerConfig(),
        ['CMD ["/bin/sh", "-c", "x"]', "ENV A=1 B=two", "ENV C 3 4", "WORKDIR /app",
         "EXPOSE 80 53/udp", "LABEL k=v", "USER nobody", "ENTRYPOINT echo hi"],
    )  # fmt: skip
    assert c.cmd == ["/bin/sh", "-c", "x"]
    assert c.env == ["A=1", "B=two", "C=3 4"]
    assert c.exposed_ports == {"80/tcp": {}, "53/udp": {}}
    assert c.entrypoint == ["/bin/sh", "-c", "echo hi"]
    assert (c.working_dir, c.user, c.labels) == ("/app", "nobody", {"k": "v"})
    with pytest.raises(InvalidArgument, match="RUN is not a valid change command"):
        apply_changes(ContainerConfig(), ["RUN make"])
