"""Fuzzing the API's JSON decoding: request bodies (`Request.json`), the `filters`
query parameter, and the body of POST /containers/create (`container_json.parse_create`).

Properties: any bytes give a value or InvalidArgument (a 400), never another
exception (a 500): not for malformed JSON, not for nesting bombs, not for a
well-formed body whose fields have the wrong types; and a decodable document
round-trips.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fuzz_settings import fuzz
from hypothesis import example, given
from hypothesis import strategies as st

from freight import errors
from freight.apiserver import container_json
from freight.apiserver.http import (
    MAX_JSON_DEPTH,
    Headers,
    Query,
    Request,
    decode_json,
    encode_json,
    parse_filters,
)
from freight.apiserver.streams import BodyStream

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.text(max_size=12),
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
BOMBS = [b"[" * 100_000, b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000]

CREATE_KEYS = [
    "Image", "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Hostname", "Domainname",
    "Labels", "StopSignal", "StopTimeout", "Tty", "OpenStdin", "AttachStdout", "ExposedPorts",
    "Volumes", "Healthcheck", "NetworkingConfig", "HostConfig",
]  # fmt: skip
HOST_KEYS = [
    "Binds", "PortBindings", "Memory", "MemorySwap", "NanoCpus", "PidsLimit", "CapAdd",
    "CapDrop", "SecurityOpt", "NetworkMode", "RestartPolicy", "LogConfig", "Mounts", "Tmpfs",
    "Privileged", "Devices", "Ulimits", "Sysctls", "ShmSize", "AutoRemove", "Dns", "ExtraHosts",
    "Runtime", "OomScoreAdj", "GroupAdd", "ReadonlyRootfs", "UsernsMode", "PidMode",
]  # fmt: skip
HOST = st.dictionaries(st.sampled_from(HOST_KEYS), JSON, max_size=6)
CREATE = st.dictionaries(st.sampled_from(CREATE_KEYS), st.one_of(JSON, HOST), max_size=8).map(
    lambda d: {"Image": "busybox", **d}
)


def _request(body: bytes, content_type: str = "application/json") -> Request:
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)] + [b""]

    async def source() -> bytes:
        return chunks.pop(0) if chunks else b""

    return Request(
        method="POST",
        target="/x",
        path="/x",
        query=Query(),
        headers=Headers([("content-type", content_type)]),
        body=BodyStream(source),
    )


@fuzz(500)
@given(data=st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode())))
@example(data=BOMBS[0])
@example(data=BOMBS[1])
@example(data=BOMBS[2])
@example(data=b'{"a": NaN}')
@example(data=b"\xff\xfe{")
@example(data=b'"\\ud800"')
@example(data=b"1e999999")
def test_request_json_gives_a_value_or_invalid_argument(data: bytes) -> None:
    try:
        value = asyncio.run(_request(data).json())
    except errors.InvalidArgument:
        return
    # What was accepted encodes and decodes to the same document.
    assert decode_json(encode_json(value)) == value or value != value


@fuzz(300)
@given(raw=st.one_of(st.text(max_size=100), JSON.map(json.dumps)))
@example(raw="[" * 50_000)
@example(raw='{"label": {"a=b": true}, "status": ["running"]}')
@example(raw='{"label": 5}')
@example(raw="null")
def test_filters_give_a_mapping_or_invalid_argument(raw: str) -> None:
    with contextlib.suppress(errors.InvalidArgument):
        result = parse_filters(raw)
        assert all(isinstance(v, list) for v in result.values())


@fuzz(250)
@given(depth=st.integers(1, 3 * MAX_JSON_DEPTH))
def test_depth_limit_is_exact(depth: int) -> None:
    doc = "[" * depth + "]" * depth
    if depth <= MAX_JSON_DEPTH:
        assert decode_json(doc) is not None
    else:
        try:
            decode_json(doc)
        except errors.InvalidArgument as e:
            assert "nested deeper" in str(e)
        else:
            raise AssertionError(f"depth {depth} accepted")


@fuzz(300)
@given(body=st.one_of(CREATE, JSON))
@example(body={"Image": "busybox", "Env": 5})
@example(body={"Image": "busybox", "Labels": [1]})
@example(body={"Image": "busybox", "HostConfig": {"PidsLimit": "x"}})
@example(body={"Image": "busybox", "HostConfig": {"LogConfig": {"Config": [1]}}})
@example(body={"Image": ["busybox"]})
@example(body={"Image": "busybox", "HostConfig": []})
def test_create_body_gives_a_request_or_invalid_argument(body) -> None:
    with contextlib.suppress(errors.InvalidArgument):
        container_json.parse_create("", body, "freight")
