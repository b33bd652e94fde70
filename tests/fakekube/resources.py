"""The API resources the fake serves: kind, group, version, plural, scope."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One API resource, as ``kubectl api-resources`` lists it."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def qualified(self) -> str:
        """``deployments.apps``, or ``pods`` for the core group, as error messages spell it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def collection_path(self, namespace: str | None = None) -> str:
        if self.namespaced and namespace is not None:
            return f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        return f"{self.prefix}/{self.plural}"


RESOURCES: tuple[Resource, ...] = (
    Resource("Namespace", "", "v1", "namespaces", False),
    Resource("Node", "", "v1", "nodes", False),
    Resource("Pod", "", "v1", "pods", True),
    Resource("Service", "", "v1", "services", True),
    Resource("ConfigMap", "", "v1", "configmaps", True),
    Resource("Secret", "", "v1", "secrets", True),
    Resource("ServiceAccount", "", "v1", "serviceaccounts", True),
    Resource("Deployment", "apps", "v1", "deployments", True),
    Resource("ReplicaSet", "apps", "v1", "replicasets", True),
    Resource("StatefulSet", "apps", "v1", "statefulsets", True),
    Resource("DaemonSet", "apps", "v1", "daemonsets", True),
    Resource("ControllerRevision", "apps", "v1", "controllerrevisions", True),
    Resource("Job", "batch", "v1", "jobs", True),
    Resource("CronJob", "batch", "v1", "cronjobs", True),
    Resource("Ingress", "networking.k8s.io", "v1", "ingresses", True),
    Resource("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", True),
    Resource("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", True),
    Resource("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", True),
    Resource("PrometheusRule", "monitoring.coreos.com", "v1", "prometheusrules", True),
)

BY_KIND = {r.kind: r for r in RESOURCES}
BY_PATH = {(r.prefix, r.plural): r for r in RESOURCES}
