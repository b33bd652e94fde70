import copy
import json
from pathlib import Path

import pytest

from rknb.conformance import CaseResult, Summary, format_failure, run_area
from rknb.conformance.promql import evaluate_case
from rknb.errors import ParameterError

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parent / "data" / "conformance" / "promql" / "vectors.json"
SHARED = HERE.parents[2] / "shared" / "conformance" / "promql" / "vectors.json"


def test_copy_of_vectors_still_matches_the_shared_file():
    if not SHARED.parent.exists():
        pytest.skip(f"{SHARED.parent} is not present (a clone or wheel alone)")
    assert VECTORS.read_bytes() == SHARED.read_bytes()


@pytest.mark.parametrize("semantics", [2, 3])
def test_every_promql_vector_passes(semantics):
    summary = run_area("promql", [VECTORS], semantics=semantics)
    cases = len(json.loads(VECTORS.read_text())["cases"])
    assert [r.line() for r in summary.failures()] == []
    assert summary.passed == cases
    assert summary.closing_line() == f"{cases} passed, 0 failed"


def test_every_promql_vector_passes_from_its_dataset_under_2():
    summary = run_area("promql", [VECTORS], semantics=2, from_dataset=True)
    assert [r.line() for r in summary.failures()] == []


@pytest.mark.parametrize("semantics", [2, 3])
def test_a_wrong_expected_value_fails(semantics):
    content = json.loads(VECTORS.read_text())
    case = copy.deepcopy(next(c for c in content["cases"] if c["id"] == "c51"))
    case["expected"][0]["value"] = "0.51"
    case.setdefault("prom3", {}).setdefault("computed_by_reference", case["expected"])
    case["prom3"]["computed_by_reference"][0]["value"] = "0.51"
    result = evaluate_case(case, content["datasets"], semantics=semantics)
    assert result.status == "failed"
    assert 'start="0m"' in result.detail and "0.51" in result.detail


def test_an_expected_error_that_does_not_happen_fails():
    content = json.loads(VECTORS.read_text())
    case = copy.deepcopy(next(c for c in content["cases"] if c["id"] == "c38"))
    case["query"] = 'histogram_quantile(0.99, {__name__=~"request_duration_seconds_bucket"})'
    assert evaluate_case(case, content["datasets"], semantics=2).status == "failed"


def test_a_query_outside_the_subset_fails_with_a_reason():
    content = json.loads(VECTORS.read_text())
    case = copy.deepcopy(content["cases"][0])
    case["query"] = "label_replace(up, 'a', 'b', 'c', 'd')"
    result = evaluate_case(case, content["datasets"], semantics=3)
    assert result.status == "failed"
    assert "subset" in result.detail


def test_closing_line_adds_skipped_and_divergent_only_when_they_apply():
    results = [CaseResult("a", "passed"), CaseResult("b", "passed"), CaseResult("c", "failed")]
    assert Summary("promql", results).closing_line() == "2 passed, 1 failed"
    skipped = [*results, CaseResult("d", "skipped")]
    assert Summary("hpa", skipped).closing_line() == "2 passed, 1 failed, 1 skipped"
    audit = Summary("audit", results, always_show=("divergent",))
    assert audit.closing_line() == "2 passed, 1 failed, 0 divergent"
    assert not audit.ok


def test_a_failing_case_formats_as_one_line_with_id_expected_and_actual():
    line = format_failure(CaseResult("c51", "failed", "[{} 0.6]", "[{} 0.65]", "rate(x)\nwhy"))
    assert "\n" not in line
    assert line.startswith("FAIL c51:")
    assert "0.6]" in line and "0.65]" in line and "why" in line


def test_unknown_area_lists_the_valid_ones():
    with pytest.raises(ParameterError, match="promql"):
        run_area("nope", [VECTORS])


def test_a_file_that_is_not_a_vector_file_is_refused(tmp_path):
    bad = tmp_path / "v.json"
    bad.write_text("[]")
    with pytest.raises(ParameterError, match="cases"):
        run_area("promql", [bad])
