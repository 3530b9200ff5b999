"""What the window's status refreshes and searches cost the index: no page accounting
(dbstat reads every page) and no row counts per search, so searches never queue behind them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from localsearch.core.service import LocalSearch
from localsearch.core.storage import Index
from localsearch.gui.index_monitor import _MonitorWorker
from localsearch.gui.workers import SearchRequest, _SearchWorker
from tests.fakes import FakeEmbedder
from tests.gui.conftest import fake_service, index_with_fake


def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("read on the window's path")


def test_status_refreshes_read_no_page_accounting_and_searches_no_counts(
    tmp_path: Path, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tomatoes.txt").write_text("Tomatoes need water every morning in summer.")
    index_with_fake(docs)
    monkeypatch.setattr(Index, "storage_bytes", _forbidden)

    statuses: list[dict] = []
    lane = _SearchWorker(fake_service)
    lane.status.connect(statuses.append)
    lane.refresh_status()  # on the search thread
    monitor = _MonitorWorker()
    monitor._service = LocalSearch(embedder_factory=lambda s, q: FakeEmbedder())
    monitor.status.connect(statuses.append)
    monitor.refresh()  # the monitor's own thread and connection
    assert len(statuses) == 2 and all(s["files"] == 1 and "storage" not in s for s in statuses)

    monkeypatch.setattr(Index, "counts", _forbidden)  # emptiness is a one-row probe
    results: list[list] = []
    lane.results.connect(lambda generation, label, hits: results.append(hits))
    lane.latest = 1
    lane.search(1, SearchRequest("tomatoes water", mode="hybrid"))
    assert [h.name for h in results[0]] == ["tomatoes.txt"]
    lane.shutdown()
    monitor.shutdown()
