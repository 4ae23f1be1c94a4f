"""copyfiles: what an ADD URL download said is kept (by URL) to revalidate it."""

from __future__ import annotations

from freight.builder import copyfiles, urlfetch


def test_validators_survive_a_save_and_become_conditional_headers() -> None:
    cache = copyfiles.StatCache()
    cache.put_url("http://h/f", "sha256:ab\0f\0None", '"e1"', "Tue, 01 Oct 2024 10:00:00 GMT")
    again = copyfiles.StatCache.from_json(cache.to_json())
    known = again.get_url("http://h/f")
    assert known is not None and known["hash"] == "sha256:ab\0f\0None"
    assert urlfetch.validators(known) == {
        "If-None-Match": '"e1"',
        "If-Modified-Since": "Tue, 01 Oct 2024 10:00:00 GMT",
    }
    assert again.get_url("http://h/other") is None


def test_a_download_without_validators_is_not_remembered() -> None:
    cache = copyfiles.StatCache()
    cache.put_url("http://h/f", "sha256:ab", '"e1"', "")
    cache.put_url("http://h/f", "sha256:cd", "", "")  # the server stopped sending them
    assert cache.get_url("http://h/f") is None
    assert urlfetch.validators(None) == {}
