"""Demo answers shared by the capacity tests: built once per session, read-only."""

from __future__ import annotations

import pytest
from capacity_demo import Demo, load_demo


@pytest.fixture(scope="session")
def demo() -> Demo:
    return load_demo(42)
