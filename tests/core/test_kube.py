import pytest

from rknb.errors import ParameterError
from rknb.kube import parse_int_or_percent, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", 0.25),
        ("256Mi", 256 * 2**20),
        ("1Gi", 2**30),
        ("0.5", 0.5),
        ("1e3", 1000.0),
        ("5E-2", 0.05),
        ("2k", 2000.0),
        ("100u", 1e-4),
        (".5", 0.5),
        (3, 3.0),
    ],
)
def test_quantities_read_as_the_api_writes_them(text: object, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "250 m", "1.5.0", "Mi", "12x", True])
def test_bad_quantities_name_the_field(bad: object) -> None:
    with pytest.raises(ParameterError, match="'cpu request'"):
        parse_quantity(bad, name="cpu request")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "total", "up", "down"),
    [("25%", 10, 3, 2), ("25%", 3, 1, 0), ("100%", 7, 7, 7), (2, 10, 2, 2), ("0%", 5, 0, 0)],
)
def test_percentages_round_up_for_surge_and_down_for_unavailable(
    value: int | str, total: int, up: int, down: int
) -> None:
    assert parse_int_or_percent(value, total, round_up=True) == up
    assert parse_int_or_percent(value, total, round_up=False) == down


@pytest.mark.parametrize("bad", ["5", "25.5%", "%", True, None])
def test_anything_else_is_refused(bad: object) -> None:
    with pytest.raises(ParameterError):
        parse_int_or_percent(bad, 10, round_up=True)  # type: ignore[arg-type]
