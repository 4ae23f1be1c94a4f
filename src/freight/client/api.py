"""Thin wrappers for the Engine API endpoints the freight CLI calls.

Owns: endpoint paths and query parameters. Values are the API's JSON as
decoded (dicts with docker's keys): the CLI formats them and nothing else
sits in between, so a typed model would only be a second copy of the spec.
Each method names the endpoint it calls; errors are ``http.ApiError``.
"""

from __future__ import annotations

from freight.client import wirejson
from freight.client.http import (
    ApiError,
    ClientError,
    EngineClient,
    Hijacked,
    Response,
    check,
    quote,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable, Iterator, Mapping
    from typing import Any, BinaryIO

    JSON = dict[str, Any]


def _filters(filters: Mapping[str, list[str]] | None) -> str | None:
    # The API wants {"key": {"value": true}}; docker sends the map form.
    if not filters:
        return None
    return wirejson.dumps({k: dict.fromkeys(v, True) for k, v in filters.items()})


def _q(name: str) -> str:
    return quote(name, safe="/:@")


class EngineAPI:
    """The endpoints, one method each, over an ``EngineClient``."""

    def __init__(self, client: EngineClient) -> None:
        self.http = client

    # ------------------------------------------------------------ system
    def ping(self) -> str:
        """GET /_ping"""
        return self.http.request("GET", "/_ping").read().decode()

    def reads_local_folders(self) -> bool:
        """Whether the daemon is freightd on this machine's unix socket, which reads
        a build context folder in place (`freightcontext=`)."""
        if getattr(self.http, "family", "") != "unix":
            return False
        try:
            response = self.http.request("GET", "/_ping")
            response.read()
        except ClientError:
            return False  # the build request will say what is wrong
        return response.headers.get("freight-local-context") == "1"

    def version(self) -> JSON:
        """GET /version"""
        return self.http.get_json("/version")

    def info(self) -> JSON:
        """GET /info"""
        return self.http.get_json("/info")

    # ------------------------------------------------------------ images
    def images(
        self, *, all: bool = False, filters: Mapping[str, list[str]] | None = None
    ) -> list[JSON]:
        """GET /images/json"""
        return self.http.get_json(
            "/images/json", {"all": all or None, "filters": _filters(filters)}
        )

    def image_inspect(self, name: str) -> JSON:
        """GET /images/{name}/json"""
        return self.http.get_json(f"/images/{_q(name)}/json")

    def image_history(self, name: str) -> list[JSON]:
        """GET /images/{name}/history"""
        return self.http.get_json(f"/images/{_q(name)}/history")

    def image_tag(self, name: str, repo: str, tag: str | None) -> None:
        """POST /images/{name}/tag?repo=&tag="""
        self.http.request(
            "POST", f"/images/{_q(name)}/tag", params={"repo": repo, "tag": tag}
        ).read()

    def image_remove(self, name: str, *, force: bool = False, noprune: bool = False) -> list[JSON]:
        """DELETE /images/{name}"""
        params = {"force": force or None, "noprune": noprune or None}
        return self.http.request("DELETE", f"/images/{_q(name)}", params=params).json() or []

    def image_pull(self, image: str, tag: str | None = None) -> Iterator[JSON]:
        """POST /images/create?fromImage= : a JSON-message stream."""
        params = {"fromImage": image, "tag": tag}
        return self.http.request("POST", "/images/create", params=params).iter_json()

    def image_import(
        self,
        source: str | BinaryIO,
        *,
        repo: str | None = None,
        tag: str | None = None,
        message: str | None = None,
        changes: list[str] | None = None,
    ) -> Iterator[JSON]:
        """POST /images/create?fromSrc= : body is the tarball when source is a stream."""
        params: dict[str, Any] = {"fromSrc": source if isinstance(source, str) else "-"}
        params.update(repo=repo, tag=tag, message=message, changes=changes or None)
        data = None if isinstance(source, str) else source
        headers = {"Content-Type": "application/x-tar"} if data is not None else None
        return self.http.request(
            "POST", "/images/create", params=params, data=data, headers=headers
        ).iter_json()

    def image_bootstrap(self, image: str) -> Iterator[JSON]:
        """POST /freight/images/bootstrap?image= (freight's own; JSON-message stream)."""
        return self.http.request(
            "POST", "/freight/images/bootstrap", params={"image": image}
        ).iter_json()

    # ------------------------------------------------------------ builds
    def build(
        self,
        context: bytes | BinaryIO | Iterable[bytes] | None,
        *,
        tags: list[str] | None = None,
        dockerfile: str | None = None,
        remote: str | None = None,
        quiet: bool = False,
        no_cache: bool = False,
        pull: bool = False,
        rm: bool = True,
        force_rm: bool = False,
        build_args: Mapping[str, str | None] | None = None,
        labels: Mapping[str, str] | None = None,
        cache_from: list[str] | None = None,
        network_mode: str | None = None,
        extra_hosts: list[str] | None = None,
        platform: str | None = None,
        target: str | None = None,
        secrets: Mapping[str, bytes] | None = None,
        freight_steps: bool = False,
        registry_config: Mapping[str, Mapping[str, str]] | None = None,
        local_context: tuple[str, str] | None = None,
    ) -> Iterator[JSON]:
        """POST /build (legacy builder protocol, version=1): a JSON-message stream.

        ``context`` is the tar body (None with ``remote``). Extensions freightd
        reads and dockerd ignores: ``freightsteps=1`` (step state messages),
        the ``X-Freight-Build-Secrets`` header (base64 of a JSON map id ->
        base64 value; a header, so that no URL log holds a secret), and
        ``local_context`` (folder, "dev:ino"): the context folder that the
        daemon reads in place (see ``reads_local_folders``).
        """
        import base64

        params: dict[str, Any] = {
            "t": list(tags or []) or None,
            "dockerfile": dockerfile,
            "remote": remote,
            "q": quiet or None,
            "nocache": no_cache or None,
            "pull": pull or None,
            "rm": rm,
            "forcerm": force_rm or None,
            "buildargs": dict(build_args) if build_args else None,
            "labels": dict(labels) if labels else None,
            "cachefrom": wirejson.dumps(cache_from, (",", ":")) if cache_from else None,
            "networkmode": network_mode,
            "extrahosts": list(extra_hosts or []) or None,
            "platform": platform,
            "target": target,
            "version": "1",
            "freightsteps": freight_steps or None,
        }
        if local_context:
            params["freightcontext"], params["freightcontextid"] = local_context
        headers = {"Content-Type": "application/x-tar"}
        if secrets:
            encoded = {k: base64.b64encode(v).decode() for k, v in secrets.items()}
            raw = wirejson.dumps(encoded).encode()
            headers["X-Freight-Build-Secrets"] = base64.b64encode(raw).decode()
        if registry_config:
            raw = wirejson.dumps(dict(registry_config)).encode()
            headers["X-Registry-Config"] = base64.urlsafe_b64encode(raw).decode()
        return self.http.request(
            "POST", "/build", params=params, data=context, headers=headers
        ).iter_json()

    def build_prune(
        self,
        *,
        all: bool = False,
        filters: Mapping[str, list[str]] | None = None,
        keep_storage: int | None = None,
    ) -> JSON:
        """POST /build/prune?all=&filters=&keep-storage= -> {CachesDeleted, SpaceReclaimed}"""
        params = {"all": all or None, "filters": _filters(filters), "keep-storage": keep_storage}
        return self.http.request("POST", "/build/prune", params=params).json() or {}

    # ------------------------------------------------------------ containers
    def containers(
        self,
        *,
        all: bool = False,
        limit: int | None = None,
        size: bool = False,
        filters: Mapping[str, list[str]] | None = None,
    ) -> list[JSON]:
        """GET /containers/json"""
        params = {
            "all": all or None,
            "limit": limit,
            "size": size or None,
            "filters": _filters(filters),
        }
        return self.http.get_json("/containers/json", params)

    def container_create(self, body: JSON, name: str | None = None) -> JSON:
        """POST /containers/create?name="""
        return self.http.post_json("/containers/create", body, {"name": name})

    def container_inspect(self, cid: str, *, size: bool = False) -> JSON:
        """GET /containers/{id}/json"""
        return self.http.get_json(f"/containers/{_q(cid)}/json", {"size": size or None})

    def container_start(self, cid: str) -> None:
        """POST /containers/{id}/start"""
        self.http.request("POST", f"/containers/{_q(cid)}/start").read()

    def container_stop(
        self, cid: str, *, timeout: int | None = None, signal: str | None = None
    ) -> None:
        """POST /containers/{id}/stop?t=&signal="""
        params = {"t": timeout, "signal": signal}
        self.http.request("POST", f"/containers/{_q(cid)}/stop", params=params).read()

    def container_restart(
        self, cid: str, *, timeout: int | None = None, signal: str | None = None
    ) -> None:
        """POST /containers/{id}/restart?t=&signal="""
        params = {"t": timeout, "signal": signal}
        self.http.request("POST", f"/containers/{_q(cid)}/restart", params=params).read()

    def container_kill(self, cid: str, *, signal: str | None = None) -> None:
        """POST /containers/{id}/kill?signal="""
        self.http.request("POST", f"/containers/{_q(cid)}/kill", params={"signal": signal}).read()

    def container_remove(self, cid: str, *, force: bool = False, volumes: bool = False) -> None:
        """DELETE /containers/{id}?force=&v="""
        params = {"force": force or None, "v": volumes or None}
        self.http.request("DELETE", f"/containers/{_q(cid)}", params=params).read()

    def container_wait_begin(self, cid: str, condition: str | None = "not-running") -> PendingWait:
        """POST /containers/{id}/wait?condition= — returns before the container exits.

        The answer arrives when the condition is met; read it with
        ``PendingWait.result()``. Sending first is what lets ``run`` wait on
        a container it has not started yet, without a thread.
        """
        params = {"condition": condition}
        return PendingWait(*self.http.send("POST", f"/containers/{_q(cid)}/wait", params=params))

    def container_wait(self, cid: str, condition: str = "not-running") -> JSON:
        """POST /containers/{id}/wait, blocking until the condition is met."""
        return self.container_wait_begin(cid, condition).result()

    def container_logs(self, cid: str, **params: Any) -> Response:
        """GET /containers/{id}/logs — the body is framed unless the container has a TTY."""
        return self.http.request("GET", f"/containers/{_q(cid)}/logs", params=params)

    def container_attach(
        self,
        cid: str,
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        logs: bool = False,
        detach_keys: str | None = None,
    ) -> Hijacked:
        """POST /containers/{id}/attach?stream=1&stdin=&stdout=&stderr=&detachKeys= (hijacked).

        As docker's client: ``detachKeys`` only when given, false flags sent as 0.
        """
        params = {
            "stream": True,
            "stdin": stdin,
            "stdout": stdout,
            "stderr": stderr,
            "logs": logs or None,
            "detachKeys": detach_keys or None,
        }
        return self.http.hijack("POST", f"/containers/{_q(cid)}/attach", params=params)

    def container_resize(self, cid: str, height: int, width: int) -> None:
        """POST /containers/{id}/resize?h=&w="""
        self.http.request(
            "POST", f"/containers/{_q(cid)}/resize", params={"h": height, "w": width}
        ).read()

    # ------------------------------------------------------------ exec
    def exec_create(self, cid: str, config: JSON) -> str:
        """POST /containers/{id}/exec -> the exec id."""
        return self.http.post_json(f"/containers/{_q(cid)}/exec", config)["Id"]

    def exec_start(
        self, eid: str, *, tty: bool, console_size: tuple[int, int] | None = None
    ) -> Hijacked:
        """POST /exec/{id}/start {"Detach": false, "Tty": ...} (hijacked, ``Connection: Upgrade``)."""
        return self.http.hijack(
            "POST", f"/exec/{_q(eid)}/start", body=_exec_start_body(False, tty, console_size)
        )

    def exec_start_detached(
        self, eid: str, *, tty: bool, console_size: tuple[int, int] | None = None
    ) -> None:
        """POST /exec/{id}/start {"Detach": true, ...}: returns once the process started."""
        body = _exec_start_body(True, tty, console_size)
        self.http.request("POST", f"/exec/{_q(eid)}/start", json_body=body).read()

    def exec_inspect(self, eid: str) -> JSON:
        """GET /exec/{id}/json"""
        return self.http.get_json(f"/exec/{_q(eid)}/json")

    def exec_resize(self, eid: str, height: int, width: int) -> None:
        """POST /exec/{id}/resize?h=&w="""
        self.http.request(
            "POST", f"/exec/{_q(eid)}/resize", params={"h": height, "w": width}
        ).read()

    # ------------------------------------------------------------ volumes
    def volumes(self, *, filters: Mapping[str, list[str]] | None = None) -> JSON:
        """GET /volumes -> {"Volumes": [...], "Warnings": [...]}"""
        return self.http.get_json("/volumes", {"filters": _filters(filters)})

    def volume_create(self, body: JSON) -> JSON:
        """POST /volumes/create"""
        return self.http.post_json("/volumes/create", body)

    def volume_inspect(self, name: str) -> JSON:
        """GET /volumes/{name}"""
        return self.http.get_json(f"/volumes/{_q(name)}")

    def volume_remove(self, name: str, *, force: bool = False) -> None:
        """DELETE /volumes/{name}?force="""
        self.http.request("DELETE", f"/volumes/{_q(name)}", params={"force": force or None}).read()

    def volume_prune(self, *, filters: Mapping[str, list[str]] | None = None) -> JSON:
        """POST /volumes/prune?filters="""
        return self.http.post_json("/volumes/prune", None, {"filters": _filters(filters)})

    # ------------------------------------------------------------ archive (cp)
    def container_stat_path(self, cid: str, path: str) -> JSON:
        """HEAD /containers/{id}/archive?path= -> the X-Docker-Container-Path-Stat JSON."""
        response = self.http.request(
            "HEAD", f"/containers/{_q(cid)}/archive", params={"path": path}
        )
        response.read()
        return _path_stat(response)

    def container_get_archive(self, cid: str, path: str) -> tuple[Response, JSON]:
        """GET /containers/{id}/archive?path= -> (tar stream response, path stat)."""
        response = self.http.request("GET", f"/containers/{_q(cid)}/archive", params={"path": path})
        return response, _path_stat(response)

    def container_put_archive(
        self,
        cid: str,
        path: str,
        data: BinaryIO,
        *,
        no_overwrite_dir_non_dir: bool = False,
        copy_uid_gid: bool = False,
    ) -> None:
        """PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID= (tar body)."""
        params = {
            "path": path,
            "noOverwriteDirNonDir": no_overwrite_dir_non_dir or None,
            "copyUIDGID": copy_uid_gid or None,
        }
        self.http.request(
            "PUT",
            f"/containers/{_q(cid)}/archive",
            params=params,
            data=data,
            headers={"Content-Type": "application/x-tar"},
        ).read()


def _path_stat(response: Response) -> JSON:
    import base64

    raw = response.headers.get("x-docker-container-path-stat")
    if not raw:
        return {}
    return wirejson.loads(base64.b64decode(raw))


def _exec_start_body(detach: bool, tty: bool, console_size: tuple[int, int] | None) -> JSON:
    body: JSON = {"Detach": detach, "Tty": tty}
    if console_size is not None:
        body["ConsoleSize"] = list(console_size)
    return body


class PendingWait:
    """A sent wait request whose answer is read only when asked for."""

    def __init__(self, sock: socket.socket, reader: Any) -> None:
        self.sock = sock
        self.reader = reader

    def fileno(self) -> int:
        """For ``select()``: readable once the answer (or EOF) has arrived."""
        return self.sock.fileno()

    def result(self) -> JSON:
        """{"StatusCode": n}; a daemon-side wait error raises ApiError."""
        response = check(Response(self.sock, self.reader, "POST"))
        result = response.json() or {}
        error = (result.get("Error") or {}).get("Message")
        if error:
            raise ApiError(500, error)
        return result

    def close(self) -> None:
        self.sock.close()


def stream_messages(messages: Iterator[JSON]) -> Iterator[JSON]:
    """Pass JSON messages through, raising on the first one carrying an error."""
    for message in messages:
        error = message.get("error") or (message.get("errorDetail") or {}).get("message")
        if error:
            raise ApiError(500, error)
        yield message
