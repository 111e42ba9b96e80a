"""One money formatter: the JSON document, Slack and the CLI table round every amount the same way."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from support import budgets, report_for

import output
from alerts import rules, slack
from check import CheckOutcome
from models import UTC, cents, usd, usd_plain
from output import to_json

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
CASES = [
    ("0.125", "0.13", "$0.13"),  # half a cent rounds up, not to the even 0.12
    ("0.135", "0.14", "$0.14"),
    ("2.675", "2.68", "$2.68"),  # the classic float trap: Decimal rounds the written value
    ("-0.005", "-0.01", "-$0.01"),  # half away from zero for credits too
    ("-0.001", "0.00", "$0.00"),  # never "-0.00"
    ("0.004999", "0.00", "$0.00"),
    ("1234.565", "1234.57", "$1,234.57"),
    ("1000000", "1000000.00", "$1,000,000.00"),
    ("1E+6", "1000000.00", "$1,000,000.00"),
]


@pytest.mark.parametrize(("amount", "plain", "shown"), CASES)
def test_json_slack_and_cli_show_the_same_rounded_amount(amount: str, plain: str, shown: str) -> None:
    """An account's month-to-date is the same cents in the JSON document, the Slack text and the CLI table."""
    cfg = budgets(providers={"openai": {"budget_usd": 500}}, total_budget_usd=1000)
    results = [report_for("openai", "default", NOW, [amount])]
    scopes = rules.evaluate(cfg, results, NOW)
    doc = to_json(CheckOutcome(now=NOW, results=results, scopes=scopes, events_now=[]))
    payload = slack.render(slack.MessageInput(now=NOW, scopes=scopes, results=results, events=[]))
    assert doc["total"]["mtd_usd_rounded"] == plain
    assert doc["providers"]["openai"]["accounts"][0]["mtd_usd_rounded"] == plain
    assert Decimal(doc["total"]["mtd_usd"]) == Decimal(amount), "the exact amount is kept next to the rounded one"
    assert f"*Total*  {shown} of $1,000.00" in payload["text"]
    assert shown in output.table(doc).splitlines()[1]


def test_helpers_agree_and_keep_huge_amounts_exact() -> None:
    """usd() and usd_plain() are cents() written two ways; an amount past 28 digits still rounds."""
    huge = Decimal("123456789012345678901234567890.125")
    assert usd_plain(huge) == "123456789012345678901234567890.13"
    assert usd(huge) == "$123,456,789,012,345,678,901,234,567,890.13"
    for amount, plain, shown in CASES:
        assert usd(cents(Decimal(amount))) == shown and usd_plain(Decimal(plain)) == plain


def test_a_non_finite_amount_is_a_programming_error() -> None:
    """NaN or Infinity never renders as money."""
    for bad in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError, match="not an amount of money"):
            usd(Decimal(bad))
