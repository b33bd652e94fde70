from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).resolve().parent.parent / "data"


def load(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


@pytest.fixture
def renumbered() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    objects = load(DATA / "rollout" / "renumbered-history.yaml")
    return objects[0], objects[1:]


@pytest.fixture
def seed_deployment() -> dict[str, Any]:
    return load(DATA / "audit" / "seed" / "reasonkit-pro.yaml")[0]
