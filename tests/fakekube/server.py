"""An HTTP-level fake of the Kubernetes API server, for the real ``kubernetes`` client.

It is deliberately strict: an unknown path is a 404 ``Status``, a verb the fake
does not implement is a 405, a missing or wrong bearer token is a 401, and a
resource put under the RBAC switch answers 403 exactly as an API server would.
Objects live in memory with resource versions; lists page with ``limit`` and
``continue``; watches stream JSON lines and end after ``timeoutSeconds`` or with
an ``ERROR`` event carrying a 410 ``Status``. Tests can end or expire the
watches open right now (:meth:`FakeKube.end_open_watches`,
:meth:`FakeKube.expire_open_watches`), as an API server restart or an etcd
compaction would in the middle of a drill.

Verbs are handlers registered by name in :attr:`FakeKube.handlers` (``list``,
``get``, ``watch``, ...); adding ``patch`` or ``create`` later means writing one
method and registering it, and :attr:`Request.dry_run` is already parsed.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rknb.yamlfile import dump_yaml

from .patching import PATCH_TYPES, PatchError, apply_patch
from .resources import BY_KIND, BY_PATH, RESOURCES, Resource

__all__ = ["FakeKube", "RecordedRequest", "Reply", "Request", "status_body"]

# HTTP method and path shape -> Kubernetes verb (watch is a list with watch=true).
_VERBS = {
    ("GET", "collection"): "list",
    ("GET", "item"): "get",
    ("POST", "collection"): "create",
    ("PUT", "item"): "update",
    ("PATCH", "item"): "patch",
    ("DELETE", "item"): "delete",
    ("DELETE", "collection"): "deletecollection",
}

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
}


def status_body(code: int, message: str, *, reason: str | None = None, **details: Any) -> dict:
    """Return a ``Status`` object as the API server sends it with an error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


@dataclass
class Request:
    """One parsed API request, as handlers see it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    resource: Resource
    namespace: str | None
    name: str | None
    verb: str

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    """A handler's answer: a JSON body, or a stream of JSON lines."""

    code: int = 200
    body: Any = None
    stream: Iterator[dict] | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """What the fake was asked, for assertions (no headers: they hold the token)."""

    method: str
    path: str
    query: dict[str, str]
    verb: str | None
    code: int


@dataclass
class _Event:
    rv: int
    type: str
    resource: Resource
    obj: dict


@dataclass
class _Forbidden:
    resource: Resource
    verbs: frozenset[str]
    namespace: str | None


Handler = Callable[[Request], Reply]


@dataclass
class FakeKube:
    """The fake API server: an object store, an RBAC switch and an HTTP front end.

    ``token`` is the bearer token the fake accepts; ``default_watch_timeout_s``
    bounds watches that name no ``timeoutSeconds`` so a test cannot hang.
    """

    token: str = "fake-token-not-a-secret"
    user: str = "system:serviceaccount:rknb:reader"
    default_watch_timeout_s: float = 5.0
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._objects: dict[Resource, dict[tuple[str, str], dict]] = {r: {} for r in RESOURCES}
        self._rv = 100
        self._compacted_rv = 0
        self._history: list[_Event] = []
        self._forbidden: list[_Forbidden] = []
        self._expire_watches: dict[Resource, int] = {}
        # Per resource: how many times open watches were interrupted, and how the last one was.
        self._interrupts: dict[Resource, tuple[int, str]] = {}
        self._open_watches: dict[Resource, int] = {}
        self._closing = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.handlers: dict[str, Handler] = {
            "list": self._handle_list,
            "get": self._handle_get,
            "watch": self._handle_watch,
            "patch": self._handle_patch,
        }
        self._hooks: dict[str, list[Callable[[Request], None]]] = {}
        #: Called with each stored object after a PATCH changed it (the controller listens).
        self.on_change: list[Callable[[dict], None]] = []

    # -- the store ---------------------------------------------------------------------

    def add(self, *objects: dict) -> list[dict]:
        """Store new objects (or replace existing ones) and return the stored copies."""
        return [self._write(obj) for obj in objects]

    def update(self, obj: dict) -> dict:
        """Replace a stored object, bumping its resourceVersion (a MODIFIED event)."""
        return self._write(obj)

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        """Remove an object (a DELETED event)."""
        resource = BY_KIND[kind]
        with self._lock:
            obj = self._objects[resource].pop((namespace or "", name))
            self._rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self._history.append(_Event(self._rv, "DELETED", resource, obj))
            self._lock.notify_all()

    def objects(self, kind: str) -> list[dict]:
        """Return copies of the stored objects of a kind, in list order."""
        resource = BY_KIND[kind]
        with self._lock:
            return [
                copy.deepcopy(self._objects[resource][k]) for k in sorted(self._objects[resource])
            ]

    @property
    def resource_version(self) -> int:
        """The store's current resourceVersion."""
        return self._rv

    def _write(self, obj: dict) -> dict:
        resource = BY_KIND[obj["kind"]]
        stored = copy.deepcopy(obj)
        stored.setdefault("apiVersion", resource.api_version)
        metadata = stored.setdefault("metadata", {})
        if resource.namespaced:
            metadata.setdefault("namespace", "default")
        else:
            metadata.pop("namespace", None)
        key = (metadata.get("namespace", ""), metadata["name"])
        with self._lock:
            previous = self._objects[resource].get(key)
            self._rv += 1
            metadata["resourceVersion"] = str(self._rv)
            if previous is None:
                if resource.kind == "Deployment":
                    metadata.setdefault("generation", 1)
                metadata.setdefault("uid", str(uuid.UUID(int=self._rv)))
                metadata.setdefault("creationTimestamp", "2026-11-30T12:00:00Z")
            else:
                metadata["uid"] = previous["metadata"]["uid"]
                metadata["creationTimestamp"] = previous["metadata"]["creationTimestamp"]
            self._objects[resource][key] = stored
            kind = "ADDED" if previous is None else "MODIFIED"
            self._history.append(_Event(self._rv, kind, resource, copy.deepcopy(stored)))
            self._lock.notify_all()
        return copy.deepcopy(stored)

    # -- switches for tests ------------------------------------------------------------

    def forbid(
        self,
        kind: str,
        *,
        verbs: tuple[str, ...] = ("get", "list", "watch"),
        namespace: str | None = None,
    ) -> None:
        """Answer 403 Forbidden for these verbs on a kind (in one namespace, or everywhere)."""
        self._forbidden.append(_Forbidden(BY_KIND[kind], frozenset(verbs), namespace))

    def allow_all(self) -> None:
        """Lift every :meth:`forbid`."""
        self._forbidden.clear()

    def compact(self) -> None:
        """Expire every resourceVersion seen so far, as etcd compaction does.

        Continue tokens and watch resourceVersions issued before this call then
        answer 410.
        """
        with self._lock:
            self._rv += 1
            self._compacted_rv = self._rv

    def expire_next_watches(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` watches of a kind end at once with an ERROR 410 event."""
        resource = BY_KIND[kind]
        with self._lock:
            self._expire_watches[resource] = self._expire_watches.get(resource, 0) + count

    def end_open_watches(self, kind: str) -> None:
        """End every watch of a kind that is open now, cleanly (as a server-side timeout does)."""
        self._interrupt(kind, "end")

    def expire_open_watches(self, kind: str) -> None:
        """Send every open watch of a kind an ERROR 410 event and end it (a compaction)."""
        self._interrupt(kind, "expire")

    def _interrupt(self, kind: str, how: str) -> None:
        resource = BY_KIND[kind]
        with self._lock:
            count = self._interrupts.get(resource, (0, ""))[0]
            self._interrupts[resource] = (count + 1, how)
            self._lock.notify_all()

    def open_watches(self, kind: str) -> int:
        """Return how many watches of a kind are streaming now."""
        with self._lock:
            return self._open_watches.get(BY_KIND[kind], 0)

    def before_next(self, verb: str, action: Callable[[Request], None]) -> None:
        """Run ``action`` once, just before the next request with this verb is answered.

        Tests use it to change an object between a client's read and its write,
        as another user would.
        """
        with self._lock:
            self._hooks.setdefault(verb, []).append(action)

    # -- serving -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The fake's base URL (``http://127.0.0.1:PORT``)."""
        if self._server is None:
            raise RuntimeError("the fake API server is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeKube:
        """Listen on a free loopback port in a background thread."""
        fake = self

        class _Handler(_HTTPHandler):
            server_fake = fake

        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-kube", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end open watches."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def write_kubeconfig(
        self, path: str | Path, *, context: str = "fake", namespace: str | None = None
    ) -> Path:
        """Write a kubeconfig whose context ``context`` points at this fake."""
        ctx: dict[str, Any] = {"cluster": "fake-cluster", "user": "fake-user"}
        if namespace:
            ctx["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake-cluster", "cluster": {"server": self.url}}],
            "users": [{"name": "fake-user", "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }
        target = Path(path)
        target.write_text(dump_yaml(config), encoding="utf-8")
        return target

    # -- request dispatch --------------------------------------------------------------

    def dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        """Answer one HTTP request; returns the reply and the Kubernetes verb."""
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}

        if headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, status_body(401, "Unauthorized")), None

        route = _route(split.path)
        if route is None:
            body_404 = status_body(404, "the server could not find the requested resource")
            return Reply(404, body_404), None
        resource, namespace, name = route
        scope = "item" if name is not None else "collection"
        verb = _VERBS.get((method, scope))
        if verb == "list" and query.get("watch") in ("true", "1"):
            verb = "watch"
        handler = self.handlers.get(verb or "")
        if verb is None or handler is None:
            message = f"the server does not allow this method on the requested resource ({method})"
            return Reply(405, status_body(405, message)), verb

        forbidden = self._forbidden_message(resource, verb, namespace)
        if forbidden is not None:
            details = {"group": resource.group, "kind": resource.plural}
            if name is not None:
                details["name"] = name
            return Reply(403, status_body(403, forbidden, **details)), verb

        request = Request(method, split.path, query, headers, body, resource, namespace, name, verb)
        with self._lock:
            hooks = self._hooks.pop(verb, [])
        for hook in hooks:
            hook(request)
        return handler(request), verb

    def _forbidden_message(
        self, resource: Resource, verb: str, namespace: str | None
    ) -> str | None:
        for rule in self._forbidden:
            if rule.resource != resource or verb not in rule.verbs:
                continue
            if rule.namespace is not None and rule.namespace != namespace:
                continue
            where = (
                f'in the namespace "{namespace}"'
                if namespace is not None
                else "at the cluster scope"
            )
            group = f'"{resource.group}"' if resource.group else '""'
            return (
                f'{resource.qualified} is forbidden: User "{self.user}" cannot {verb} resource '
                f'"{resource.plural}" in API group {group} {where}'
            )
        return None

    # -- verbs ---------------------------------------------------------------------------

    def _handle_get(self, request: Request) -> Reply:
        key = (request.namespace or "", request.name or "")
        with self._lock:
            obj = self._objects[request.resource].get(key)
        if obj is None:
            message = f'{request.resource.qualified} "{request.name}" not found'
            details = {
                "name": request.name,
                "group": request.resource.group,
                "kind": request.resource.plural,
            }
            return Reply(404, status_body(404, message, **details))
        return Reply(200, copy.deepcopy(obj))

    def _handle_patch(self, request: Request) -> Reply:
        resource, name = request.resource, request.name or ""
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            accepted = ", ".join(PATCH_TYPES)
            message = f"the body of the request was in an unknown format; accepted: {accepted}"
            return Reply(415, status_body(415, message))
        dry_run = request.query.get("dryRun")
        if dry_run not in (None, "All"):
            return Reply(400, status_body(400, f"Invalid dry run value: {dry_run!r}"))
        key = (request.namespace or "", name)
        details = {"name": name, "group": resource.group, "kind": resource.plural}
        with self._lock:
            stored = self._objects[resource].get(key)
            if stored is None:
                message = f'{resource.qualified} "{name}" not found'
                return Reply(404, status_body(404, message, **details))
            try:
                patched = apply_patch(stored, request.json(), content_type)
            except (PatchError, ValueError, KeyError, IndexError, TypeError) as exc:
                return Reply(
                    422, status_body(422, f"the patch could not be applied: {exc}", **details)
                )
            if not isinstance(patched, dict):
                return Reply(
                    422, status_body(422, "the patch did not produce an object", **details)
                )
            meta = patched.setdefault("metadata", {})
            current_rv = stored["metadata"]["resourceVersion"]
            if meta.get("resourceVersion", current_rv) != current_rv:
                message = (
                    f'Operation cannot be fulfilled on {resource.qualified} "{name}": the '
                    "object has been modified; please apply your changes to the latest version "
                    "and try again"
                )
                return Reply(409, status_body(409, message, **details))
            if meta.get("name") != name or meta.get("uid") != stored["metadata"].get("uid"):
                return Reply(
                    422, status_body(422, "metadata.name and metadata.uid are immutable", **details)
                )
            if patched.get("spec") != stored.get("spec"):
                meta["generation"] = int(stored["metadata"].get("generation") or 1) + 1
            if dry_run == "All":
                result = copy.deepcopy(patched)
                return Reply(200, result)
            if patched == stored:
                return Reply(200, copy.deepcopy(stored))
            result = self._write(patched)
        for listener in list(self.on_change):
            listener(result)
        return Reply(200, result)

    def _handle_list(self, request: Request) -> Reply:
        resource = request.resource
        try:
            limit = int(request.query.get("limit") or 0)
        except ValueError:
            return Reply(400, status_body(400, f"invalid limit {request.query['limit']!r}"))

        with self._lock:
            token = request.query.get("continue")
            if token:
                try:
                    decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                    list_rv, start = int(decoded["rv"]), tuple(decoded["start"])
                except (ValueError, KeyError, TypeError):
                    return Reply(400, status_body(400, "continue key is not valid"))
                if list_rv < self._compacted_rv:
                    message = (
                        "The provided continue parameter is too old to display a consistent "
                        "list result; start a new list without it."
                    )
                    return Reply(410, status_body(410, message))
            else:
                list_rv, start = self._rv, ("", "")

            keys = sorted(
                k
                for k in self._objects[resource]
                if (request.namespace is None or k[0] == request.namespace) and k >= start
            )
            page = keys[:limit] if limit > 0 else keys
            items = [copy.deepcopy(self._objects[resource][k]) for k in page]

        metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if limit > 0 and len(keys) > limit:
            next_key = keys[limit]
            raw = json.dumps({"rv": list_rv, "start": list(next_key)}).encode()
            metadata["continue"] = base64.urlsafe_b64encode(raw).decode()
            metadata["remainingItemCount"] = len(keys) - limit
        for item in items:
            # Items of a list carry neither kind nor apiVersion, as from a real server.
            item.pop("kind", None)
            item.pop("apiVersion", None)
        body = {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.api_version,
            "metadata": metadata,
            "items": items,
        }
        return Reply(200, body)

    def _handle_watch(self, request: Request) -> Reply:
        resource = request.resource
        try:
            timeout_s = float(request.query.get("timeoutSeconds") or self.default_watch_timeout_s)
            since = request.query.get("resourceVersion") or "0"
            since_rv = int(since)
        except ValueError:
            return Reply(400, status_body(400, "invalid resourceVersion or timeoutSeconds"))

        def events() -> Iterator[dict]:
            deadline = time.monotonic() + timeout_s
            with self._lock:
                expired_by_switch = self._expire_watches.get(resource, 0) > 0
                if expired_by_switch:
                    self._expire_watches[resource] -= 1
                if expired_by_switch or (since_rv and since_rv < self._compacted_rv):
                    message = f"too old resource version: {since_rv} ({self._compacted_rv})"
                    yield {"type": "ERROR", "object": status_body(410, message)}
                    return
                if since_rv == 0:
                    # No resourceVersion: the current objects first, as synthetic ADDED events.
                    for key in sorted(self._objects[resource]):
                        obj = self._objects[resource][key]
                        if request.namespace is None or key[0] == request.namespace:
                            yield {"type": "ADDED", "object": copy.deepcopy(obj)}
                    since_rv_now = self._rv
                else:
                    since_rv_now = since_rv

            sent = since_rv_now
            with self._lock:
                interrupts = self._interrupts.get(resource, (0, ""))[0]
                self._open_watches[resource] = self._open_watches.get(resource, 0) + 1
            try:
                yield from follow(sent, interrupts, deadline)
            finally:
                with self._lock:
                    self._open_watches[resource] -= 1

        def follow(sent: int, interrupts: int, deadline: float) -> Iterator[dict]:
            while True:
                with self._lock:
                    count, how = self._interrupts.get(resource, (0, ""))
                    interrupted = count != interrupts
                    pending = [
                        e
                        for e in self._history
                        if e.rv > sent
                        and e.resource == resource
                        and (
                            request.namespace is None
                            or e.obj["metadata"].get("namespace") == request.namespace
                        )
                    ]
                    if interrupted:
                        pending = []
                    elif not pending:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or self._closing:
                            return
                        self._lock.wait(timeout=min(remaining, 0.2))
                        continue
                if interrupted:
                    if how == "expire":
                        message = f"too old resource version: {sent} (compacted)"
                        yield {"type": "ERROR", "object": status_body(410, message)}
                    return
                for event in pending:
                    sent = event.rv
                    yield {"type": event.type, "object": copy.deepcopy(event.obj)}

        return Reply(200, stream=events())


def _route(path: str) -> tuple[Resource, str | None, str | None] | None:
    """Return (resource, namespace, name) for an API path, or None when it is not one."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        prefix, rest = f"/api/{parts[1]}", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        prefix, rest = f"/apis/{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None

    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 2:
        return None
    resource = BY_PATH.get((prefix, rest[0]))
    if resource is None:
        return None
    if namespace is not None and not resource.namespaced:
        return None
    name = rest[1] if len(rest) == 2 else None
    if name is not None and resource.namespaced and namespace is None:
        return None
    return resource, namespace, name


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-connection (a notebook kernel ending) is no error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeKube

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: pytest shows failures, not access logs

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake = self.server_fake
        reply, verb = fake.dispatch(self.command, self.path, headers, body)
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        fake.requests.append(RecordedRequest(self.command, split.path, query, verb, reply.code))

        if reply.stream is None:
            payload = json.dumps(reply.body).encode()
            self.send_response(reply.code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return

        # A watch: chunked JSON lines until the stream ends.
        self.send_response(reply.code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in reply.stream:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = _serve  # noqa: N815
    do_POST = _serve  # noqa: N815
    do_PUT = _serve  # noqa: N815
    do_PATCH = _serve  # noqa: N815
    do_DELETE = _serve  # noqa: N815
