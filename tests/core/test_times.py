from datetime import UTC, datetime, timedelta, timezone

import pytest

from rknb.errors import ParameterError
from rknb.times import format_duration, format_time, parse_duration, parse_time

NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("14d", 1209600),
        ("2w", 1209600),
        ("250ms", 0.25),
        ("90", 90),
        (45, 45),
    ],
)
def test_durations_use_prometheus_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["5 minutes", "m5", "1h-30m", "", "-5m", True])
def test_bad_durations_name_the_parameter(bad: object) -> None:
    with pytest.raises(ParameterError, match="'step'"):
        parse_duration(bad, name="step")  # type: ignore[arg-type]


def test_relative_times_count_from_the_report_time() -> None:
    assert parse_time("now-14d", now=NOW) == NOW - timedelta(days=14)
    assert parse_time("now + 2h", now=NOW) == NOW + timedelta(hours=2)
    assert parse_time("now", now=NOW) == NOW


def test_iso_times_are_converted_to_utc() -> None:
    got = parse_time("2026-11-30T02:00:00+02:00")
    assert got == NOW and got.tzinfo == UTC


def test_times_without_an_offset_are_refused_not_read_as_local() -> None:
    with pytest.raises(ParameterError, match="no UTC offset"):
        parse_time("2026-11-30T00:00:00", name="start")
    with pytest.raises(ParameterError, match="no UTC offset"):
        parse_time(datetime(2026, 11, 30))


def test_relative_time_without_report_time_is_an_error() -> None:
    with pytest.raises(ParameterError, match="relative"):
        parse_time("now-1h")


def test_unix_seconds_and_aware_datetimes_are_accepted() -> None:
    assert parse_time(NOW.timestamp()) == NOW
    tz = timezone(timedelta(hours=-5))
    assert parse_time(datetime(2026, 11, 29, 19, tzinfo=tz)) == NOW


def test_durations_format_back_to_the_shortest_spelling() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(1209600) == "2w"
    assert format_duration(0) == "0s"
    assert format_duration(0.25) == "250ms"
    assert format_time(NOW) == "2026-11-30T00:00:00Z"
