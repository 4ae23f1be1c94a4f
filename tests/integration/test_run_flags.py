"""Security-related run flags that map straight onto the OCI spec."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("client", ["cli", "docker"])
def test_caps_no_new_privileges_and_read_only_root(freightd, client):
    run = getattr(freightd, client)
    script = 'grep -E "NoNewPrivs|CapEff" /proc/self/status; touch /x || echo read-only'
    result = run(
        "run", "--rm", "--security-opt", "no-new-privileges", "--cap-drop", "ALL",
        "--cap-add", "chown", "--read-only", "busybox", "sh", "-c", script,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "CapEff:\t0000000000000001" in out  # CAP_CHOWN only
    assert "NoNewPrivs:\t1" in out
    assert out.strip().endswith("read-only")


def test_runc_runs_the_same_bundle(freightd):
    import shutil

    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    result = freightd.cli(
        "run", "--rm", "--runtime", "runc", "-h", "viarunc", "busybox", "hostname"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "viarunc"
