"""Slack rendering per destination: only its scopes, a "Teams" section, unassigned in the default, limits kept."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from typing import Any

from support import budgets, failed_for, report_for

from alerts import rules, slack
from alerts.events import Amounts, Event, Kind, Severity
from alerts.rules import Forecast, Scope
from errors import Cause
from models import UTC

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
CFG = budgets(providers={"openai": {"budget_usd": 1500}, "anthropic": {"budget_usd": 800}})
RESULTS = [
    report_for("openai", "default", NOW, ["20"] * 28),
    failed_for("anthropic", "default", NOW, Cause.AUTH),
]


def _team(name: str, mtd: str | None, budget: str | None, *, failed: tuple[str, ...] = ()) -> Scope:
    """A team (or the unassigned) scope as the teams slice files it: name team/<n>, level team."""
    level = "unassigned" if name == "unassigned" else "team"
    fc = Forecast(Decimal("2100"), Decimal("70"), 7, dt.date(2026, 11, 26), "") if budget else None
    return Scope(
        name=name if level == "unassigned" else f"team/{name}",
        level=level,
        title="Unassigned" if level == "unassigned" else f"Team {name}",
        month="2026-11",
        mtd_usd=None if mtd is None else Decimal(mtd),
        budget_usd=None if budget is None else Decimal(budget),
        daily=(),
        partial=bool(failed),
        failed_parts=failed,
        forecast=fc,
    )


SCOPES = [
    *rules.evaluate(CFG, RESULTS, NOW),
    _team("search", "1650.4", "2000", failed=("anthropic/default",)),
    _team("support", "120", "1000"),
    _team("unassigned", "8.77", None),
]
CROSSED = Event(
    "threshold:2026-11:team/search:80",
    Kind.THRESHOLD,
    "team/search",
    "2026-11",
    "*Team search* crossed *80%*",
    Severity.CROSSED,
    title="Team search",
    level=Decimal(80),
    amounts=Amounts(budget_usd=Decimal(2000)),
)


def _render(shown: set[str] | None, events: list[Event] | None = None) -> dict[str, Any]:
    return slack.render(
        slack.MessageInput(
            now=NOW,
            scopes=SCOPES,
            results=RESULTS,
            events=events if events is not None else [CROSSED],
            shown=None if shown is None else frozenset(shown),
        )
    )


def _text(payload: dict[str, Any]) -> str:
    return json.dumps(payload["blocks"], ensure_ascii=False)


def test_a_teams_channel_shows_its_team_line_and_nothing_else() -> None:
    """team/search's destination: its team line (figure, budget, pct, bar, which source failed, forecast) only."""
    blocks = _text(_render({"team/search"}))
    line = "*Team search*  $1,650.40 of $2,000.00 (82.5%)  `████████░░`  _partial: anthropic/default failed_"
    assert line + " · forecast $2,100.00, budget reached Nov 26" in blocks
    assert "*Teams*" in blocks
    assert "Total" not in blocks and "OpenAI" not in blocks and "Team support" not in blocks
    assert "Unassigned" not in blocks
    assert "anthropic/default failed" in _render({"team/search"})["blocks"][-1]["elements"][0]["text"]


def test_the_default_shows_the_total_its_teams_and_the_unassigned_spend() -> None:
    """The default destination: the total, the providers, the teams routed to it and the unassigned last."""
    blocks = _text(_render({"total", "openai", "anthropic", "team/support", "unassigned"}, events=[]))
    assert "*Total*" in blocks and "*OpenAI*" in blocks
    assert "*Team support*  $120.00 of $1,000.00 (12.0%)" in blocks and "Team search" not in blocks
    assert blocks.index("Team support") < blocks.index("*Unassigned*  $8.77")


def test_showing_every_scope_renders_as_showing_all() -> None:
    """shown=None (one destination) and shown=every scope render the same message, Teams section included."""
    assert _render(None) == _render({s.name for s in SCOPES})
    assert "*Teams*" in _text(_render(None))


def test_an_account_routed_alone_is_shown_without_its_provider() -> None:
    """A destination that shows one account (its own notify) gets that account's figure, not its provider's."""
    blocks = _text(_render({"openai/default"}, events=[]))
    assert "OpenAI · default" in blocks and "*OpenAI*  " not in blocks and "Total" not in blocks


def test_many_teams_stay_within_slacks_limits() -> None:
    """300 teams in one destination: at most 50 blocks, each section at most 3000 characters, "and N more"."""
    from slack_sdk.models.blocks import Block

    many = [_team(f"team-{i:03d}", "10", "100") for i in range(300)]
    payload = slack.render(
        slack.MessageInput(now=NOW, scopes=[*SCOPES, *many], results=RESULTS, events=[CROSSED], shown=None)
    )
    assert len(payload["blocks"]) <= slack.MAX_BLOCKS
    for b in payload["blocks"]:
        Block.parse(b).validate_json()
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= slack.MAX_SECTION
    assert "more teams" in _text(payload) and len(payload["text"]) <= slack.MAX_TEXT


def test_a_team_with_no_data_says_which_sources_failed() -> None:
    """A team whose every source failed shows no figure, naming the failed sources (never $0)."""
    scope = dataclasses.replace(_team("search", None, "2000", failed=("anthropic/default",)), forecast=None)
    assert slack._team_line(scope) == "*Team search*  :x: no data (its sources failed: anthropic/default)"
