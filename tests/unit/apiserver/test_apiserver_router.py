"""Route matching, API versions, query parsing and the error table, without sockets."""

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freight import errors
from freight.apiserver.errors import error_response, status_for
from freight.apiserver.http import Headers, Query, Request, json_response, parse_filters
from freight.apiserver.router import Router, check_version, compile_pattern, split_version


async def ok(req: Request) -> object:
    return json_response({"params": req.params})


def make_router() -> Router:
    router = Router()
    router.add("GET", "/images/json", ok)
    router.add("GET", "/images/{name:path}/json", ok)
    router.add("GET", "/images/{name:path}/history", ok)
    router.add("DELETE", "/images/{name:path}", ok)
    router.add("GET", "/containers/{id}/json", ok)
    router.add("GET", "/containers/json", ok)
    return router


# Image names as users type them: registry host with port, nested paths,
# tags and digests. Slashes and colons are the interesting characters.
component = st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+)*", fullmatch=True)
image_name = st.builds(
    lambda host, path, tag: (host + "/" if host else "") + "/".join(path) + tag,
    st.one_of(st.just(""), st.just("localhost:5000"), st.just("registry.example.com")),
    st.lists(component, min_size=1, max_size=4),
    st.one_of(
        st.just(""),
        st.from_regex(r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
        st.from_regex(r"@sha256:[0-9a-f]{64}", fullmatch=True),
    ),
)


@given(image_name)
def test_greedy_path_param_takes_whole_image_name(name: str) -> None:
    router = make_router()
    route, params = router.match("GET", f"/images/{name}/json")  # type: ignore[misc]
    assert route.pattern == "/images/{name:path}/json"
    assert params == {"name": name}
    route, params = router.match("DELETE", f"/images/{name}")  # type: ignore[misc]
    assert params == {"name": name}


@given(st.text(st.characters(blacklist_characters="/"), min_size=1))
def test_segment_param_takes_any_single_segment(value: str) -> None:
    found = make_router().match("GET", f"/containers/{value}/json")
    assert found is not None and found[1] == {"id": value}


def test_static_route_wins_over_placeholder() -> None:
    router = make_router()
    route, params = router.match("GET", "/containers/json")  # type: ignore[misc]
    assert route.pattern == "/containers/json" and params == {}
    route, _ = router.match("GET", "/images/json")  # type: ignore[misc]
    assert route.pattern == "/images/json"


def test_segment_param_does_not_cross_slashes() -> None:
    assert make_router().match("GET", "/containers/a/b/json") is None


def test_head_falls_back_to_get_and_methods_are_distinct() -> None:
    router = make_router()
    assert router.match("HEAD", "/containers/x/json") is not None
    assert router.match("POST", "/containers/x/json") is None


def test_compile_pattern_escapes_literals() -> None:
    assert compile_pattern("/a.b/{x}").fullmatch("/a.b/1")
    assert not compile_pattern("/a.b/{x}").fullmatch("/aXb/1")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1.45/containers/json", ("1.45", "/containers/json")),
        ("/v1.24/_ping", ("1.24", "/_ping")),
        ("/containers/json", (None, "/containers/json")),
        ("/volumes/v1.2", (None, "/volumes/v1.2")),
        ("/vx/containers", (None, "/vx/containers")),
    ],
)
def test_split_version(path: str, expected: tuple) -> None:
    assert split_version(path) == expected


def test_check_version_bounds() -> None:
    check_version("1.24")
    check_version("1.45")
    with pytest.raises(errors.InvalidArgument, match="too old"):
        check_version("1.23")
    with pytest.raises(errors.InvalidArgument, match="too new"):
        check_version("1.46")


def test_router_adds_headers_and_404s() -> None:
    router = make_router()
    req = Request("GET", "/nope", "/nope", Query(), Headers())
    response = asyncio.run(router(req))
    assert response.status == 404
    assert ("Api-Version", "1.45") in response.headers
    assert ("Ostype", "linux") in response.headers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("True", True),
        ("yes", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("", False),
        ("no", False),
        ("none", False),
    ],
)
def test_query_bool_like_docker(raw: str, expected: bool) -> None:
    assert Query.parse(f"all={raw}").bool("all") is expected


def test_query_bool_default_when_absent() -> None:
    assert Query.parse("").bool("stream", True) is True


def test_query_int() -> None:
    query = Query.parse("t=10&tail=&bad=ten")
    assert query.int("t") == 10
    assert query.int("tail", 5) == 5
    assert query.int("missing", -1) == -1
    with pytest.raises(errors.InvalidArgument):
        query.int("bad")


def test_query_multi_values() -> None:
    query = Query.parse("a=1&a=2&b=x+y")
    assert query.get("a") == "1"
    assert query.get_all("a") == ["1", "2"]
    assert query.get("b") == "x y"
    assert "a" in query and "c" not in query


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", {}),
        ("{}", {}),
        ('{"status":["running","paused"]}', {"status": ["running", "paused"]}),
        ('{"label":{"a=b":true,"c":true}}', {"label": ["a=b", "c"]}),
    ],
)
def test_filters_both_shapes(raw: str, expected: dict) -> None:
    assert parse_filters(raw) == expected


@pytest.mark.parametrize("raw", ["nope", "[1]", '{"status":"running"}'])
def test_filters_garbage_is_invalid(raw: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        parse_filters(raw)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.NotFound("x"), 404),
        (errors.AlreadyExists("x"), 409),
        (errors.Conflict("x"), 409),
        (errors.InvalidArgument("x"), 400),
        (errors.PermissionDenied("x"), 403),
        (errors.Unavailable("x"), 503),
        (errors.NotImplementedYet("x"), 501),
        (errors.Internal("x"), 500),
        (errors.ExecError("not found", 127), 400),
        (errors.ExecError("permission denied", 126), 400),
        (errors.ExecError("other", 125), 500),
        (errors.FreightError("x"), 500),
        (ValueError("x"), 500),
    ],
)
def test_status_table(exc: BaseException, status: int) -> None:
    assert status_for(exc) == status


def test_subclass_of_a_kind_maps_like_its_kind() -> None:
    class NoSuchImage(errors.NotFound):
        pass

    assert status_for(NoSuchImage("x")) == 404


def test_error_response_body() -> None:
    response = error_response(errors.NotFound("No such container: x"))
    assert response.content_type == "application/json"
    assert response.body == b'{"message":"No such container: x"}\n'
