"""The audit rules, one module per concern; importing this package registers them all."""

from rknb.audit.rules import alerts as alerts
from rknb.audit.rules import availability as availability
from rknb.audit.rules import containers as containers
from rknb.audit.rules import hardening as hardening
from rknb.audit.rules import network as network
from rknb.audit.rules import services as services
from rknb.audit.rules import workloads as workloads

__all__ = ["alerts", "availability", "containers", "hardening", "network", "services", "workloads"]
