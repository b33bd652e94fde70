from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from rknb.catalog import Selector
from rknb.errors import BundleError, ParameterError
from rknb.sources.base import Window, empty_frame
from rknb.sources.bundle import (
    BundleRecorder,
    bundle_recorded_at,
    finish_bundle,
    open_bundle,
    start_bundle,
)
from rknb.sources.objects import ObjectListSource

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WINDOW = Window(END - timedelta(hours=1), END, 60)
SELECTOR = Selector(namespace="shop", workload="web")


class TinyMetrics:
    """Two answers: a frame with labels and awkward values, and an empty one."""

    description = "tiny test metrics"
    reference_time = END

    def __init__(self) -> None:
        self.calls = 0

    def query_range(self, query, selector, window):
        self.calls += 1
        if query == "nothing":
            return empty_frame(("pod",))
        stamps = pd.Series(
            pd.to_datetime(
                [1_700_000_000_000, 1_700_000_030_000, 1_700_000_000_000], unit="ms", utc=True
            )
        ).astype("datetime64[ns, UTC]")
        return pd.DataFrame(
            {
                "timestamp": stamps,
                "pod": pd.Series(["web-a", "web-a", "web-b"], dtype=object),
                "container": pd.Series(["", "", "app"], dtype=object),
                "value": np.array([0.1 + 0.2, np.nan, 1e-300]),
            }
        )

    def query_instant(self, query, selector, time, *, window_s=None):
        self.calls += 1
        return pd.DataFrame(
            {
                "timestamp": pd.Series([pd.Timestamp(time)]).astype("datetime64[ns, UTC]"),
                "le": pd.Series(["+Inf"], dtype=object),
                "value": [float(window_s or 0)],
            }
        )


OBJECTS = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": "aHVudGVyMi1zZWNyZXQ="},
        "stringData": {"token": "plaintext-token-value"},
    },
]


@pytest.fixture
def recorded(tmp_path):
    metrics = TinyMetrics()
    objects = ObjectListSource(OBJECTS, description="test objects", reference_time=END)
    recorder = BundleRecorder(metrics, objects, tmp_path / "bundle")
    answers = {
        "range": recorder.query_range("container_cpu_cores", SELECTOR, WINDOW),
        "empty": recorder.query_range("nothing", SELECTOR, WINDOW),
        "instant": recorder.query_instant("request_increase", SELECTOR, END, window_s=86400),
        "deployments": recorder.list("Deployment", "shop"),
        "secrets": recorder.list("Secret", "shop"),
    }
    return tmp_path / "bundle", answers


def test_replay_gives_equal_frames_dtypes_and_row_order(recorded):
    path, answers = recorded
    metrics, _ = open_bundle(path)
    again = metrics.query_range("container_cpu_cores", SELECTOR, WINDOW)
    pd.testing.assert_frame_equal(again, answers["range"], check_exact=True)
    assert again["value"].iloc[0] == 0.1 + 0.2  # no decimal rounding on the way through
    pd.testing.assert_frame_equal(
        metrics.query_range("nothing", SELECTOR, WINDOW), answers["empty"]
    )
    instant = metrics.query_instant("request_increase", SELECTOR, END, window_s=86400)
    pd.testing.assert_frame_equal(instant, answers["instant"])


def test_replay_lists_the_recorded_objects(recorded):
    path, answers = recorded
    _, objects = open_bundle(path)
    assert objects.list("Deployment", "shop") == answers["deployments"]
    assert [o["metadata"]["name"] for o in objects.list("Deployment", "shop")] == ["web", "api"]


def test_unrecorded_query_is_a_bundle_error_naming_it(recorded):
    path, _ = recorded
    metrics, objects = open_bundle(path)
    other_window = Window(WINDOW.start, WINDOW.end, 30)
    with pytest.raises(BundleError) as caught:
        metrics.query_range("container_cpu_cores", SELECTOR, other_window)
    message = str(caught.value)
    assert "'container_cpu_cores'" in message and "shop/web" in message and "step 30s" in message
    with pytest.raises(BundleError):
        metrics.query_instant("request_increase", SELECTOR, END, window_s=3600)
    with pytest.raises(BundleError) as caught:
        objects.list("Deployment", None)
    assert "Deployment" in str(caught.value)


def test_secret_data_is_absent_from_every_file(recorded):
    path, answers = recorded
    (secret,) = answers["secrets"]
    assert secret["dataKeys"] == ["password", "token"]
    for file in path.rglob("*"):
        if file.is_file():
            text = file.read_text()
            assert "aHVudGVyMi1zZWNyZXQ=" not in text, file
            assert "plaintext-token-value" not in text, file


def test_index_holds_version_recorded_at_and_description(recorded):
    path, _ = recorded
    index = json.loads((path / "bundle.json").read_text())
    assert index["version"] == 1
    assert index["recorded_at"] == "2026-11-30T12:00:00Z"
    assert index["description"] == "recording of tiny test metrics and test objects"
    assert bundle_recorded_at(path) == END
    assert open_bundle(path)[0].reference_time == END


def test_keys_are_deterministic_across_recordings(tmp_path):
    names = []
    for run in ("one", "two"):
        recorder = BundleRecorder(TinyMetrics(), None, tmp_path / run)
        recorder.query_range("container_cpu_cores", SELECTOR, WINDOW)
        names.append(sorted(p.name for p in (tmp_path / run / "metrics").iterdir()))
    assert names[0] == names[1] and len(names[0]) == 1


def test_live_sources_need_a_report_time(tmp_path):
    class Live(TinyMetrics):
        reference_time = None

    with pytest.raises(ParameterError):
        BundleRecorder(Live(), None, tmp_path / "b")
    recorder = BundleRecorder(Live(), None, tmp_path / "b", report_time=END + timedelta(days=1))
    assert bundle_recorded_at(tmp_path / "b") == END + timedelta(days=1)
    assert recorder.reference_time == END + timedelta(days=1)


def test_folder_without_index_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError):
        open_bundle(tmp_path)


def test_store_metrics_source_answers_round_trip(tmp_path):
    model = pytest.importorskip("rknb.sources.model")
    from rknb.tsdb import SeriesStore

    store = SeriesStore()
    t = np.arange(1_700_000_000, 1_700_003_600, 30, dtype=np.int64)
    labels = {"namespace": "shop", "pod": "web-7d4b9c8f6d-abcde", "container": "app"}
    store.add("container_memory_working_set_bytes", labels, t, np.linspace(1e8, 2e8, t.size))
    source = model.StoreMetricsSource(store, reference_time=END, description="store")
    window = Window(
        datetime.fromtimestamp(1_700_000_600, UTC), datetime.fromtimestamp(1_700_003_000, UTC), 60
    )
    recorder = BundleRecorder(source, None, tmp_path / "b")
    live = recorder.query_range("container_memory_bytes", Selector(namespace="shop"), window)
    replayed = open_bundle(tmp_path / "b")[0].query_range(
        "container_memory_bytes", Selector(namespace="shop"), window
    )
    assert len(live) == 41
    pd.testing.assert_frame_equal(replayed, live, check_exact=True)


def test_categorical_labels_keep_their_categories_and_order(tmp_path):
    class Categorical(TinyMetrics):
        def query_range(self, query, selector, window):
            frame = super().query_range(query, selector, window)
            # A live answer's labels are categorical, categories in order of appearance.
            frame["pod"] = pd.Categorical(
                ["web-b", "web-a", "web-b"], categories=["web-b", "web-a"]
            )
            return frame

    recorder = BundleRecorder(Categorical(), None, tmp_path / "b")
    live = recorder.query_range("container_cpu_cores", SELECTOR, WINDOW)
    again = open_bundle(tmp_path / "b")[0].query_range("container_cpu_cores", SELECTOR, WINDOW)
    pd.testing.assert_frame_equal(again, live, check_exact=True, check_categorical=True)
    assert list(again["pod"].cat.categories) == ["web-b", "web-a"]
    assert list(again.groupby("pod", observed=True).size().index) == ["web-b", "web-a"]


def test_none_in_a_text_column_stays_none(tmp_path):
    class Missing(TinyMetrics):
        def query_range(self, query, selector, window):
            frame = super().query_range(query, selector, window)
            frame["container"] = pd.Series([None, "app", None], dtype=object)
            return frame

    recorder = BundleRecorder(Missing(), None, tmp_path / "b")
    recorder.query_range("container_cpu_cores", SELECTOR, WINDOW)
    again = open_bundle(tmp_path / "b")[0].query_range("container_cpu_cores", SELECTOR, WINDOW)
    assert again["container"].tolist() == [None, "app", None]  # not the text "None"


def test_start_bundle_refuses_an_existing_bundle_unless_forced(tmp_path):
    folder = tmp_path / "b"
    start_bundle(folder, END, description="first")
    BundleRecorder(TinyMetrics(), None, folder, append=True).query_range(
        "container_cpu_cores", SELECTOR, WINDOW
    )
    finish_bundle(folder)
    with pytest.raises(BundleError, match=r"already holds a bundle.*--force"):
        start_bundle(folder, END, description="second")
    assert len(open_bundle(folder)[0].recorded()) == 1  # the refusal left it as it was

    start_bundle(folder, END + timedelta(hours=1), description="second", force=True)
    finish_bundle(folder)
    assert open_bundle(folder)[0].recorded() == []
    assert list((folder / "metrics").iterdir()) == []
    assert bundle_recorded_at(folder) == END + timedelta(hours=1)


def test_start_bundle_refuses_a_folder_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match=r"holds files but no bundle\.json"):
        start_bundle(tmp_path, END, description="x", force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_appending_recorders_merge_into_one_index(tmp_path):
    folder = start_bundle(
        tmp_path / "b", END, description="two kernels", metrics_source="tiny", objects_source=None
    )
    objects = ObjectListSource(OBJECTS, description="test objects", reference_time=None)
    first = BundleRecorder(TinyMetrics(), None, folder, append=True)
    second = BundleRecorder(None, objects, folder, append=True)
    first.query_range("container_cpu_cores", SELECTOR, WINDOW)
    second.list("Deployment", "shop")
    first.query_instant("request_increase", SELECTOR, END, window_s=60)  # writes after second

    index = json.loads((folder / "bundle.json").read_text())
    assert len(index["metrics"]) == 2 and len(index["objects"]) == 1
    assert index["description"] == "two kernels"
    assert index["metrics_source"] == "tiny"
    assert index["objects_source"] == "test objects"  # filled in by the recorder that had one
    # Until the recording is finished (rknb record ended every run), a replay is refused.
    with pytest.raises(BundleError, match=r"unfinished recording.*record it again"):
        open_bundle(folder)
    finish_bundle(folder)
    assert "recording" not in json.loads((folder / "bundle.json").read_text())
    metrics, replayed_objects = open_bundle(folder)
    assert [o["metadata"]["name"] for o in replayed_objects.list("Deployment", "shop")] == [
        "web",
        "api",
    ]
    assert metrics.reference_time == END


def test_a_recorder_writing_after_the_finish_does_not_reopen_the_bundle(tmp_path):
    folder = start_bundle(tmp_path / "b", END, description="one kernel")
    late = BundleRecorder(TinyMetrics(), None, folder, append=True)
    finish_bundle(folder)
    late.query_range("container_cpu_cores", SELECTOR, WINDOW)
    metrics, _ = open_bundle(folder)
    assert len(json.loads((folder / "bundle.json").read_text())["metrics"]) == 1
    assert metrics.reference_time == END


def test_appending_with_another_report_time_is_refused(tmp_path):
    folder = start_bundle(tmp_path / "b", END, description="x")
    with pytest.raises(BundleError, match="same report_time"):
        BundleRecorder(TinyMetrics(), None, folder, report_time=END + timedelta(1), append=True)


def test_source_openers_record_while_the_variable_names_a_bundle(tmp_path, monkeypatch):
    from rknb.scenario import END as SCENARIO_END
    from rknb.sources import RECORD_ENV, open_metrics, open_objects

    folder = start_bundle(tmp_path / "b", SCENARIO_END, description="x")
    monkeypatch.setenv(RECORD_ENV, str(folder))
    metrics = open_metrics("demo")
    objects = open_objects("demo")
    selector = Selector(namespace="reasonkit", workload="reasonkit-pro-mcp")
    window = Window(SCENARIO_END - timedelta(hours=1), SCENARIO_END, 60)
    live = metrics.query_range("deployment_replicas", selector, window)
    deployments = objects.list("Deployment", "reasonkit")
    monkeypatch.delenv(RECORD_ENV)
    finish_bundle(folder)

    replay_metrics, replay_objects = open_metrics(str(folder)), open_objects(str(folder))
    pd.testing.assert_frame_equal(
        replay_metrics.query_range("deployment_replicas", selector, window), live, check_exact=True
    )
    assert replay_objects.list("Deployment", "reasonkit") == deployments
    assert len(live) == 61 and deployments  # one hour at 60 s, both ends included


def test_recording_into_the_bundle_being_replayed_is_refused(tmp_path, monkeypatch):
    from rknb.sources import RECORD_ENV, open_metrics

    folder = start_bundle(tmp_path / "b", END, description="x")
    finish_bundle(folder)
    monkeypatch.setenv(RECORD_ENV, str(folder))
    with pytest.raises(ParameterError, match="records into"):
        open_metrics(str(folder))


def test_a_range_over_another_window_is_another_answer(tmp_path):
    class Windowed(TinyMetrics):
        def query_range(self, query, selector, window, *, window_s=None):
            frame = super().query_range(query, selector, window)
            frame["value"] = float(window_s or -1)
            return frame

    recorder = BundleRecorder(Windowed(), None, tmp_path / "b")
    recorder.query_range("request_increase", SELECTOR, WINDOW)
    recorder.query_range("request_increase", SELECTOR, WINDOW, window_s=3600)
    metrics, _ = open_bundle(tmp_path / "b")
    default = metrics.query_range("request_increase", SELECTOR, WINDOW)
    hourly = metrics.query_range("request_increase", SELECTOR, WINDOW, window_s=3600)
    assert default["value"].tolist() == [-1.0] * 3
    assert hourly["value"].tolist() == [3600.0] * 3
    with pytest.raises(BundleError, match="over 60s"):
        metrics.query_range("request_increase", SELECTOR, WINDOW, window_s=60)


@pytest.mark.parametrize("name", ["../outside.json", "/etc/hostname", 5])
def test_an_index_naming_a_file_outside_the_bundle_is_refused(recorded, name):
    path, _ = recorded
    (path.parent / "outside.json").write_text('{"kind": "planted"}', encoding="utf-8")
    index = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
    for entry in index["objects"].values():
        entry["file"] = name
    (path / "bundle.json").write_text(json.dumps(index), encoding="utf-8")
    _, objects = open_bundle(path)
    with pytest.raises(BundleError, match="not inside the bundle"):
        objects.list("Deployment", "shop")
