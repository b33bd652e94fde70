"""The audit rules, one module per concern; importing this package registers them all."""

from rknb.audit.rules import alerts as alerts
from rknb.audit.rules import availability as availability
from rknb.audit.rules import containers as containers
from rknb.audit.rules import exposure as exposure
from rknb.audit.rules import hardening as hardening
from rknb.audit.rules import metadata as metadata
from rknb.audit.rules import network as network
from rknb.audit.rules import pods as pods
from rknb.audit.rules import scheduling as scheduling
from rknb.audit.rules import services as services
from rknb.audit.rules import workloads as workloads

__all__ = [
    "alerts",
    "availability",
    "containers",
    "exposure",
    "hardening",
    "metadata",
    "network",
    "pods",
    "scheduling",
    "services",
    "workloads",
]
