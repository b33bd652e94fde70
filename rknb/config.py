"""Site configuration in one place: Prometheus endpoints, tenants, credentials, catalog overrides.

A site whose metrics are named differently, whose Prometheus needs a tenant
header, or which runs one Prometheus per cluster says so once, in a YAML file,
instead of in every notebook's parameters. The file holds *references* to
credentials (a file path, an environment variable's name), never the values:
a literal ``bearer_token`` or ``password`` is refused, since reports copy
settings verbatim.

Precedence, highest first: explicit arguments (notebook parameters), then
environment variables, then the file, then the defaults. The file is the one
``RKNB_CONFIG`` names, else ``$XDG_CONFIG_HOME/rknb/config.yaml`` (by default
``~/.config/rknb/config.yaml``) when it exists. Its shape::

    catalog: /etc/rknb/catalog.yaml        # catalog overrides (see rknb.catalog)
    prometheus:                            # named endpoints
      prod-eu:
        url: https://prometheus.eu.example
        headers: {X-Scope-OrgID: team-a}
        bearer_token_file: /var/run/secrets/prom-token
        ca_file: /etc/ssl/internal-ca.pem
    clusters:                              # kubeconfig context -> endpoint name
      eu-prod-1: prod-eu

Environment variables: ``RKNB_PROMETHEUS_URL``, ``RKNB_PROMETHEUS_TOKEN_FILE``,
``RKNB_PROMETHEUS_TOKEN_ENV``, ``RKNB_PROMETHEUS_CA_FILE``,
``RKNB_PROMETHEUS_TIMEOUT_S``, ``RKNB_PROMETHEUS_HEADERS`` (``Name=value``
pairs separated by ``;``) and ``RKNB_CATALOG``; they apply to every endpoint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rknb.errors import ParameterError
from rknb.yamlfile import dump_yaml, load_yaml_file

__all__ = [
    "CONFIG_ENV",
    "ENDPOINT_FIELDS",
    "Config",
    "config_path",
    "load_config",
    "show_config",
]

CONFIG_ENV = "RKNB_CONFIG"

#: The settings an endpoint may hold, with the type each must have.
ENDPOINT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "url": str,
    "headers": dict,
    "bearer_token_file": str,
    "bearer_token_env": str,
    "basic_auth_user": str,
    "basic_auth_password_file": str,
    "basic_auth_password_env": str,
    "ca_file": str,
    "cert_file": str,
    "key_file": str,
    "insecure": bool,
    "timeout_s": (int, float),
    "max_retries": int,
    "max_series": int,
    "concurrency": int,
}

_ENV_FIELDS = {
    "RKNB_PROMETHEUS_URL": "url",
    "RKNB_PROMETHEUS_TOKEN_FILE": "bearer_token_file",
    "RKNB_PROMETHEUS_TOKEN_ENV": "bearer_token_env",
    "RKNB_PROMETHEUS_CA_FILE": "ca_file",
    "RKNB_PROMETHEUS_TIMEOUT_S": "timeout_s",
    "RKNB_PROMETHEUS_HEADERS": "headers",
}

# Keys that would hold a credential's value rather than a reference to it.
_LITERAL_SECRET = re.compile(r"^(bearer_token|token|password|basic_auth_password|secret)$")
# Header names whose values are credentials.
_SECRET_HEADER = re.compile(r"authorization|token|key|secret|cookie|password", re.IGNORECASE)
_REDACTED = "<redacted>"


@dataclass(frozen=True)
class Config:
    """The effective configuration: named endpoints, cluster mapping, catalog overrides."""

    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    clusters: dict[str, str] = field(default_factory=dict)
    catalog: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def endpoint(self, spec: str, *, cluster: str | None = None) -> dict[str, Any]:
        """Return the PrometheusSource settings for a ``prometheus`` value, ``url`` included.

        Parameters
        ----------
        spec
            An endpoint's name, a URL (an endpoint with that URL lends its
            settings), or ``config`` for the endpoint mapped to ``cluster``.
        cluster
            The kubeconfig context the run reads, for ``config``.
        """
        name: str | None
        if spec == "config":
            if cluster is None or cluster not in self.clusters:
                known = ", ".join(sorted(self.clusters)) or "none"
                raise ParameterError(
                    "prometheus",
                    f"'config' needs the cluster's endpoint, but {cluster!r} is not under "
                    f"'clusters:' in {self.source or 'the configuration'} (known: {known})",
                )
            name = self.clusters[cluster]
        elif spec in self.endpoints:
            name = spec
        else:
            name = next((n for n, e in self.endpoints.items() if e.get("url") == spec), None)

        settings: dict[str, Any] = {}
        if name is not None:
            if name not in self.endpoints:
                raise ParameterError(
                    "prometheus", f"cluster {cluster!r} maps to {name!r}, which is not an endpoint"
                )
            settings.update(self.endpoints[name])
        # Environment variables override the file, field by field; headers merge.
        for key, value in self.environment.items():
            if key == "headers":
                settings["headers"] = {**settings.get("headers", {}), **value}
            else:
                settings[key] = value
        if spec.startswith(("http://", "https://")):
            settings["url"] = spec
        if "url" not in settings:
            raise ParameterError(
                "prometheus",
                f"{spec!r} is neither a URL nor an endpoint named in the configuration",
            )
        return settings


def config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return the configuration file in effect, or None when there is none."""
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ParameterError(CONFIG_ENV, f"{named!r} is not a file; fix or unset {CONFIG_ENV}")
        return path
    base = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")) / ".config")
    default = base.expanduser() / "rknb" / "config.yaml"
    return default if default.is_file() else None


def _check_endpoint(name: str, settings: Any, where: str) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise ParameterError("prometheus", f"{where}: endpoint {name!r} must be a mapping")
    for key, value in settings.items():
        if _LITERAL_SECRET.match(str(key)):
            raise ParameterError(
                "prometheus",
                f"{where}: endpoint {name!r} holds {key!r} as a literal value; reference it with "
                f"{key}_file or {key}_env instead, so no report can copy it",
            )
        expected = ENDPOINT_FIELDS.get(str(key))
        if expected is None:
            known = ", ".join(ENDPOINT_FIELDS)
            raise ParameterError(
                "prometheus", f"{where}: endpoint {name!r} has unknown key {key!r} (known: {known})"
            )
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise ParameterError(
                "prometheus", f"{where}: {name}.{key} has the wrong type ({type(value).__name__})"
            )
    headers = settings.get("headers", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ParameterError("prometheus", f"{where}: {name}.headers must map names to strings")
    return dict(settings)


def _environment(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variable, key in _ENV_FIELDS.items():
        raw = env.get(variable)
        if not raw:
            continue
        if key == "timeout_s":
            try:
                out[key] = float(raw)
            except ValueError:
                raise ParameterError(variable, f"expected seconds, got {raw!r}") from None
        elif key == "headers":
            headers = {}
            for pair in filter(None, (p.strip() for p in raw.split(";"))):
                name, sep, value = pair.partition("=")
                if not sep or not name.strip():
                    raise ParameterError(variable, "expected Name=value pairs separated by ';'")
                headers[name.strip()] = value.strip()
            out[key] = headers
        else:
            out[key] = raw
    return out


def load_config(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Config:
    """Return the effective configuration from a file (see :func:`config_path`) and the environment.

    Parameters
    ----------
    path
        The configuration file; the one :func:`config_path` finds when omitted.
    environ
        The environment to read; ``os.environ`` when omitted.
    """
    env = os.environ if environ is None else environ
    file = Path(path) if path is not None else config_path(env)
    document: dict[str, Any] = {}
    if file is not None:
        documents = load_yaml_file(file)
        if len(documents) > 1 or (documents and not isinstance(documents[0], dict | None)):
            raise ParameterError(CONFIG_ENV, f"{file} must hold one mapping")
        document = (documents[0] if documents else None) or {}
        unknown = set(document) - {"catalog", "prometheus", "clusters"}
        if unknown:
            raise ParameterError(
                CONFIG_ENV,
                f"{file}: unknown keys {sorted(unknown)}; use catalog, prometheus, clusters",
            )
    where = str(file) if file is not None else "configuration"

    raw_endpoints = document.get("prometheus") or {}
    if not isinstance(raw_endpoints, dict):
        raise ParameterError(CONFIG_ENV, f"{where}: 'prometheus' must map names to endpoints")
    endpoints = {str(n): _check_endpoint(str(n), s, where) for n, s in raw_endpoints.items()}
    clusters = document.get("clusters") or {}
    if not isinstance(clusters, dict) or not all(isinstance(v, str) for v in clusters.values()):
        raise ParameterError(CONFIG_ENV, f"{where}: 'clusters' must map contexts to endpoint names")
    for context, name in clusters.items():
        if name not in endpoints:
            raise ParameterError(
                CONFIG_ENV, f"{where}: cluster {context!r} maps to unknown endpoint {name!r}"
            )

    catalog = env.get("RKNB_CATALOG") or document.get("catalog")
    if catalog is not None and not isinstance(catalog, str):
        raise ParameterError(CONFIG_ENV, f"{where}: 'catalog' must be the path of an override file")
    return Config(
        endpoints=endpoints,
        clusters={str(k): v for k, v in clusters.items()},
        catalog=catalog,
        environment=_environment(env),
        source=str(file) if file is not None else None,
    )


def _redacted(settings: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(settings)
    if "headers" in out:
        out["headers"] = {
            k: (_REDACTED if _SECRET_HEADER.search(k) else v) for k, v in out["headers"].items()
        }
    return out


def show_config(config: Config) -> str:
    """Return the effective configuration as YAML, every credential value redacted.

    References (``bearer_token_file``, ``*_env`` names) are shown, since they
    say where a credential lives, not what it is; the file cannot hold a
    credential's value (:func:`load_config` refuses one), and headers whose
    names carry credentials (Authorization, tokens, keys, cookies) are
    replaced by ``<redacted>``. ``rknb config show`` also passes the text
    through :func:`rknb.credentials.redact`.
    """
    document = {
        "source": config.source or "(no file; defaults and environment only)",
        "precedence": "parameters > environment > file > defaults",
        "prometheus": {name: _redacted(s) for name, s in sorted(config.endpoints.items())},
        "clusters": dict(sorted(config.clusters.items())),
        "environment": _redacted(config.environment),
        "catalog": config.catalog,
    }
    return dump_yaml(document)
