"""Registry commands: ``pull``, ``push``, ``login``, ``logout``, ``search``.

Owns: their flags, the credentials sent as X-Registry-Auth (from docker's
config file, ``cli.dockerconfig``) and the progress display
(``cli.progressbars``). The daemon does the registry traffic.
"""

from __future__ import annotations

import sys

from freight.cli import dockerconfig
from freight.cli.flags import Command, Flag
from freight.cli.progressbars import show_progress
from freight.cli.session import CliError, Session
from freight.client.http import ApiError, quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

PULL = Command(
    "pull",
    "[OPTIONS] NAME[:TAG|@DIGEST]",
    "Download an image from a registry",
    [
        Flag("all-tags", "a", help="Download all tagged images in the repository"),
        Flag("disable-content-trust", "", help="Skip image verification (default true)"),
        Flag("platform", "", "string", "Set platform if server is multi-platform capable"),
        Flag("quiet", "q", help="Suppress verbose output"),
    ],
    min_args=1,
    max_args=1,
    aliases=("freight image pull", "freight pull"),
)
PUSH = Command(
    "push",
    "[OPTIONS] NAME[:TAG]",
    "Upload an image to a registry",
    [
        Flag("all-tags", "a", help="Push all tags of an image to the repository"),
        Flag("disable-content-trust", "", help="Skip image signing (default true)"),
        Flag("quiet", "q", help="Suppress verbose output"),
    ],
    min_args=1,
    max_args=1,
    aliases=("freight image push", "freight push"),
)
LOGIN = Command(
    "login",
    "[OPTIONS] [SERVER]",
    "Log in to a registry",
    [
        Flag("password", "p", "string", "Password"),
        Flag("password-stdin", "", help="Take the password from stdin"),
        Flag("username", "u", "string", "Username"),
    ],
    max_args=1,
)
LOGOUT = Command("logout", "[SERVER]", "Log out from a registry", [], max_args=1)
SEARCH = Command(
    "search",
    "[OPTIONS] TERM",
    "Search Docker Hub for images",
    [
        Flag(
            "filter", "f", "list", "Filter output based on conditions provided", type_name="filter"
        ),
        Flag("format", "", "string", "Pretty-print search using a Go template"),
        Flag("limit", "", "int", "Max number of search results", default=25),
        Flag("no-trunc", "", help="Don't truncate output"),
    ],
    min_args=1,
    max_args=1,
)


MANIFEST_INSPECT = Command(
    "manifest inspect",
    "[OPTIONS] [MANIFEST_LIST] MANIFEST",
    "Display an image manifest, or manifest list",
    [
        Flag("insecure", "", help="Allow communication with an insecure registry"),
        Flag("verbose", "v", help="Output additional info including layers and platform"),
    ],
    min_args=1,
    max_args=2,
)


def registry_of(name: str) -> str:
    """The registry host of an image name ("docker.io" when it names none)."""
    first, sep, _ = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def auth_header(registry: str) -> dict[str, str]:
    try:
        creds = dockerconfig.get(registry)
    except (RuntimeError, ValueError) as e:
        raise CliError(str(e)) from None
    return {"X-Registry-Auth": dockerconfig.registry_auth_header(creds)} if creds else {}


def split_tag(ref: str) -> tuple[str, str | None]:
    if "@" in ref:
        return ref, None
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, None
    return repo, tag


def pull_image(
    session: Session,
    name: str,
    *,
    all_tags: bool = False,
    platform: str = "",
    quiet: bool = False,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """POST /images/create with the saved login for the image's registry."""
    repo, tag = split_tag(name)
    if all_tags and (tag or "@" in repo):
        raise CliError("tag can't be used with --all-tags/-a", 125)
    if not all_tags and not tag and "@" not in repo:
        tag = "latest"
        if not quiet:
            session.out("Using default tag: latest\n")
    params = {"fromImage": repo, "tag": tag, "platform": platform or None}
    response = session.api.http.request(
        "POST", "/images/create", params=params, headers=auth_header(registry_of(repo))
    )
    return show_progress(response.iter_json(), out or sys.stdout, quiet)


def pull_main(session: Session, argv: list[str]) -> int:
    opts, args = PULL.parse(argv)
    name = args[0]
    try:
        pull_image(
            session,
            name,
            all_tags=bool(opts["all_tags"]),
            platform=opts["platform"] or "",
            quiet=bool(opts["quiet"]),
        )
    except ApiError as exc:
        raise CliError(str(exc)) from None
    if opts["quiet"]:
        repo, tag = split_tag(name)
        full = name if tag or "@" in name else f"{name}:latest"
        session.out(_canonical(full) + "\n")
    return 0


def _canonical(name: str) -> str:
    registry = registry_of(name)
    if registry != "docker.io":
        return name
    path = name.removeprefix("docker.io/")
    return "docker.io/" + (
        path if "/" in path.split(":", 1)[0].split("@", 1)[0] else f"library/{path}"
    )


def push_main(session: Session, argv: list[str]) -> int:
    opts, args = PUSH.parse(argv)
    repo, tag = split_tag(args[0])
    if opts["all_tags"] and tag:
        raise CliError("tag can't be used with --all-tags/-a", 125)
    if not opts["all_tags"] and not tag:
        tag = "latest"
        if not opts["quiet"]:
            session.out("Using default tag: latest\n")
    try:
        response = session.api.http.request(
            "POST",
            f"/images/{quote(repo, safe='/:@')}/push",
            params={"tag": tag},
            headers=auth_header(registry_of(repo)) or {"X-Registry-Auth": "e30="},
        )
        show_progress(response.iter_json(), sys.stdout, bool(opts["quiet"]))
    except ApiError as exc:
        raise CliError(str(exc)) from None
    if opts["quiet"]:
        session.out(f"{repo}:{tag}\n" if tag else f"{repo}\n")
    return 0


def login_main(session: Session, argv: list[str]) -> int:
    opts, args = LOGIN.parse(argv)
    server = args[0] if args else dockerconfig.INDEX_SERVER
    username = opts["username"] or ""
    password = opts["password"] or ""
    if opts["password_stdin"]:
        if password:
            raise CliError("--password and --password-stdin are mutually exclusive", 125)
        if not username:
            raise CliError("Must provide --username with --password-stdin", 125)
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        session.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if not username or not password:
        username, password = _prompt(username, password)
    body = {"username": username, "password": password, "serveraddress": server}
    try:
        reply = session.api.http.post_json("/auth", body)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    try:
        where = dockerconfig.store(server, username, password, reply.get("IdentityToken") or "")
    except (OSError, RuntimeError) as e:
        raise CliError(f"Error saving credentials: {e}") from None
    if where.endswith("config.json"):
        session.err(
            f"WARNING! Your password will be stored unencrypted in {where}.\n"
            "Configure a credential helper to remove this warning. See\n"
            "https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n\n"
        )
    session.out((reply.get("Status") or "Login Succeeded") + "\n")
    return 0


def _prompt(username: str, password: str) -> tuple[str, str]:
    if not sys.stdin.isatty():
        raise CliError("Cannot perform an interactive login from a non TTY device")
    import getpass

    if not username:
        sys.stdout.write("Username: ")
        sys.stdout.flush()
        username = sys.stdin.readline().strip()
    if not password:
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise CliError("Error: Non-null Username and Password Required", 1)
    return username, password


def logout_main(session: Session, argv: list[str]) -> int:
    _, args = LOGOUT.parse(argv)
    server = args[0] if args else dockerconfig.INDEX_SERVER
    key = dockerconfig.server_key(server)
    try:
        had = dockerconfig.erase(server)
    except (OSError, ValueError) as e:
        raise CliError(str(e)) from None
    if not had:
        session.out(f"Not logged in to {key}\n")
        return 0
    session.out(f"Removing login credentials for {key}\n")
    return 0


def search_main(session: Session, argv: list[str]) -> int:
    from freight.cli.commands.ps import parse_filters
    from freight.client import wirejson

    opts, args = SEARCH.parse(argv)
    limit = opts["limit"] if opts["limit"] is not None else 25
    filters = parse_filters(opts["filter"])
    params = {
        "term": args[0],
        "limit": limit,
        "filters": wirejson.dumps({k: dict.fromkeys(v, True) for k, v in filters.items()})
        if filters
        else None,
    }
    try:
        rows = session.api.http.request(
            "GET", "/images/search", params=params, headers=auth_header(registry_of(args[0]))
        ).json()
    except ApiError as exc:
        raise CliError(str(exc)) from None
    from freight.cli.formatter import render, resolve_format

    fmt = resolve_format(opts["format"], SEARCH_TABLE, False)
    no_trunc = bool(opts["no_trunc"]) or not fmt.startswith("table")
    session.out(render(fmt, [SearchRow(row, no_trunc) for row in rows], SEARCH_HEADERS))
    return 0


SEARCH_TABLE = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"
SEARCH_HEADERS = {"StarCount": "STARS", "IsOfficial": "OFFICIAL"}


class SearchRow:
    """One search result as docker's CLI shows it: the table says "[OK]" for an
    official image, `{{json .}}` says "true"/"false" (and StarCount is a string)."""

    def __init__(self, row: dict[str, Any], no_trunc: bool) -> None:
        desc = str(row.get("description") or "").replace("\n", " ")
        if not no_trunc and len(desc) > 45:
            desc = desc[:44] + "…"
        self.Name = str(row.get("name", ""))
        self.Description = desc
        self.StarCount = str(row.get("star_count", 0))
        self.official = bool(row.get("is_official"))
        self.IsOfficial = "[OK]" if self.official else ""

    def to_json(self) -> dict[str, str]:
        return {
            "Description": self.Description,
            "IsOfficial": "true" if self.official else "false",
            "Name": self.Name,
            "StarCount": self.StarCount,
        }


def manifest_inspect_main(session: Session, argv: list[str]) -> int:
    import json

    _, args = MANIFEST_INSPECT.parse(argv)
    name = args[-1]
    try:
        response = session.api.http.request(
            "GET",
            f"/freight/distribution/{quote(name, safe='/:@')}/manifest",
            headers=auth_header(registry_of(name)),
        )
        doc = json.loads(response.read())
    except ApiError as exc:
        raise CliError(str(exc)) from None
    session.out(json.dumps(doc, indent="\t") + "\n")
    return 0
