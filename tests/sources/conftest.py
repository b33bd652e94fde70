from __future__ import annotations

import sys
from pathlib import Path

# The fake API server is a package under tests/; make it importable as ``fakekube``.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from fakekube.plugin import fake_kube  # noqa: E402

__all__ = ["fake_kube"]
