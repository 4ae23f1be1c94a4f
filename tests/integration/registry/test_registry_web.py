"""The registry's web pages driven by a real headless browser (Debian's
chromium-headless-shell over the DevTools protocol): sign in, search, see a pushed image's
tags, layers and pull command, star it, create an access token and log in with it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest
import websocket
from registryserver import make_image, push_image

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium-headless-shell is not installed")


class Browser:
    """One page of a headless chromium, driven by CDP commands."""

    def __init__(self, tmp_path) -> None:
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                f"--user-data-dir={tmp_path / 'chromium'}",
                "about:blank",
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: close() ends every chromium process
        )
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://127.0.0.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
            elif not line and self.proc.poll() is not None:
                break
        assert port, "chromium did not start"
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list").read())  # noqa: S310
        page = next(p for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self._id = 0
        self.call("Page.enable")

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                assert "error" not in msg, msg
                return msg.get("result", {})

    def _wait_load(self) -> None:
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == "Page.loadEventFired":
                return

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self._wait_load()

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def submit(self, button_id: str, **fields: str) -> None:
        """Fill inputs by id, click a button, wait for the page it leads to."""
        for key, value in fields.items():
            self.js(f"document.getElementById({json.dumps(key)}).value = {json.dumps(value)}")
        self.js(f"document.getElementById({json.dumps(button_id)}).click()")
        self._wait_load()

    def text(self) -> str:
        return self.js("document.body.innerText")

    def close(self) -> None:
        self.ws.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path)
    yield b
    b.close()


def test_sign_in_search_browse_star_and_tokens(registry_factory, browser):
    r = registry_factory()
    assert r.cli("user", "add", "alice", "--password-stdin", stdin=b"alice-pw\n").returncode == 0
    image = make_image((20_000, 30_000), seed=b"web")
    for tag in ("v1", "latest"):
        assert push_image(r, "alice/webapp", tag, image, auth=("alice", "alice-pw")).status == 201
    base = f"http://{r.host}"

    browser.goto(base + "/")
    assert "alice/webapp" not in browser.text()  # private: hidden from visitors
    browser.goto(base + "/ui/login")
    browser.submit("signin", username="alice", password="wrong")
    assert browser.js("document.getElementById('login-error') !== null")
    browser.submit("signin", username="alice", password="alice-pw")
    assert browser.js("document.getElementById('user').innerText") == "alice"
    assert "alice/webapp" in browser.text()

    browser.submit("search", q="webap")
    assert "alice/webapp" in browser.text() and "Search: webap" in browser.text()
    browser.submit("search", q="nothing-like-it")
    assert "alice/webapp" not in browser.text()

    browser.goto(base + "/r/alice/webapp")
    page = browser.text()
    assert (
        browser.js("document.getElementById('pull-command').innerText")
        == f"docker pull {r.host}/alice/webapp:latest"
    )
    assert "v1" in page and "latest" in page and image.digest in page
    for layer in json.loads(image.manifest)["layers"]:
        assert layer["digest"] in page
    assert "0 stars" in page
    browser.submit("star")
    assert "1 stars" in browser.text()
    browser.submit("save-description", description="A <b>web</b> app")
    assert browser.js("document.getElementById('description-text').innerText") == "A <b>web</b> app"

    browser.goto(base + "/ui/tokens")
    browser.submit("create-token", **{"token-name": "laptop"})
    secret = browser.js("document.getElementById('new-token').innerText")
    assert secret.startswith("frt_") and "laptop" in browser.text()
    # The access token works as a password for the token service (docker login).
    assert (
        r.request("GET", "/token?scope=repository:alice/webapp:pull", auth=("alice", secret)).status
        == 200
    )
    found = r.request("GET", "/v1/search?q=webapp", auth=("alice", "alice-pw")).json()["results"][0]
    assert found["star_count"] == 1 and found["description"] == "A <b>web</b> app"

    browser.submit("signout")
    assert browser.js("document.getElementById('signin-link') !== null")


def test_web_post_from_another_origin_is_refused(registry_factory):
    r = registry_factory()
    reply = r.request("POST", "/ui/login", b"username=a&password=b", {"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert reply.status == 403
