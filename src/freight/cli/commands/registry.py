"""``freight registry serve|gc|user``: run freight's own registry server and manage it.

Owns: the flags of these commands, reading the password (``--password-stdin`` or a
prompt), and printing results. The server runs in this process (not through freightd),
so the heavy modules (asyncio, h11, bcrypt, jwt) are imported here, inside the functions.

    freight registry serve [--addr 127.0.0.1:5000] [--root DIR] [--config FILE]
                           [--tls-cert F --tls-key F] [--public GLOB] [--read-only]
    freight registry user add NAME [--password-stdin] [--admin]
    freight registry user rm|passwd NAME / user ls
    freight registry gc [--dry-run] [--keep-untagged] [--grace SECONDS]
"""

from __future__ import annotations

import sys

from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session

_COMMON = [
    Flag("root", "", "string", 'Registry storage directory (default "/var/lib/freight-registry")'),
    Flag("config", "", "string", "Registry config file (TOML)"),
]

SERVE = Command(
    "registry serve",
    "[OPTIONS]",
    "Run an OCI distribution registry",
    [
        Flag("addr", "", "string", 'Address to listen on (default "127.0.0.1:5000")'),
        *_COMMON,
        Flag("tls-cert", "", "string", "TLS certificate file"),
        Flag("tls-key", "", "string", "TLS key file"),
        Flag("public", "", "list", "Repositories anyone may pull (glob, repeatable)"),
        Flag("read-only", "", help="Refuse every write (maintenance mode)"),
        Flag("quiet", "q", help="No access log"),
    ],
    max_args=0,
)
GC = Command(
    "registry gc",
    "[OPTIONS]",
    "Remove blobs and manifests no tag references",
    [
        *_COMMON,
        Flag("dry-run", "n", help="Only print what would be removed"),
        Flag("keep-untagged", "", help="Keep manifests no tag points to"),
        Flag("grace", "", "int", "Keep anything written in the last SECONDS (default 3600)"),
    ],
    max_args=0,
)
USER_ADD = Command(
    "registry user add",
    "[OPTIONS] NAME",
    "Create an account",
    [
        *_COMMON,
        Flag("password-stdin", "", help="Take the password from stdin"),
        Flag("admin", "", help="The account may pull, push and delete everywhere"),
    ],
    min_args=1,
    max_args=1,
)
USER_PASSWD = Command(
    "registry user passwd",
    "[OPTIONS] NAME",
    "Change an account's password",
    [*_COMMON, Flag("password-stdin", "", help="Take the password from stdin")],
    min_args=1,
    max_args=1,
)
USER_RM = Command("registry user rm", "[OPTIONS] NAME", "Remove an account", _COMMON, min_args=1, max_args=1)  # fmt: skip
USER_LS = Command("registry user ls", "[OPTIONS]", "List accounts", _COMMON, max_args=0)
USER_COMMANDS = {"add": USER_ADD, "passwd": USER_PASSWD, "rm": USER_RM, "ls": USER_LS}


def _enable_site_packages() -> None:
    # The CLI launcher runs with -S (fast start); the server needs the venv's packages.
    try:
        import h11  # noqa: F401
    except ImportError:
        import site

        site.main()


def _config(opts: dict, **extra: object):
    from freight import errors
    from freight.registry import config

    try:
        return config.load(opts.get("config"), root=opts.get("root"), **extra)
    except errors.FreightError as exc:
        raise CliError(str(exc)) from None


def serve_main(session: Session, argv: list[str]) -> int:
    opts, _ = SERVE.parse(argv)
    _enable_site_packages()
    import asyncio
    import logging

    from freight import errors
    from freight.registry.server import serve

    if bool(opts["tls_cert"]) != bool(opts["tls_key"]):
        raise CliError("--tls-cert and --tls-key go together")
    cfg = _config(
        opts,
        addr=opts["addr"],
        tls_cert=opts["tls_cert"],
        tls_key=opts["tls_key"],
        public=opts["public"] or None,
        read_only=True if opts["read_only"] else None,
    )
    try:
        cfg.s3_settings()  # a bad [storage] table is a usage error, before anything starts
    except errors.FreightError as exc:
        raise CliError(str(exc)) from None
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if opts["quiet"]:
        logging.getLogger("freight.registry.access").setLevel(logging.WARNING)

    def ready(port: int) -> None:
        host = cfg.host_port()[0]
        scheme = "https" if cfg.tls_cert else "http"
        sys.stderr.write(f"freight registry listening on {scheme}://{host}:{port} (root {cfg.root})\n")  # fmt: skip
        sys.stderr.flush()

    try:
        asyncio.run(serve(cfg, ready))
    except OSError as exc:
        raise CliError(f"cannot serve on {cfg.addr}: {exc.strerror or exc}") from None
    return 0


def gc_main(session: Session, argv: list[str]) -> int:
    opts, _ = GC.parse(argv)
    _enable_site_packages()
    from freight import errors
    from freight.registry import gc
    from freight.registry.storagebase import open_storage

    cfg = _config(opts)
    try:
        storage = open_storage(cfg)
    except errors.FreightError as exc:
        raise CliError(str(exc)) from None
    grace = gc.DEFAULT_GRACE if opts["grace"] is None else float(opts["grace"])
    report = gc.collect(storage, dry_run=opts["dry_run"], keep_untagged=opts["keep_untagged"], grace=grace)  # fmt: skip
    verb = "would delete" if opts["dry_run"] else "deleted"
    for repo, digest in report.manifests:
        session.out(f"{repo}: {verb} manifest {digest}\n")
    for digest in report.blobs:
        session.out(f"{verb} blob {digest}\n")
    session.out(
        f"{len(report.manifests)} manifests, {len(report.blobs)} blobs, {report.freed_bytes} bytes {'to free' if opts['dry_run'] else 'freed'}\n"  # fmt: skip
    )
    return 0


def user_main(session: Session, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        session.out("Usage:  freight registry user COMMAND\n\nCommands:\n")
        for name, cmd in USER_COMMANDS.items():
            session.out(f"  {name.ljust(8)}{cmd.summary}\n")
        return 0
    command = USER_COMMANDS.get(argv[0])
    if command is None:
        raise CliError(f"unknown command: freight registry user {argv[0]}")
    opts, args = command.parse(argv[1:])
    _enable_site_packages()
    from pathlib import Path

    from freight import errors
    from freight.registry.accounts import Accounts
    from freight.registry.storage import Layout

    accounts = Accounts(Layout(Path(_config(opts).root)).auth)
    try:
        if command is USER_LS:
            session.out("NAME\tADMIN\n" + "".join(f"{u.name}\t{str(u.admin).lower()}\n" for u in accounts.list()))  # fmt: skip
        elif command is USER_RM:
            accounts.remove(args[0])
        elif command is USER_ADD:
            accounts.add(args[0], _password(opts["password_stdin"]), admin=opts["admin"])
        else:
            accounts.set_password(args[0], _password(opts["password_stdin"]))
    except errors.FreightError as exc:
        raise CliError(str(exc)) from None
    return 0


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise CliError("passwords do not match")
    if not password:
        raise CliError("password must not be empty")
    return password
