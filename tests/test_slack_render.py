"""Slack rendering: golden Block Kit payloads, and Slack's limits with large breakdowns."""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import budgets, failed_for, report_for

from alerts import rules, slack
from errors import Cause
from models import PACIFIC, UTC, BreakdownLine, Headroom

GOLDEN = Path(__file__).resolve().parent / "golden"
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


def _check_golden(name: str, payload: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path.name}: run with UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed: review, then UPDATE_GOLDEN=1"


def _within_limits(payload: dict[str, Any]) -> None:
    from slack_sdk.models.blocks import Block

    blocks = payload["blocks"]
    assert 0 < len(blocks) <= slack.MAX_BLOCKS
    for b in blocks:
        parsed = Block.parse(b)
        assert parsed is not None
        parsed.validate_json()  # raises on per-block limits
        assert parsed.to_dict() == b, "alerts.blocks writes the shape slack_sdk itself writes"
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= slack.MAX_HEADER and b["text"]["type"] == "plain_text"
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= slack.MAX_SECTION
    assert payload["text"]


def _scenario(now: dt.datetime = NOW) -> tuple[Any, list[Any]]:
    cfg = budgets(
        providers={
            "openai": {"budget_usd": 1500, "accounts": [{"label": "prod", "budget_usd": 1000}, {"label": "research"}]},
            "anthropic": {"budget_usd": 800},
            "xai": {"budget_usd": 300, "accounts": [{"label": "core", "team_id": "t-1"}]},
            "gemini": {
                "budget_usd": 400,
                "accounts": [{"label": "billing", "billing_export_table": "proj-1.billing.gcp_billing_export_v1_X"}],
            },
        },
        total_budget_usd=3000,
    )
    lines = [
        BreakdownLine("line_item", "gpt-5.4, input", Decimal("610.5")),
        BreakdownLine("line_item", "gpt-5.4, output", Decimal("200")),
        BreakdownLine("line_item", "gpt-4o, input", Decimal("19.25")),
        BreakdownLine("line_item", "tts-1", Decimal("1")),
        BreakdownLine("project", "proj_alpha", Decimal("800")),
    ]
    results = [
        report_for("openai", "prod", now, ["30"] * 20 + ["90"] + ["30"] * 6 + ["12.34"], breakdown=lines),
        failed_for("openai", "research", now, Cause.AUTH),
        report_for("anthropic", "default", now, ["20.5"] * 28, as_of=now - dt.timedelta(minutes=5)),
        report_for(
            "xai",
            "core",
            now,
            ["3"] * 28,
            headroom=Headroom(Decimal(100), Decimal(84), Decimal(16), "xAI effective spending limit"),
        ),
        report_for(
            "gemini",
            "billing",
            now,
            ["4"] * 27,
            tz=PACIFIC,
            as_of=now - dt.timedelta(hours=5),
            breakdown=[BreakdownLine("sku", "Gemini 2.5 Pro input tokens", Decimal(60))],
        ),
    ]
    return cfg, results


def _message(now: dt.datetime = NOW, digest: bool = False) -> dict[str, Any]:
    cfg, results = _scenario(now)
    scopes = rules.evaluate(cfg, results, now)
    events = rules.budget_events(cfg, scopes) + rules.spike_events(cfg, scopes)
    return slack.render(slack.MessageInput(now=now, scopes=scopes, results=results, events=events, digest=digest))


def test_threshold_message_golden() -> None:
    """The threshold message with a failed account, headroom and a Pacific month matches its golden file."""
    payload = _message()
    _within_limits(payload)
    _check_golden("threshold_message", payload)


def test_digest_golden() -> None:
    """A digest with nothing crossed matches its golden file."""
    cfg, results = _scenario()
    scopes = rules.evaluate(cfg, results, NOW)
    payload = slack.render(slack.MessageInput(now=NOW, scopes=scopes, results=results, events=[], digest=True))
    _within_limits(payload)
    _check_golden("digest_message", payload)


def test_failed_provider_is_flagged_never_zero() -> None:
    """A failed account shows FAILED with its cause and no $0.00 figure for it."""
    payload = _message()
    text = json.dumps(payload["blocks"])
    assert "research* FAILED: admin key rejected" in text
    assert "research* $0.00" not in text
    assert "PARTIAL: openai/research failed" in text


def test_every_number_says_how_current_it_is() -> None:
    """Each provider block carries its data age and billing month, Google's as the Pacific invoice month."""
    ctx = [b["elements"][0]["text"] for b in _message()["blocks"] if b["type"] == "context"]
    assert any("as of 13:00 UTC (5 h ago)" in c and "US Pacific invoice month" in c for c in ctx)
    assert any("default as of 17:55 UTC (5 min ago)" in c for c in ctx)


@pytest.mark.parametrize("n", [60, 400])
def test_huge_breakdowns_and_many_accounts_stay_within_limits(n: int) -> None:
    """60-line (and 400-line) breakdowns and dozens of accounts fit Slack's limits with "and N more"."""
    accounts = [{"label": f"org-{i:03d}"} for i in range(n // 2)]
    cfg = budgets(providers={"openai": {"budget_usd": 100, "accounts": accounts}}, total_budget_usd=100)
    lines = [BreakdownLine("line_item", f"model-{i:03d}-{'x' * 50}, input", Decimal(n - i)) for i in range(n)]
    results = [report_for("openai", a["label"], NOW, ["5"] * 28, breakdown=lines) for a in accounts]
    scopes = rules.evaluate(cfg, results, NOW)
    events = rules.budget_events(cfg, scopes)
    payload = slack.render(slack.MessageInput(now=NOW, scopes=scopes, results=results, events=events))
    _within_limits(payload)
    blob = json.dumps(payload)
    assert f"and {n - 3} more" in blob
    if n == 400:
        assert "more lines" in blob  # 200 accounts do not fit one section


def test_lower_thresholds_fold_into_the_highest() -> None:
    """When 50% and 80% are new together for one scope, one line says 80% (both are recorded)."""
    section = _message()["blocks"][1]["text"]["text"]
    assert "*OpenAI · prod* crossed *80%*" in section and "*OpenAI · prod* crossed *50%*" not in section


def test_progress_bar_and_sparkline() -> None:
    """The bar fills by tenths and flags overrun; the sparkline scales to the largest day."""
    assert slack.progress_bar(Decimal(85)) == "`█████████░`"
    assert slack.progress_bar(Decimal(130)) == "`██████████`!"
    assert slack.sparkline([Decimal(0), Decimal(5), Decimal(10)]) == "▁▄█"
