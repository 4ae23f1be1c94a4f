"""Sizes, durations and CPU values against what docker prints and accepts."""

from __future__ import annotations

import pytest

from freight.cli.units import (
    UnitError,
    bytes_size,
    human_duration,
    human_size,
    memory_swap_bytes,
    nano_cpus,
    ram_in_bytes,
)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (4261550, "4.26MB"),  # busybox:latest in `docker images`
        (77_800_000, "77.8MB"),
        (117_000_000, "117MB"),
        (1_234_567_890, "1.23GB"),
        (999_999, "1e+03kB"),  # Go's %.3g rounds up into an exponent too
    ],
)
def test_human_size(size, text):
    assert human_size(size) == text


def test_bytes_size_binary():
    assert bytes_size(2 * 1024**3) == "2GiB"
    assert bytes_size(2_076_000_000) == "1.933GiB"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (5, "5 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"),
        (2 * 365 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1024", 1024),
        ("100k", 100 * 1024),
        ("512m", 512 * 1024**2),
        ("512M", 512 * 1024**2),
        ("1g", 1024**3),
        ("1.5g", 3 * 1024**3 // 2),
        ("1GiB", 1024**3),
        ("1mb", 1024**2),
        ("10b", 10),
        ("2 m", 2 * 1024**2),
    ],
)
def test_ram_in_bytes(text, value):
    assert ram_in_bytes(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12x", "invalid suffix: 'x'"),
        ("1kbb", "invalid suffix: 'kbb'"),
        ("abc", "invalid size: 'abc'"),
        ("-1", "invalid size: '-1'"),
        ("1.2.3", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
    ],
)
def test_ram_in_bytes_errors(text, message):
    with pytest.raises(UnitError) as info:
        ram_in_bytes(text)
    assert str(info.value) == message


def test_memory_swap_unlimited():
    assert memory_swap_bytes("-1") == -1
    assert memory_swap_bytes("1g") == 1024**3


def test_nano_cpus():
    assert nano_cpus("1.5") == 1_500_000_000
    assert nano_cpus("2") == 2_000_000_000
    assert nano_cpus(".25") == 250_000_000
    assert nano_cpus("0.000000001") == 1
    with pytest.raises(UnitError, match="value is too precise"):
        nano_cpus("0.0000000001")
    with pytest.raises(UnitError, match="failed to parse x as a rational number"):
        nano_cpus("x")
