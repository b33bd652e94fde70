"""A fake Kubernetes API server on loopback, for tests that use the real client."""

from .resources import BY_KIND, RESOURCES, Resource
from .server import FakeKube, Reply, Request, status_body

__all__ = ["BY_KIND", "RESOURCES", "FakeKube", "Reply", "Request", "Resource", "status_body"]
