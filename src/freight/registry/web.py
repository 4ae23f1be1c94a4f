"""The registry's web pages: sign in, browse and search repositories, see tags, sizes,
layers and the pull command, star a repository, edit its description, manage access tokens.

Server-rendered HTML, no JavaScript. Pages:

    GET  /                      repositories the visitor may pull (?q= searches)
    GET  /r/<name>[?tag=T]      a repository: description, stars, pulls, tags with sizes,
                                the layers of the selected tag, `docker pull` command
    POST /r/<name>/star         star / unstar (signed in)
    POST /r/<name>/description  (push access)
    GET  /ui/login, POST /ui/login, POST /ui/logout
    GET  /ui/tokens, POST /ui/tokens (create), POST /ui/tokens/revoke

Sign-in sets `freight_session`, a JWT for the web audience (HttpOnly, SameSite=Strict);
POSTs also check that Origin, when sent, is this host. Every value shown is escaped.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import urllib.parse

from freight import errors
from freight.oci import mediatypes
from freight.oci.digest import Digest
from freight.registry.accounts import Accounts, Policy, User
from freight.registry.httpserver import Request, Response
from freight.registry.hub import Hub
from freight.registry.storage import NameInvalid, check_name
from freight.registry.storagebase import RegistryStorage
from freight.registry.tokens import TokenService, issue_session, verify_session

COOKIE = "freight_session"
FORM_LIMIT = 64 * 1024
_REPO_PATH = re.compile(r"/r/(?P<name>.+?)(?P<action>/star|/description)?")

_STYLE = """body{font-family:sans-serif;margin:0;color:#222}header{background:#124;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center}
header a{color:#fff}main{padding:1em}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}
code{background:#eee;padding:.1em .3em}.error{color:#a00}"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _human(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)


class WebUI:
    def __init__(self, storage: RegistryStorage, accounts: Accounts, policy: Policy, tokens: TokenService, hub: Hub) -> None:  # fmt: skip
        self.storage, self.accounts, self.policy, self.tokens, self.hub = (
            storage,
            accounts,
            policy,
            tokens,
            hub,
        )

    async def handle(self, req: Request) -> Response:
        user = self._session_user(req)
        if req.method == "POST" and not self._same_origin(req):
            return self._page(
                req, user, "Forbidden", "<p class=error>cross-site request refused</p>", 403
            )
        path = req.path
        if path == "/" and req.method in ("GET", "HEAD"):
            return self._index(req, user)
        if path == "/ui/login":
            return await self._login(req, user)
        if path == "/ui/logout" and req.method == "POST":
            return _redirect("/", cookie=f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
        if path.startswith("/ui/tokens"):
            return await self._access_tokens(req, user)
        m = _REPO_PATH.fullmatch(path)
        if m:
            return await self._repository(req, user, m.group("name"), m.group("action"))
        return self._page(req, user, "Not found", "<p>No such page.</p>", 404)

    # --- identity -------------------------------------------------------------------

    def _session_user(self, req: Request) -> User | None:
        for part in (req.header("cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                sub = verify_session(self.tokens, value)
                return self.accounts.get(sub) if sub else None
        return None

    def _same_origin(self, req: Request) -> bool:
        origin = req.header("origin")
        if not origin or origin == "null":
            return origin is None
        return urllib.parse.urlsplit(origin).netloc == (req.header("host") or "")

    def _can(self, user: User | None, repo: str, action: str) -> bool:
        return self.policy.allowed(user, repo, [action]) == [action]

    # --- pages ----------------------------------------------------------------------

    def _index(self, req: Request, user: User | None) -> Response:
        query = (req.arg("q") or "").strip().lower()
        repos = [
            r for r in self.storage.repositories() if query in r and self._can(user, r, "pull")
        ]
        rows = []
        for repo in repos:
            info = self.hub.info(repo)
            rows.append(
                f'<tr><td><a href="/r/{_e(repo)}">{_e(repo)}</a></td><td>{_e(info.description)}</td>'
                f"<td>{len(info.stars)}</td><td>{info.pulls}</td><td>{len(self.storage.tags(repo))}</td></tr>"
            )
        table = (
            "<table><tr><th>Repository</th><th>Description</th><th>Stars</th><th>Pulls</th><th>Tags</th></tr>"
            + "".join(rows)
            + "</table>"
            if rows
            else f"<p>No repositories{' match ' + _e(repr(query)) if query else ''}.</p>"
        )
        title = f"Search: {query}" if query else "Repositories"
        return self._page(req, user, title, f"<h1>{_e(title)}</h1>{table}")

    async def _login(self, req: Request, user: User | None) -> Response:
        message = ""
        if req.method == "POST":
            form = await _form(req)
            name, password = form.get("username", ""), form.get("password", "")
            found = await asyncio.to_thread(self.accounts.verify, name, password)
            if found is not None:
                cookie = f"{COOKIE}={issue_session(self.tokens, found.name)}; Path=/; HttpOnly; SameSite=Strict"  # fmt: skip
                return _redirect("/", cookie=cookie)
            message = "<p class=error id=login-error>Incorrect username or password.</p>"
        body = (
            f"<h1>Sign in</h1>{message}<form method=post action=/ui/login>"
            "<p><label>Username <input name=username id=username autocomplete=username></label></p>"
            "<p><label>Password <input name=password id=password type=password></label></p>"
            "<p><button type=submit id=signin>Sign in</button></p></form>"
        )
        return self._page(req, user, "Sign in", body, 401 if message else 200)

    async def _access_tokens(self, req: Request, user: User | None) -> Response:
        if user is None:
            return _redirect("/ui/login")
        store = self.accounts.access_tokens
        created = ""
        if req.method == "POST":
            form = await _form(req)
            if req.path == "/ui/tokens/revoke":
                store.revoke(user.name, form.get("id", ""))
            else:
                token, secret = store.create(user.name, form.get("name", ""))
                created = (
                    f"<p>New token <b>{_e(token.name)}</b> (shown once; use it as the password of "
                    f"<code>docker login</code>): <code id=new-token>{_e(secret)}</code></p>"
                )
        rows = "".join(
            f"<tr><td>{_e(t.name)}</td><td>{_e(t.id)}</td><td><form method=post action=/ui/tokens/revoke>"
            f"<input type=hidden name=id value={_e(t.id)}><button>Revoke</button></form></td></tr>"
            for t in store.list(user.name)
        )
        body = (
            f"<h1>Access tokens</h1>{created}<table><tr><th>Name</th><th>Id</th><th></th></tr>{rows}</table>"
            "<form method=post action=/ui/tokens><p><label>Name <input name=name id=token-name></label> "
            "<button type=submit id=create-token>Create token</button></p></form>"
        )
        return self._page(req, user, "Access tokens", body)

    async def _repository(
        self, req: Request, user: User | None, name: str, action: str | None
    ) -> Response:
        try:
            check_name(name)
        except NameInvalid:
            return self._page(req, user, "Not found", "<p>No such repository.</p>", 404)
        if not self.storage.repo_exists(name) or not self._can(user, name, "pull"):
            return self._page(req, user, "Not found", "<p>No such repository.</p>", 404)
        if action == "/star" and req.method == "POST":
            if user is None:
                return _redirect("/ui/login")
            self.hub.toggle_star(name, user.name)
            return _redirect(f"/r/{name}")
        if action == "/description" and req.method == "POST":
            if self._can(user, name, "push") and user is not None:
                self.hub.set_description(name, (await _form(req)).get("description", ""))
            return _redirect(f"/r/{name}")
        if action is not None:
            return self._page(req, user, "Not found", "<p>No such page.</p>", 404)
        return self._repository_page(req, user, name)

    def _repository_page(self, req: Request, user: User | None, name: str) -> Response:
        info = self.hub.info(name)
        tags = self.storage.tags(name)
        selected = req.arg("tag") or ("latest" if "latest" in tags else (tags[0] if tags else ""))
        host = req.header("host") or "localhost"
        rows = []
        layers_html = ""
        for tag in tags:
            digest = self.storage.resolve_tag(name, tag)
            summary = self._summary(name, digest) if digest else None
            size = _human(summary[0]) if summary else "?"
            rows.append(
                f'<tr><td><a href="/r/{_e(name)}?tag={_e(tag)}">{_e(tag)}</a></td><td>{size}</td>'
                f"<td><code>{_e(digest or '')}</code></td></tr>"
            )
            if tag == selected and summary:
                items = "".join(
                    f"<tr><td><code>{_e(d)}</code></td><td>{_e(t)}</td><td>{_human(s)}</td></tr>"
                    for d, t, s in summary[1]
                )
                layers_html = f"<h2>{_e(tag)}: layers</h2><table><tr><th>Digest</th><th>Type</th><th>Size</th></tr>{items}</table>"  # fmt: skip
        star_label = "Unstar" if user and user.name in info.stars else "Star"
        star = (
            f'<form method=post action="/r/{_e(name)}/star"><button id=star>{star_label}</button></form>'
            if user
            else ""
        )
        describe = (
            f'<form method=post action="/r/{_e(name)}/description"><input name=description id=description '
            f'value="{_e(info.description)}" size=60><button id=save-description>Save description</button></form>'
            if user and self._can(user, name, "push")
            else ""
        )
        pull = f"docker pull {host}/{name}:{selected}" if selected else f"docker pull {host}/{name}"
        body = (
            f"<h1>{_e(name)}</h1><p id=description-text>{_e(info.description)}</p>"
            f"<p><span id=stars>{len(info.stars)} stars</span> · <span id=pulls>{info.pulls} pulls</span></p>{star}{describe}"  # fmt: skip
            f"<p>Pull: <code id=pull-command>{_e(pull)}</code></p>"
            f"<h2>Tags</h2><table><tr><th>Tag</th><th>Size</th><th>Digest</th></tr>{''.join(rows)}</table>{layers_html}"  # fmt: skip
        )
        return self._page(req, user, name, body)

    def _summary(self, name: str, digest: Digest) -> tuple[int, list[tuple[str, str, int]]] | None:
        """(total size, [(digest, media type, size)]) of a manifest, or of an index's entries."""
        media_type = self.storage.manifest_type(name, digest)
        try:
            manifest = json.loads(self.storage.read_blob(digest))
        except (errors.NotFound, ValueError):
            return None
        if media_type in mediatypes.INDEXES:
            parts = []
            for child in manifest.get("manifests") or []:
                platform = child.get("platform") or {}
                label = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
                parts.append((str(child.get("digest")), label, int(child.get("size") or 0)))
            return sum(p[2] for p in parts), parts
        entries = [manifest.get("config") or {}, *(manifest.get("layers") or [])]
        parts = [(str(e.get("digest")), str(e.get("mediaType")), int(e.get("size") or 0)) for e in entries if isinstance(e, dict)]  # fmt: skip
        return sum(p[2] for p in parts), parts

    def _page(
        self, req: Request, user: User | None, title: str, body: str, status: int = 200
    ) -> Response:
        q = _e(req.arg("q") or "")
        account = (
            f'<span id=user>{_e(user.name)}</span> <a href="/ui/tokens">Access tokens</a>'
            "<form method=post action=/ui/logout style=display:inline><button id=signout>Sign out</button></form>"
            if user
            else '<a href="/ui/login" id=signin-link>Sign in</a>'
        )
        page = (
            f"<!doctype html><html><head><meta charset=utf-8><title>{_e(title)} · freight registry</title>"
            f"<style>{_STYLE}</style></head><body><header><a href=/><b>freight registry</b></a>"
            f'<form action=/ method=get><input name=q id=q value="{q}" placeholder="Search repositories">'
            f"<button id=search>Search</button></form><span style=flex:1></span>{account}</header>"
            f"<main>{body}</main></body></html>"
        )
        return Response(status, [("Content-Type", "text/html; charset=utf-8"), ("X-Frame-Options", "DENY")], page.encode())  # fmt: skip


async def _form(req: Request) -> dict[str, str]:
    try:
        raw = await req.read(FORM_LIMIT)
    except ValueError:
        return {}
    parsed = urllib.parse.parse_qs(raw.decode("utf-8", errors="replace"))
    return {k: v[0] for k, v in parsed.items()}


def _redirect(location: str, cookie: str | None = None) -> Response:
    headers = [("Location", location)]
    if cookie:
        headers.append(("Set-Cookie", cookie))
    return Response(303, headers)
