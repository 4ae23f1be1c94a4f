"""freight-shell configuration: defaults, parsing, per-user merging, one-line errors."""

from __future__ import annotations

import pytest

from freight.shell.config import (
    DEFAULT_LIMITS,
    DEFAULT_PATH,
    ConfigError,
    Settings,
    config_path,
    load_config,
    parse_config,
)

FULL = """
image = "alpine:3.20"
host = "unix:///run/freight/shell.sock"
shell = "/bin/ash"
name_prefix = "sh-"
allowed_users = ["alice", "bob"]
home = false
mounts = ["/srv/data:/data:ro", "/srv/scratch/{user}:/scratch"]

[limits]
memory = "1g"
cpus = 1.5
pids = 0

[users.alice]
image = "debian:12"
limits = { memory = "64m" }
mounts = []
"""


def write(tmp_path, text: str) -> str:
    path = tmp_path / "shell.toml"
    path.write_text(text)
    return str(path)


def test_missing_file_gives_the_defaults(tmp_path):
    config = load_config(str(tmp_path / "absent.toml"))
    assert config.defaults == Settings()
    assert config.allows("anyone")
    s = config.settings_for("anyone")
    assert (s.image, s.shell, s.name_prefix, s.home, s.mounts) == (
        "busybox",
        "/bin/sh",
        "shell-",
        True,
        (),
    )
    assert s.host == "unix:///run/freight/freight.sock"
    assert s.limits == {"memory": 256 << 20, "nano_cpus": 500_000_000, "pids": 100}


def test_full_file(tmp_path):
    config = load_config(write(tmp_path, FULL))
    bob = config.settings_for("bob")
    assert bob.image == "alpine:3.20"
    assert bob.host == "unix:///run/freight/shell.sock"
    assert bob.shell == "/bin/ash"
    assert bob.name_prefix == "sh-"
    assert bob.home is False
    assert bob.mounts == ("/srv/data:/data:ro", "/srv/scratch/{user}:/scratch")
    assert bob.limits == {"memory": 1 << 30, "nano_cpus": 1_500_000_000, "pids": 0}
    assert config.allows("alice") and not config.allows("mallory")


def test_user_table_overrides_and_merges_limits_key_by_key(tmp_path):
    alice = load_config(write(tmp_path, FULL)).settings_for("alice")
    assert alice.image == "debian:12"
    assert alice.mounts == ()  # a per-user list replaces the global one
    assert alice.limits == {"memory": 64 << 20, "nano_cpus": 1_500_000_000, "pids": 0}
    assert alice.shell == "/bin/ash"  # not overridden: the global value


def test_partial_global_limits_keep_the_other_defaults():
    s = parse_config({"limits": {"pids": 7}}).settings_for("x")
    assert s.limits == {**DEFAULT_LIMITS, "pids": 7}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("256m", 256 << 20),
        ("256M", 256 << 20),
        ("256mb", 256 << 20),
        ("1g", 1 << 30),
        ("1GiB", 1 << 30),
        ("512k", 512 << 10),
        ("1.5g", 3 << 29),
        ("4096", 4096),
        ("100b", 100),
        (268435456, 268435456),
        (0, 0),
    ],
)
def test_memory_sizes(raw, expected):
    s = parse_config({"limits": {"memory": raw}}).settings_for("x")
    assert s.limits["memory"] == expected


@pytest.mark.parametrize(
    ("doc", "key", "words"),
    [
        ({"imgae": "busybox"}, "imgae", "unknown key"),
        ({"image": ""}, "image", "non-empty string"),
        ({"image": 3}, "image", "non-empty string"),
        ({"shell": "sh"}, "shell", "absolute path"),
        ({"host": "ftp://x"}, "host", "unix:///path"),
        ({"name_prefix": "a/b"}, "name_prefix", "letters, digits"),
        ({"home": "yes"}, "home", "true or false"),
        ({"allowed_users": "alice"}, "allowed_users", "list of user names"),
        ({"allowed_users": ["alice", 3]}, "allowed_users", "list of user names"),
        ({"mounts": "/a:/b"}, "mounts", "list"),
        ({"mounts": ["/a"]}, "mounts[0]", "is not"),
        ({"mounts": ["/a:/b", "a:/b"]}, "mounts[1]", "absolute paths"),
        ({"mounts": ["/a:/b:rx"]}, "mounts[0]", "mode must be ro or rw"),
        ({"limits": 5}, "limits", "must be a table"),
        ({"limits": {"memory": "lots"}}, "limits.memory", "size like"),
        ({"limits": {"memory": "-1m"}}, "limits.memory", "size like"),
        ({"limits": {"memory": "12x"}}, "limits.memory", "size like"),
        ({"limits": {"cpus": "half"}}, "limits.cpus", "number of CPUs"),
        ({"limits": {"cpus": -1}}, "limits.cpus", "number of CPUs"),
        ({"limits": {"pids": 1.5}}, "limits.pids", "whole number"),
        ({"limits": {"pids": True}}, "limits.pids", "whole number"),
        ({"limits": {"swap": 1}}, "limits.swap", "unknown key"),
        ({"users": []}, "users", "table of"),
        ({"users": {"alice": 1}}, "users.alice", "must be a table"),
        ({"users": {"alice": {"shel": "/bin/sh"}}}, "users.alice.shel", "unknown key"),
        ({"users": {"alice": {"limits": {"pids": -1}}}}, "users.alice.limits.pids", "whole"),
        ({"users": {"a": {"allowed_users": []}}}, "users.a.allowed_users", "top level"),
    ],
)
def test_bad_values_name_the_file_and_key(doc, key, words):
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "/etc/freight/shell.toml")
    message = str(info.value)
    assert message.startswith(f"/etc/freight/shell.toml: {key}: "), message
    assert words in message
    assert "\n" not in message
    assert info.value.key == key


def test_invalid_toml_is_one_line_naming_the_file(tmp_path):
    path = write(tmp_path, 'image = "busybox\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: not valid TOML")
    assert "\n" not in str(info.value)


def test_unreadable_file(tmp_path):
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "dir.toml"))


def test_config_path_env_is_honoured_only_when_trusted():
    env = {"FREIGHT_SHELL_CONFIG": "/tmp/x.toml"}
    assert config_path(env) == "/tmp/x.toml"
    assert config_path(env, trust_env=False) == DEFAULT_PATH
    assert config_path({}) == DEFAULT_PATH
