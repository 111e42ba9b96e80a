"""A state document written by the build before typed events (version 1) still loads and delivers.

`fixtures/state/v1_written_by_f58265e.json` was written by that build's own Ledger (the script is
`make_v1_at_f58265e.py.txt` next to it): two threshold events, a failure notice and a digest left
pending by a failed post, a spike already sent. `golden/state_v1_delivery.json` is what that build
posted from it one hour later; this build must post the same message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import failed_for, make_deps, report_for

import check
from alerts.events import Kind, Severity
from alerts.state import FileStore, Ledger, decode
from config import Settings
from errors import Cause
from models import UTC

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "state" / "v1_written_by_f58265e.json"
GOLDEN = HERE / "golden" / "state_v1_delivery.json"
WRITTEN = dt.datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LATER = WRITTEN + dt.timedelta(hours=1)
BUDGETS = {"total_budget_usd": 1000, "providers": {"openai": {"budget_usd": 500}, "anthropic": {"budget_usd": 400}}}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state.json"
    shutil.copy(FIXTURE, path)
    return path


def test_the_fixture_is_version_1_and_decodes_as_stored(state: Path) -> None:
    """decode reads version 1 as it is stored (nothing is rewritten by reading)."""
    doc = decode(state.read_bytes(), location="fixture")
    assert doc["version"] == 1 and doc == json.loads(FIXTURE.read_text())


def test_pending_version_1_events_come_back_typed_delayed_with_their_old_severities(state: Path) -> None:
    """The pending events are owned as typed events: delayed, the legacy severities, threshold levels and titles."""
    owned = Ledger(FileStore(state)).claim_events([], LATER)
    assert sorted(owned) == [
        "digest:2026-11-28",
        "failure:2026-11-28T09:00:00+00:00:anthropic/main",
        "threshold:2026-11:openai:50",
        "threshold:2026-11:openai:80",
    ]
    assert all(e.delayed and not e.uncertain for e in owned.values())
    top = owned["threshold:2026-11:openai:80"]
    assert (top.kind, top.severity, top.title, top.level) == (Kind.THRESHOLD, Severity.CROSSED, "OpenAI", Decimal(80))
    assert top.amounts.budget_usd == Decimal("500.00")
    assert top.headline() == "OpenAI crossed 80% of its $500.00 budget"
    assert owned["failure:2026-11-28T09:00:00+00:00:anthropic/main"].severity == Severity.WARNING
    assert owned["digest:2026-11-28"].severity == Severity.INFO


def test_the_next_run_posts_what_the_previous_build_posted(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One hour later the check posts exactly the golden message and writes version 2, health kept."""
    results = [
        report_for("openai", "default", LATER, ["1.00"] * 28),
        failed_for("anthropic", "default", LATER, Cause.AUTH),
    ]
    posted: list[dict[str, Any]] = []
    monkeypatch.setattr(check, "fetch_all", lambda *a, **k: results)
    monkeypatch.setattr(check.slack, "deliver", lambda url, payload, **kw: posted.append(payload))
    settings = Settings.from_env({"BUDGET_CONFIG": json.dumps(BUDGETS), "STATE_FILE": str(state)})
    before = json.loads(state.read_text())
    outcome = check.run_check(settings, make_deps(), LATER, webhook_url="http://127.0.0.1:9/hook")
    golden = json.loads(GOLDEN.read_text())
    assert outcome.delivered == golden["delivered"]
    assert posted == [golden["payload"]]
    after = json.loads(state.read_text())
    assert after["version"] == 2
    assert after["health"]["anthropic/main"] == before["health"]["anthropic/main"]
    assert {k: e["status"] for k, e in after["events"]["2026-11"].items()} == dict.fromkeys(
        before["events"]["2026-11"], "sent"
    )
    assert after["events"]["2026-11"]["threshold:2026-11:openai:50"]["severity"] == 3  # the legacy severity, kept


def test_a_typed_event_stored_in_version_2_comes_back_as_the_rules_made_it(tmp_path: Path) -> None:
    """Released and owned again, an event keeps every typed field: a non-top threshold stays severity 2."""
    from alerts.events import Amounts, Event

    event = Event(
        key="threshold:2026-11:openai:50",
        kind=Kind.THRESHOLD,
        scope="openai",
        month="2026-11",
        line="*OpenAI* crossed *50%* of its $500.00 budget: $412.00 month-to-date (82.4%)",
        severity=Severity.WARNING,
        title="OpenAI",
        level=Decimal(50),
        amounts=Amounts(mtd_usd=Decimal("412.004"), budget_usd=Decimal(500)),
    )
    store = FileStore(tmp_path / "s.json")
    first = Ledger(store)
    first.release_events(first.claim_events([event], WRITTEN), WRITTEN, "server_error")
    assert json.loads((tmp_path / "s.json").read_text())["version"] == 2
    again = Ledger(store).claim_events([], LATER)["threshold:2026-11:openai:50"]
    assert again == dataclasses.replace(event, delayed=True)
