"""The command table: command name -> module that implements it.

Owns: which commands exist, their one-line summaries (for ``freight --help``)
and aliases (``container ls`` is ``ps``). Modules are imported only when
their command runs — pip's ``commands/__init__.py`` pattern — because
importing every command would cost the start time the CLI is measured on.
Each module has a ``main(session, argv) -> int`` function per entry.
"""

from __future__ import annotations

# name -> (module, function, summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("freight.cli.commands.run", "run_main", "Create and run a new container from an image"),
    "create": ("freight.cli.commands.run", "create_main", "Create a new container"),
    "start": ("freight.cli.commands.run", "start_main", "Start one or more stopped containers"),
    "stop": ("freight.cli.commands.lifecycle", "stop_main", "Stop one or more running containers"),
    "kill": ("freight.cli.commands.lifecycle", "kill_main", "Kill one or more running containers"),
    "restart": ("freight.cli.commands.lifecycle", "restart_main", "Restart one or more containers"),
    "rm": ("freight.cli.commands.lifecycle", "rm_main", "Remove one or more containers"),
    "wait": (
        "freight.cli.commands.lifecycle",
        "wait_main",
        "Block until one or more containers stop, then print their exit codes",
    ),
    "exec": ("freight.cli.commands.exec", "main", "Execute a command in a running container"),
    "attach": (
        "freight.cli.commands.attach",
        "main",
        "Attach local standard input, output, and error streams to a running container",
    ),
    "ps": ("freight.cli.commands.ps", "main", "List containers"),
    "port": (
        "freight.cli.commands.network",
        "port_main",
        "List port mappings or a specific mapping for the container",
    ),
    "logs": ("freight.cli.commands.logs", "main", "Fetch the logs of a container"),
    "inspect": (
        "freight.cli.commands.inspect",
        "main",
        "Return low-level information on Docker objects",
    ),
    "images": ("freight.cli.commands.images", "images_main", "List images"),
    "rmi": ("freight.cli.commands.images", "rmi_main", "Remove one or more images"),
    "tag": (
        "freight.cli.commands.images",
        "tag_main",
        "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    ),
    "history": ("freight.cli.commands.images", "history_main", "Show the history of an image"),
    "import": (
        "freight.cli.commands.images",
        "import_main",
        "Import the contents from a tarball to create a filesystem image",
    ),
    "commit": (
        "freight.cli.commands.commit",
        "commit_main",
        "Create a new image from a container's changes",
    ),
    "diff": (
        "freight.cli.commands.commit",
        "diff_main",
        "Inspect changes to files or directories on a container's filesystem",
    ),
    "export": (
        "freight.cli.commands.commit",
        "export_main",
        "Export a container's filesystem as a tar archive",
    ),
    "save": (
        "freight.cli.commands.save",
        "save_main",
        "Save one or more images to a tar archive (streamed to STDOUT by default)",
    ),
    "load": ("freight.cli.commands.save", "load_main", "Load an image from a tar archive or STDIN"),
    "pull": ("freight.cli.commands.pullpush", "pull_main", "Download an image from a registry"),
    "push": ("freight.cli.commands.pullpush", "push_main", "Upload an image to a registry"),
    "login": ("freight.cli.commands.pullpush", "login_main", "Log in to a registry"),
    "logout": ("freight.cli.commands.pullpush", "logout_main", "Log out from a registry"),
    "search": ("freight.cli.commands.pullpush", "search_main", "Search Docker Hub for images"),
    "version": (
        "freight.cli.commands.system",
        "version_main",
        "Show the freight version information",
    ),
    "info": ("freight.cli.commands.system", "info_main", "Display system-wide information"),
    "events": ("freight.cli.commands.events", "main", "Get real time events from the server"),
    "build": ("freight.cli.commands.build", "build_main", "Build an image from a Dockerfile"),
    "cp": (
        "freight.cli.commands.cp",
        "main",
        "Copy files/folders between a container and the local filesystem",
    ),
    "stats": (
        "freight.cli.commands.stats",
        "main",
        "Display a live stream of container(s) resource usage statistics",
    ),
    "top": ("freight.cli.commands.top", "main", "Display the running processes of a container"),
    "pause": (
        "freight.cli.commands.pause",
        "pause_main",
        "Pause all processes within one or more containers",
    ),
    "unpause": (
        "freight.cli.commands.pause",
        "unpause_main",
        "Unpause all processes within one or more containers",
    ),
    "rename": ("freight.cli.commands.pause", "rename_main", "Rename a container"),
    "update": (
        "freight.cli.commands.update",
        "main",
        "Update configuration of one or more containers",
    ),
}

# Management commands: "freight image ls" -> COMMANDS["images"], etc.
GROUPS: dict[str, tuple[str, dict[str, tuple[str, str, str]]]] = {
    "container": (
        "Manage containers",
        {
            "ls": COMMANDS["ps"],
            "list": COMMANDS["ps"],
            "ps": COMMANDS["ps"],
            "rm": COMMANDS["rm"],
            "remove": COMMANDS["rm"],
            "inspect": (
                "freight.cli.commands.inspect",
                "container_main",
                "Display detailed information on one or more containers",
            ),
            **{
                name: COMMANDS[name]
                for name in (
                    "run",
                    "create",
                    "start",
                    "stop",
                    "kill",
                    "restart",
                    "wait",
                    "logs",
                    "exec",
                    "attach",
                    "port",
                    "update",
                    "commit",
                    "diff",
                    "export",
                    "cp",
                    "stats",
                    "top",
                    "pause",
                    "unpause",
                    "rename",
                )  # fmt: skip
            },
            "prune": (
                "freight.cli.commands.prune",
                "container_prune_main",
                "Remove all stopped containers",
            ),
        },
    ),
    "image": (
        "Manage images",
        {
            "ls": COMMANDS["images"],
            "list": COMMANDS["images"],
            "rm": COMMANDS["rmi"],
            "remove": COMMANDS["rmi"],
            "inspect": (
                "freight.cli.commands.inspect",
                "image_main",
                "Display detailed information on one or more images",
            ),
            "tag": COMMANDS["tag"],
            "history": COMMANDS["history"],
            "import": COMMANDS["import"],
            "save": COMMANDS["save"],
            "load": COMMANDS["load"],
            "pull": COMMANDS["pull"],
            "push": COMMANDS["push"],
            "prune": ("freight.cli.commands.prune", "image_prune_main", "Remove unused images"),
            "build": COMMANDS["build"],
            "bootstrap": (
                "freight.cli.commands.images",
                "bootstrap_main",
                "Create a base image (busybox or debian:bookworm) without a registry",
            ),
        },
    ),
    "system": (
        "Manage freight",
        {
            "df": ("freight.cli.commands.prune", "system_df_main", "Show docker disk usage"),
            "prune": ("freight.cli.commands.prune", "system_prune_main", "Remove unused data"),
            "info": COMMANDS["info"],
            "events": COMMANDS["events"],
            "dial-stdio": (
                "freight.cli.commands.context",
                "dial_stdio_main",
                "Proxy the stdio stream to the daemon connection. Should not be invoked manually.",
            ),
        },
    ),
    "context": (
        "Manage contexts",
        {
            name: ("freight.cli.commands.context", f"{func}_main", summary)
            for name, func, summary in (
                ("create", "create", "Create a context"),
                ("inspect", "inspect", "Display detailed information on one or more contexts"),
                ("ls", "ls", "List contexts"),
                ("list", "ls", "List contexts"),
                ("rm", "rm", "Remove one or more contexts"),
                ("remove", "rm", "Remove one or more contexts"),
                ("show", "show", "Print the name of the current context"),
                ("use", "use", "Set the current docker context"),
            )
        },
    ),
    "builder": (
        "Manage builds",
        {
            "build": COMMANDS["build"],
            "prune": ("freight.cli.commands.builder", "prune_main", "Remove build cache"),
        },
    ),
    "volume": (
        "Manage volumes",
        {
            "create": ("freight.cli.commands.volume", "create_main", "Create a volume"),
            "ls": ("freight.cli.commands.volume", "ls_main", "List volumes"),
            "list": ("freight.cli.commands.volume", "ls_main", "List volumes"),
            "inspect": (
                "freight.cli.commands.volume",
                "inspect_main",
                "Display detailed information on one or more volumes",
            ),
            "rm": ("freight.cli.commands.volume", "rm_main", "Remove one or more volumes"),
            "remove": ("freight.cli.commands.volume", "rm_main", "Remove one or more volumes"),
            "prune": ("freight.cli.commands.volume", "prune_main", "Remove unused local volumes"),
        },
    ),
    "network": (
        "Manage networks",
        {
            name: ("freight.cli.commands.network", f"{func}_main", summary)
            for name, func, summary in (
                ("create", "create", "Create a network"),
                ("ls", "ls", "List networks"),
                ("list", "ls", "List networks"),
                ("inspect", "inspect", "Display detailed information on one or more networks"),
                ("rm", "rm", "Remove one or more networks"),
                ("remove", "rm", "Remove one or more networks"),
                ("prune", "prune", "Remove all unused networks"),
                ("connect", "connect", "Connect a container to a network"),
                ("disconnect", "disconnect", "Disconnect a container from a network"),
            )
        },
    ),
    "manifest": (
        "Manage Docker image manifests and manifest lists",
        {
            "inspect": (
                "freight.cli.commands.pullpush",
                "manifest_inspect_main",
                "Display an image manifest, or manifest list",
            ),
        },
    ),
    "registry": (
        "Run and manage freight's own registry server",
        {
            "serve": ("freight.cli.commands.registry", "serve_main", "Run an OCI registry server"),
            "gc": ("freight.cli.commands.registry", "gc_main", "Remove unreferenced blobs"),
            "user": ("freight.cli.commands.registry", "user_main", "Manage registry accounts"),
        },
    ),
    "daemon": (
        "Start or stop freightd",
        {
            "start": (
                "freight.cli.commands.daemon",
                "start_main",
                "Start freightd in the background",
            ),
            "stop": ("freight.cli.commands.daemon", "stop_main", "Stop the running freightd"),
        },
    ),
}
