"""rknb's errors cross a process boundary intact (a forked reader sends them back)."""

from __future__ import annotations

import pickle

import pytest

from rknb.errors import (
    BundleError,
    ClusterError,
    ManifestError,
    ParameterError,
    QueryError,
    RknbError,
    RunError,
)


@pytest.mark.parametrize(
    "error",
    [
        ParameterError("--config", "has no setting 'min_replica'"),
        RunError("the kernel died", exit_code=4),
        QueryError("Prometheus failed the query", query="up", status=503),
        ManifestError("not a mapping", path="k8s/web.yaml", line=12),
        ClusterError("forbidden", status=403, reason="Forbidden"),
        BundleError("no answer recorded"),
    ],
)
def test_an_error_pickles_with_its_message_and_fields(error: RknbError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    assert copy.args == error.args


def test_a_parameter_error_keeps_the_name_it_was_raised_for() -> None:
    copy = pickle.loads(pickle.dumps(ParameterError("jobs", "must be 1 or more")))
    assert copy.name == "jobs"
    assert str(copy) == "parameter 'jobs': must be 1 or more"
