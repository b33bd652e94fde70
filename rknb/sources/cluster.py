"""An object source over a live cluster, through the official ``kubernetes`` client.

The client supplies what is hard to get right (kubeconfig contexts, exec and
OIDC credential plugins, TLS, in-cluster service-account tokens); this module
sends the few read calls rknb needs through its :class:`~kubernetes.client.ApiClient`
and decodes the JSON itself, so objects come back exactly as the API server
wrote them (camelCase keys, the same shape as manifests on disk) instead of
as generated model classes. Lists page with ``limit``/``continue``; watches
resume after a 410 by listing again, as client-go's reflector does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rknb.errors import ClusterError, ParameterError, RknbError
from rknb.sources.base import KubeObject
from rknb.sources.objects import check_kind, is_cluster_scoped, strip_secret

__all__ = [
    "API_RESOURCES",
    "JSON_PATCH",
    "MERGE_PATCH",
    "PATCH_TYPES",
    "STRATEGIC_MERGE_PATCH",
    "ApiResource",
    "ClusterSource",
    "WatchEvent",
    "check_credential_plugin",
]

logger = logging.getLogger(__name__)

WatchEvent = dict[str, Any]
_Objects = list[KubeObject]
_Query = list[tuple[str, Any]]


@dataclass(frozen=True)
class ApiResource:
    """Where the API server serves a kind: group, version, plural, scope."""

    kind: str
    group: str
    version: str
    plural: str

    @property
    def namespaced(self) -> bool:
        """Whether objects of this kind live in a namespace."""
        return not is_cluster_scoped(self.kind)

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` field of the kind's objects."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The resource as RBAC rules and error messages spell it (``deployments.apps``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """Return the API path of the collection, or of one object when ``name`` is given."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            prefix += f"/namespaces/{namespace}"
        path = f"{prefix}/{self.plural}"
        return f"{path}/{name}" if name is not None else path


#: The API group, version and plural of every kind in ``base.SUPPORTED_KINDS``.
API_RESOURCES: dict[str, ApiResource] = {
    r.kind: r
    for r in [
        ApiResource("Namespace", "", "v1", "namespaces"),
        ApiResource("Node", "", "v1", "nodes"),
        ApiResource("Pod", "", "v1", "pods"),
        ApiResource("Service", "", "v1", "services"),
        ApiResource("ConfigMap", "", "v1", "configmaps"),
        ApiResource("Secret", "", "v1", "secrets"),
        ApiResource("ServiceAccount", "", "v1", "serviceaccounts"),
        ApiResource("Deployment", "apps", "v1", "deployments"),
        ApiResource("ReplicaSet", "apps", "v1", "replicasets"),
        ApiResource("StatefulSet", "apps", "v1", "statefulsets"),
        ApiResource("DaemonSet", "apps", "v1", "daemonsets"),
        ApiResource("Job", "batch", "v1", "jobs"),
        ApiResource("CronJob", "batch", "v1", "cronjobs"),
        ApiResource("Ingress", "networking.k8s.io", "v1", "ingresses"),
        ApiResource("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies"),
        ApiResource("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers"),
        ApiResource("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets"),
        ApiResource("PrometheusRule", "monitoring.coreos.com", "v1", "prometheusrules"),
    ]
}

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

_MAX_LIST_RESTARTS = 2
_MAX_RELISTS = 5


def _resource(kind: str) -> ApiResource:
    return API_RESOURCES[check_kind(kind)]


def _key(obj: KubeObject) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


class ClusterSource:
    """Lists, gets and watches objects of a live cluster (read-only).

    Parameters
    ----------
    context
        A kubeconfig context name, ``"in-cluster"`` for the pod's service
        account, or ``None`` for the kubeconfig's current context.
    kubeconfig
        The kubeconfig file; ``$KUBECONFIG`` or ``~/.kube/config`` when omitted.
    namespace
        The namespace used when a call names none; ``None`` lists all
        namespaces (which needs cluster-wide list permission).
    page_size
        Objects per list call (the ``limit`` parameter); the client follows
        ``continue`` tokens until the list is complete.
    request_timeout_s
        Seconds to wait for one API call.
    """

    def __init__(
        self,
        context: str | None = None,
        *,
        kubeconfig: str | None = None,
        namespace: str | None = None,
        page_size: int = 500,
        request_timeout_s: float = 30.0,
    ) -> None:
        if page_size < 1:
            raise ParameterError(
                "page_size", f"must be a positive number of objects, got {page_size}"
            )
        from kubernetes import client, config  # heavy; imported when a cluster is used

        self.namespace = namespace
        self.page_size = page_size
        self.request_timeout_s = request_timeout_s
        self.reference_time: datetime | None = None
        self.context = context
        where = kubeconfig or "the default kubeconfig"
        try:
            if context == "in-cluster":
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                self._api = client.ApiClient(configuration=configuration)
                name = "in-cluster"
            else:
                check_credential_plugin(kubeconfig, context)
                self._api = config.new_client_from_config(
                    config_file=kubeconfig, context=context, persist_config=False
                )
                name = context or self._current_context(kubeconfig)
        except config.ConfigException as exc:
            what = f"context {context!r}" if context else "the current context"
            raise ClusterError(
                f"cannot load {what} from {where} ({exc}); check the context name with "
                "'kubectl config get-contexts' or pass kubeconfig="
            ) from exc
        host = self._api.configuration.host
        self.description = f"cluster {name} ({host})"

    @staticmethod
    def _current_context(kubeconfig: str | None) -> str:
        from kubernetes import config

        try:
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        except config.ConfigException:
            return "current-context"
        return str(active.get("name", "current-context"))

    def close(self) -> None:
        """Release the client's connection pool."""
        self._api.close()

    def __repr__(self) -> str:
        return f"ClusterSource({self.description!r})"

    # -- public API ----------------------------------------------------------------------

    def list(self, kind: str, namespace: str | None = None) -> _Objects:
        """Return every object of a kind in a namespace (or all), following ``continue`` tokens."""
        items, _ = self._list_all(_resource(kind), namespace)
        return items

    def list_at(self, kind: str, namespace: str | None = None) -> tuple[_Objects, str]:
        """Return every object of a kind and the list's resourceVersion, to watch from."""
        return self._list_all(_resource(kind), namespace)

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject:
        """Return one object; a missing object is a ClusterError with status 404."""
        resource = _resource(kind)
        namespace = self._namespace(resource, namespace)
        path = resource.path(namespace, name)
        body = self._json("get", resource, namespace, path, [], name=name)
        return self._clean(resource, body)

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: str = JSON_PATCH,
        dry_run: bool = False,
    ) -> KubeObject:
        """Return the object after applying a patch (server-side dry run when ``dry_run``).

        The one write rknb makes, used by the rollback drill. A 409 means the
        object changed since the patch's resourceVersion precondition was read.

        Parameters
        ----------
        kind
            The kind of the object, one of ``base.SUPPORTED_KINDS``.
        namespace
            Its namespace, or ``None`` for the source's default.
        name
            Its name.
        patch
            The patch document (a list of operations for a JSON Patch).
        patch_type
            The Content-Type: JSON Patch, merge patch or strategic merge patch.
        dry_run
            Send ``dryRun=All``: the server validates and answers without storing.
        """
        if patch_type not in PATCH_TYPES:
            known = ", ".join(PATCH_TYPES)
            raise ParameterError("patch_type", f"{patch_type!r} is not a patch type; use {known}")
        resource = _resource(kind)
        namespace = self._namespace(resource, namespace)
        query: _Query = [("dryRun", "All")] if dry_run else []
        path = resource.path(namespace, name)
        body = self._json(
            "patch",
            resource,
            namespace,
            path,
            query,
            name=name,
            method="PATCH",
            payload=patch,
            content_type=patch_type,
        )
        return self._clean(resource, body)

    def watch(
        self,
        kind: str,
        namespace: str | None = None,
        timeout_s: float = 60.0,
        *,
        resource_version: str | None = None,
        resume: bool = True,
    ) -> Iterator[WatchEvent]:
        """Yield watch events (``{"type", "object"}``) for ``timeout_s`` seconds.

        Events start after ``resource_version`` (after a fresh list when it is
        omitted). When the server answers 410 (the version was compacted away),
        the objects are listed again and the differences since the last event
        are yielded as ``ADDED``, ``MODIFIED`` and ``DELETED`` events, so the
        stream stays consistent. When the server ends a watch early, it is
        resumed from the last event, or, with ``resume=False``, the iteration
        ends there (the caller then lists afresh).

        Parameters
        ----------
        kind
            The kind to watch, one of ``base.SUPPORTED_KINDS``.
        namespace
            The namespace to watch, or ``None`` for the source's default.
        timeout_s
            How long to watch in total, in seconds.
        resource_version
            Where to start; a fresh list is made when omitted.
        resume
            Watch again from the last event when the server ends the watch early.
        """
        resource = _resource(kind)
        namespace = self._namespace(resource, namespace)
        deadline = time.monotonic() + timeout_s

        known: dict[tuple[str, str], str] = {}
        if resource_version is None:
            items, resource_version = self._list_all(resource, namespace)
            known = {_key(o): str(o["metadata"].get("resourceVersion", "")) for o in items}

        relists = 0
        while (remaining := deadline - time.monotonic()) > 0:
            expired = False
            for event in self._watch_once(resource, namespace, resource_version, remaining):
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    if status.get("code") == 410:
                        expired = True
                        break
                    raise self._error(
                        "watch", resource, namespace, None, int(status.get("code") or 500), status
                    )
                obj = self._clean(resource, event.get("object") or {})
                resource_version = str(obj["metadata"].get("resourceVersion", resource_version))
                if event.get("type") == "DELETED":
                    known.pop(_key(obj), None)
                else:
                    known[_key(obj)] = resource_version
                if event.get("type") != "BOOKMARK":
                    yield {"type": event["type"], "object": obj}
            if not expired:
                if not resume:
                    return
                continue

            relists += 1
            if relists > _MAX_RELISTS:
                raise ClusterError(
                    f"the watch of {resource.qualified} expired {relists} times in a row; "
                    "the API server may be compacting too fast, try again later",
                    status=410,
                    reason="Expired",
                )
            logger.warning("watch of %s expired (410); listing again to resume", resource.qualified)
            items, resource_version = self._list_all(resource, namespace)
            fresh = {_key(o): o for o in items}
            for key, obj in fresh.items():
                rv = str(obj["metadata"].get("resourceVersion", ""))
                if key not in known:
                    yield {"type": "ADDED", "object": obj}
                elif known[key] != rv:
                    yield {"type": "MODIFIED", "object": obj}
            for key in [k for k in known if k not in fresh]:
                gone_meta = {"namespace": key[0], "name": key[1]} if key[0] else {"name": key[1]}
                gone: dict[str, Any] = {"apiVersion": resource.api_version, "kind": resource.kind}
                gone["metadata"] = gone_meta
                yield {"type": "DELETED", "object": gone}
            known = {k: str(o["metadata"].get("resourceVersion", "")) for k, o in fresh.items()}

    # -- calls ---------------------------------------------------------------------------

    def _namespace(self, resource: ApiResource, namespace: str | None) -> str | None:
        if not resource.namespaced:
            return None
        return namespace if namespace is not None else self.namespace

    def _list_all(self, resource: ApiResource, namespace: str | None) -> tuple[_Objects, str]:
        namespace = self._namespace(resource, namespace)
        path = resource.path(namespace)
        restarts = 0
        while True:
            items: _Objects = []
            token: str | None = None
            try:
                while True:
                    query: _Query = [("limit", self.page_size)]
                    if token:
                        query.append(("continue", token))
                    body = self._json("list", resource, namespace, path, query)
                    items.extend(self._clean(resource, item) for item in body.get("items") or [])
                    metadata = body.get("metadata") or {}
                    token = metadata.get("continue") or None
                    if not token:
                        return items, str(metadata.get("resourceVersion", ""))
            except ClusterError as exc:
                # A continue token outlived etcd's compaction: the list must start over.
                if exc.status != 410 or restarts >= _MAX_LIST_RESTARTS:
                    raise
                restarts += 1
                logger.warning(
                    "list of %s expired between pages (410); starting over", resource.qualified
                )

    def _call(
        self,
        path: str,
        query: _Query,
        timeout: float | tuple[float, float],
        *,
        method: str = "GET",
        payload: Any = None,
        content_type: str | None = None,
    ) -> Any:
        header_params = {"Accept": "application/json"}
        if content_type:
            header_params["Content-Type"] = content_type
        method, url, headers, body, post = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query,
            header_params=header_params,
            body=payload,
            auth_settings=["BearerToken"],
        )
        return self._api.call_api(method, url, headers, body, post, _request_timeout=timeout)

    def _send(
        self,
        verb: str,
        resource: ApiResource,
        namespace: str | None,
        path: str,
        query: _Query,
        *,
        name: str | None = None,
        timeout: float | tuple[float, float] | None = None,
        method: str = "GET",
        payload: Any = None,
        content_type: str | None = None,
    ) -> Any:
        import urllib3

        shown = " ".join(f"{k}={'…' if k == 'continue' else v}" for k, v in query)
        try:
            response = self._call(
                path,
                query,
                timeout or self.request_timeout_s,
                method=method,
                payload=payload,
                content_type=content_type,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(
                f"cannot reach the API server of {self.description} for {verb} "
                f"{resource.qualified} ({type(exc).__name__}); check the network and the context"
            ) from exc
        logger.info("%s %s %s -> %s", verb, path, shown, response.status)
        if not 200 <= response.status <= 299:
            data = response.read()
            try:
                status = json.loads(data)
            except ValueError:
                status = {"message": data[:200].decode("utf-8", "replace")}
            status = status if isinstance(status, dict) else {}
            raise self._error(verb, resource, namespace, name, response.status, status)
        return response

    def _json(
        self,
        verb: str,
        resource: ApiResource,
        namespace: str | None,
        path: str,
        query: _Query,
        *,
        name: str | None = None,
        method: str = "GET",
        payload: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        response = self._send(
            verb,
            resource,
            namespace,
            path,
            query,
            name=name,
            method=method,
            payload=payload,
            content_type=content_type,
        )
        try:
            body = json.loads(response.read())
        except ValueError as exc:
            raise ClusterError(
                f"the API server answered {verb} {resource.qualified} with a body that is not "
                "JSON; check that the context points at a Kubernetes API server"
            ) from exc
        if not isinstance(body, dict):
            raise ClusterError(f"the API server answered {verb} {resource.qualified} oddly")
        return body

    def _watch_once(
        self, resource: ApiResource, namespace: str | None, since: str, remaining_s: float
    ) -> Iterator[dict[str, Any]]:
        path = resource.path(namespace)
        timeout_s = max(1, math.ceil(remaining_s))
        query: _Query = [
            ("watch", "true"),
            ("resourceVersion", since),
            ("timeoutSeconds", timeout_s),
            ("allowWatchBookmarks", "true"),
        ]
        response = self._send(
            "watch",
            resource,
            namespace,
            path,
            query,
            timeout=(self.request_timeout_s, timeout_s + 5),
        )
        raw = response.response  # the urllib3 response, not yet read
        buffer = b""
        try:
            for chunk in raw.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip():
                yield json.loads(buffer)
        finally:
            raw.release_conn()

    def _clean(self, resource: ApiResource, obj: dict[str, Any]) -> KubeObject:
        # Items of a list carry no kind/apiVersion; put them back so objects look like manifests.
        cleaned = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        return strip_secret(cleaned)

    def _error(
        self,
        verb: str,
        resource: ApiResource,
        namespace: str | None,
        name: str | None,
        code: int,
        status: dict[str, Any],
    ) -> ClusterError:
        reason = str(status.get("reason") or "")
        message = str(status.get("message") or "").rstrip(".")
        where = f"in namespace {namespace!r}" if namespace else "across all namespaces"
        group = resource.group or "core"
        if code == 403:
            text = (
                f"permission missing: {verb} on {resource.qualified} {where} "
                f"(API group {group!r}) was refused ({message}); grant the verb "
                f"'{verb}' on resource '{resource.plural}' to this identity, or pick a "
                "namespace it may read"
            )
        elif code == 401:
            text = (
                f"the API server of {self.description} rejected the credentials "
                f"({reason or 'Unauthorized'}); refresh the kubeconfig's token or log in again"
            )
        elif code == 404 and name is not None:
            text = f"{resource.kind} {name!r} {where} not found ({message}); check the name"
        elif code == 409:
            text = (
                f"conflict: {resource.kind} {name!r} {where} was changed by someone else "
                f"while rknb was working on it ({message}); read it again and decide whether "
                "to go on"
            )
        elif code == 404:
            text = (
                f"the API server does not serve {resource.qualified} "
                f"({resource.api_version}); is the API (or its CRD) installed?"
            )
        else:
            text = (
                f"{verb} {resource.qualified} {where} failed with HTTP {code} {reason}: {message}"
            )
        return ClusterError(text, status=code, reason=reason)


def _kubeconfig_paths(kubeconfig: str | None) -> list[str]:
    if kubeconfig:
        return [kubeconfig]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [os.path.expanduser("~/.kube/config")]


def check_credential_plugin(kubeconfig: str | None, context: str | None) -> None:
    """Refuse a context whose user runs a credential plugin that is not installed.

    The ``kubernetes`` client logs a failed exec plugin and then sends its
    calls without credentials, so a missing plugin would show up later as
    confusing 401 or 403 answers (or, on a permissive cluster, as anonymous
    access). This reads the kubeconfig before any call and raises
    :class:`ClusterError` naming the plugin command instead. Unreadable
    files are left to the client, which reports them itself.
    """
    from rknb.yamlfile import load_yaml_file

    configs: list[dict[str, Any]] = []
    for path in _kubeconfig_paths(kubeconfig):
        try:
            configs.extend(d for d in load_yaml_file(path) if isinstance(d, dict))
        except (OSError, RknbError):
            continue
    if not configs:
        return
    current = context or next(
        (c.get("current-context") for c in configs if c.get("current-context")), None
    )
    contexts = {
        c.get("name"): c.get("context") or {} for cfg in configs for c in cfg.get("contexts") or []
    }
    users = {u.get("name"): u.get("user") or {} for cfg in configs for u in cfg.get("users") or []}
    user = users.get((contexts.get(current) or {}).get("user"))
    plugin = (user or {}).get("exec") or {}
    command = plugin.get("command")
    if command and shutil.which(str(command)) is None:
        raise ClusterError(
            f"the kubeconfig user of context {current!r} gets its credentials from the plugin "
            f"{command!r}, which is not installed or not on PATH; install it (or fix the "
            "kubeconfig) first, otherwise the calls would go out without credentials"
        )
