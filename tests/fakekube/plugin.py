"""The ``fake_kube`` pytest fixture.

Another test folder uses it by importing the fixture in its ``conftest.py``::

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for ``fakekube``
    from fakekube.plugin import fake_kube  # noqa: E402,F401

The fixture yields a started :class:`fakekube.FakeKube` with a ``kubeconfig``
attribute: a kubeconfig file whose context ``fake`` points at the fake, so
``ClusterSource("fake", kubeconfig=str(fake_kube.kubeconfig))`` talks to it
through the real ``kubernetes`` client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .server import FakeKube


class RunningFakeKube(FakeKube):
    """A started fake with the kubeconfig written for it."""

    kubeconfig: Path
    context: str = "fake"


@pytest.fixture
def fake_kube(tmp_path: Path) -> Iterator[RunningFakeKube]:
    fake = RunningFakeKube()
    fake.start()
    fake.kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", context=fake.context)
    try:
        yield fake
    finally:
        fake.stop()
