"""Docker's reference grammar: normalisation, familiar forms, error wording."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from freight import errors
from freight.oci.reference import (
    is_full_id,
    looks_like_id_prefix,
    parse,
    parse_normalized,
)

HEX = "a" * 64
DIGEST = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("typed", "full", "familiar_name", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox", "busybox:latest"),
        ("index.docker.io/x/y", "docker.io/x/y:latest", "x/y", "x/y:latest"),
        ("library/a/b", "docker.io/library/a/b:latest", "library/a/b", "library/a/b:latest"),
        (
            "localhost:5000/a/b:t",
            "localhost:5000/a/b:t",
            "localhost:5000/a/b",
            "localhost:5000/a/b:t",
        ),
        ("localhost/x", "localhost/x:latest", "localhost/x", "localhost/x:latest"),
        ("ghcr.io/o/r@" + DIGEST, "ghcr.io/o/r@" + DIGEST, "ghcr.io/o/r", "ghcr.io/o/r@" + DIGEST),
        ("x/y:1@" + DIGEST, "docker.io/x/y:1@" + DIGEST, "x/y", "x/y:1@" + DIGEST),
        ("[::1]:5000/a", "[::1]:5000/a:latest", "[::1]:5000/a", "[::1]:5000/a:latest"),
        (
            "a__b.c-d---e/f_g",
            "docker.io/a__b.c-d---e/f_g:latest",
            "a__b.c-d---e/f_g",
            "a__b.c-d---e/f_g:latest",
        ),
    ],
)
def test_normalisation(typed, full, familiar_name, familiar):
    ref = parse_normalized(typed)
    assert (str(ref), ref.familiar_name(), ref.familiar_string()) == (full, familiar_name, familiar)


def test_parts_of_a_normalised_reference():
    ref = parse_normalized("busybox")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (
        "docker.io",
        "library/busybox",
        "latest",
        None,
    )
    assert ref.name == "docker.io/library/busybox"


def test_default_tag_can_be_left_off():
    assert parse_normalized("busybox", default_tag=False).tag is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            "Busybox",
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        ("a/B:x", "invalid reference format: repository name (a/B) must be lowercase"),
        ("busybox:", "invalid reference format"),
        ("a:b:c", "invalid reference format"),
        ("-a", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("a:" + "t" * 129, "invalid reference format"),
        ("", "invalid reference format"),
        (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
    ],
)
def test_errors_use_dockers_words(bad, message):
    with pytest.raises(errors.InvalidArgument) as e:
        parse_normalized(bad)
    assert str(e.value) == message


def test_name_length_is_bounded():
    with pytest.raises(errors.InvalidArgument, match="255"):
        parse_normalized("a/" + "b" * 260)


def test_id_helpers():
    assert is_full_id(HEX) and is_full_id("sha256:" + HEX)
    assert not is_full_id(HEX[:12]) and not is_full_id(HEX.upper())
    assert looks_like_id_prefix("3f5") and looks_like_id_prefix("sha256:3f5")
    assert not looks_like_id_prefix("busybox") and not looks_like_id_prefix("")


# --- properties ---------------------------------------------------------------

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_sep = st.sampled_from([".", "_", "__", "-", "--"])
_component = st.builds(
    lambda first, rest: first + "".join(s + a for s, a in rest),
    _alnum,
    st.lists(st.tuples(_sep, _alnum), max_size=2),
)
_path = st.lists(_component, min_size=1, max_size=3).map("/".join)
_domain = st.sampled_from(
    ["", "docker.io/", "localhost/", "localhost:5000/", "ghcr.io/", "my-reg.example.com:443/"]
)
_tag = st.from_regex(r"[\w][\w.-]{0,20}", fullmatch=True).filter(str.isascii)
_digest = st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True)
_reference = st.builds(
    lambda domain, path, tag, digest: (
        domain + path + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ),
    _domain,
    _path,
    st.none() | _tag,
    st.none() | _digest,
)


@given(_reference)
def test_parse_of_str_round_trips(typed):
    ref = parse_normalized(typed)
    assert parse(str(ref)) == ref
    assert parse_normalized(str(ref)) == ref


@given(_reference)
def test_normalisation_is_idempotent(typed):
    ref = parse_normalized(typed)
    # As in Docker, the familiar form is ambiguous when a Docker Hub path starts
    # with something domain-like ("docker.io/a.b/c" shows as "a.b/c").
    assume(not (ref.domain == "docker.io" and "." in ref.familiar_name().split("/")[0]))
    assert parse_normalized(ref.familiar_string()) == ref
    assert str(parse_normalized(str(ref))) == str(ref)
