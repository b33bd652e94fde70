"""Redaction of credentials from text that may end up in a log, error or report.

Reports copy parameters, errors and log lines verbatim, so anything that
might carry a token passes through :func:`redact` first. The rules are
deliberately greedy: a false positive costs a ``<redacted>`` in a message,
a false negative leaks a credential into an incident ticket.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = ["REDACTED", "SECRET_ENV_NAME", "looks_secret_name", "redact", "secret_env_values"]

REDACTED = "<redacted>"

_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|KEY|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET_LEN = 4

#: Names of environment variables (in pods, manifests) that suggest a credential.
SECRET_ENV_NAME = re.compile(
    r"PASSW(?:OR)?D|PASSPHRASE|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL", re.I
)

_PATTERNS = (
    # Authorization / Proxy-Authorization header values, whatever the scheme.
    (re.compile(r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)[^\r\n,;]+"), r"\1" + REDACTED),
    # A bearer or basic credential on its own ("Bearer abc.def").
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    # user:password@ (or token@) in a URL.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s:]*(?::[^/@\s]*)?@"), r"\1" + REDACTED + "@"),
    # token=..., password: ..., api_key="..." in query strings, YAML or JSON.
    (
        re.compile(
            r"(?i)([\"']?[a-z0-9_-]*(?:token|password|passwd|secret|api[_-]?key)[\"']?\s*[:=]\s*)"
            r"(\"[^\"]*\"|'[^']*'|[^\s&,;\"'}]+)"
        ),
        r"\1" + REDACTED,
    ),
)


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the values of environment variables whose names look secret, longest first."""
    env = os.environ if environ is None else environ
    values = {
        value
        for name, value in env.items()
        if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str, *, environ: Mapping[str, str] | None = None) -> str:
    """Return the text without tokens, Authorization values, URL passwords or secret env values.

    Parameters
    ----------
    text
        Any text bound for a log line, an error message or a report.
    environ
        The environment whose secret-looking values are removed; ``os.environ``
        when omitted.
    """
    for value in secret_env_values(environ):
        text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def looks_secret_name(name: str) -> bool:
    """Return whether an environment variable's name suggests it holds a credential."""
    return SECRET_ENV_NAME.search(name) is not None
