"""The real check path (CLI and HTTP function) against the local simulator and Slack receiver.

Keys and the webhook URL are sentinel strings; every test ends by proving none of them appeared in a
log line, an HTTP answer, a Slack payload or the CLI output.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import logs
import main
from runtime import PROCESS
from simulator import Scenario, Simulator, SlackReceiver

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
SENTINELS = {
    "prod": "sk-admin-SENTINEL-prod-0f1e2d3c4b5a",
    "research": "sk-admin-SENTINEL-research-9a8b7c6d",
    "main": "sk-ant-admin01-SENTINEL-main-5e4f3a2b",
}
HOOK_SECRET = "T0SENTINEL/B0SENTINEL/hooksecretSENTINEL42"
BUDGETS = {
    "total_budget_usd": 14000,
    "providers": {
        "openai": {
            "budget_usd": 9000,
            "accounts": [
                {"label": "prod", "budget_usd": 8000, "key_env": "SIM_OPENAI_PROD_KEY"},
                {"label": "research", "key_env": "SIM_OPENAI_RESEARCH_KEY"},
            ],
        },
        "anthropic": {"budget_usd": 5000, "accounts": [{"label": "main", "key_env": "SIM_ANTHROPIC_KEY"}]},
    },
}


def _scenario() -> Scenario:
    doc = json.loads((Path(__file__).resolve().parent.parent / "simulator/scenarios/demo.json").read_text())
    doc["accounts"] = [a for a in doc["accounts"] if a["provider"] in ("openai", "anthropic")]
    for a in doc["accounts"]:
        a["key"] = SENTINELS[a["label"]]
    return Scenario.from_dict(doc)


@pytest.fixture(scope="module", params=[False, True], ids=["today-served", "complete-days"])
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[Simulator, SlackReceiver]]:
    """Every test runs against both Anthropic behaviours: today's bucket served, or complete days only."""
    with (
        Simulator.start(_scenario(), clock=NOW, complete_days_only=request.param) as sim,
        SlackReceiver.start() as slack,
    ):
        yield sim, slack


@pytest.fixture
def env(
    servers: tuple[Simulator, SlackReceiver], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    sim, slack = servers
    sim.reset()
    sim.set_clock(NOW)
    slack.reset()
    values = {
        **sim.env(),
        "BUDGET_CONFIG": json.dumps(BUDGETS),
        "SIM_OPENAI_PROD_KEY": SENTINELS["prod"],
        "SIM_OPENAI_RESEARCH_KEY": SENTINELS["research"],
        "SIM_ANTHROPIC_KEY": SENTINELS["main"],
        "SLACK_WEBHOOK_URL": f"{slack.url}/services/{HOOK_SECRET}",
        "STATE_FILE": str(tmp_path / "state.json"),
        "CHECK_DEADLINE_SECONDS": "30",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    for k in ("BUDGET_CONFIG_FILE", "SLACK_WEBHOOK_SECRET", "STATE_BACKEND"):
        monkeypatch.delenv(k, raising=False)
    log = io.StringIO()
    logs.setup("DEBUG", stream=log)
    PROCESS.reset(logging_ready=True)  # a fresh process whose logging is already set up
    ctx: dict[str, Any] = {"sim": sim, "slack": slack, "log": log, "outputs": []}
    yield ctx
    _assert_no_secret(ctx)


def _assert_no_secret(ctx: dict[str, Any]) -> None:
    haystacks = [ctx["log"].getvalue(), *ctx["outputs"], json.dumps(ctx["slack"].messages())]
    for hay in haystacks:
        for secret in [*SENTINELS.values(), HOOK_SECRET, "SENTINEL"]:
            assert secret not in hay, "a secret leaked into logs, an answer or a Slack payload"


def _cli(ctx: dict[str, Any], capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main.cli(list(args))
    out = capsys.readouterr()
    ctx["outputs"].extend([out.out, out.err])
    return code, out.out


def _json_check(ctx: dict[str, Any], capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code, out = _cli(ctx, capsys, "check", "--json", "--now", NOW.isoformat(), *extra)
    assert code == 0
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_dry_run_json_totals_equal_the_scenario(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run --json reports each account's status, MTD, freshness; totals equal the simulator's sums."""
    sim = env["sim"]
    doc = _json_check(env, capsys, "--dry-run")
    accounts = {f"{p}/{a['label']}": a for p, v in doc["providers"].items() for a in v["accounts"]}
    for scope in ("openai/prod", "openai/research", "anthropic/main"):
        assert accounts[scope]["status"] == "ok"
        assert Decimal(accounts[scope]["mtd_usd"]) == sim.expected_mtd(scope)
        assert accounts[scope]["freshness"]["as_of"]
    expected_total = sum((sim.expected_mtd(s) for s in accounts), Decimal(0))
    assert Decimal(doc["total"]["mtd_usd"]) == expected_total
    assert doc["total"]["mtd_usd_rounded"] == str(expected_total.quantize(Decimal("0.01")))
    assert doc["partial"] is False and doc["slack"]["posted"] is False
    assert doc["alerts"]["pending"] and doc["message"]["blocks"]
    assert env["slack"].attempts() == 0, "a dry run posts nothing"
    assert not Path(main.Settings.from_env().state_file).exists(), "a dry run records nothing"


def test_posts_once_then_stays_quiet(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """The first check posts the crossed thresholds; the next hour's check posts nothing new."""
    first = _json_check(env, capsys)
    assert first["slack"]["posted"] and first["alerts"]["delivered"]
    assert "threshold:2026-11:openai/prod:50" in first["alerts"]["delivered"]
    assert len(env["slack"].messages()) == 1
    env["sim"].set_clock(NOW + dt.timedelta(hours=1))
    code, _ = _cli(env, capsys, "check", "--now", (NOW + dt.timedelta(hours=1)).isoformat())
    assert code == 0 and len(env["slack"].messages()) == 1


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("http_401", "auth"),
        ("http_500", "server_error"),
        ("html", "server_error"),
        ("html_200", "bad_response"),
        ("drift_missing_data", "bad_response"),
        ("drift_amount_type", "bad_response"),
    ],
)
def test_openai_failure_is_labelled_and_anthropic_still_reports(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], mode: str, cause: str
) -> None:
    """OpenAI failing (401/500/HTML/drift) is 'failed' with its cause, partial, never $0; Anthropic reports."""
    env["sim"].add_fault("openai", mode)
    doc = _json_check(env, capsys, "--dry-run")
    openai = doc["providers"]["openai"]
    for acc in openai["accounts"]:
        assert acc["status"] == "failed" and acc["cause"] == cause and acc["mtd_usd"] is None
    assert openai["mtd_usd"] is None and openai["partial"] is True
    assert doc["providers"]["anthropic"]["accounts"][0]["status"] == "ok"
    assert Decimal(doc["providers"]["anthropic"]["mtd_usd"]) == env["sim"].expected_mtd("anthropic/main")
    assert doc["partial"] is True and doc["total"]["partial"] is True
    assert "$0.00" not in json.dumps(doc["message"]) or "FAILED" in json.dumps(doc["message"])
    text = json.dumps(doc["message"]["blocks"])
    assert "FAILED" in text and "PARTIAL" in text


def test_slack_down_keeps_alerts_pending_then_delivers_once(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Slack 500 for two runs: nothing recorded as sent; the third run posts once; the fourth nothing."""
    env["slack"].add_fault("http_500", count=4)  # two runs × (first try + no retry on 500) = fails, fails
    for hour in range(2):
        doc = _json_check(env, capsys, "--now", (NOW + dt.timedelta(hours=hour)).isoformat())
        assert doc["slack"]["posted"] is False and doc["alerts"]["pending"] and "HTTP 500" in doc["slack"]["error"]
    env["slack"].clear_faults()
    doc = _json_check(env, capsys, "--now", (NOW + dt.timedelta(hours=2)).isoformat())
    assert doc["slack"]["posted"] is True and len(env["slack"].messages()) == 1
    doc = _json_check(env, capsys, "--now", (NOW + dt.timedelta(hours=3)).isoformat())
    assert doc["alerts"]["delivered"] == [] and len(env["slack"].messages()) == 1


def test_http_function_answers_json(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The functions-framework app answers 200 with the check document, even with a failed provider."""
    import functions_framework

    env["sim"].add_fault("anthropic", "http_403")
    app = functions_framework.create_app(target="budget_check", source=str(Path(main.__file__)))
    PROCESS.reset(logging_ready=True, clock=lambda: NOW)  # the fresh main.py shares runtime.PROCESS
    client = app.test_client()
    resp = client.post("/")
    body = resp.get_data(as_text=True)
    env["outputs"].append(body)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["status"] == "ok" and doc["partial"] is True
    assert doc["providers"]["anthropic"]["accounts"][0]["cause"] == "permission"
    assert Decimal(doc["providers"]["openai"]["mtd_usd"]) == sum(
        (env["sim"].expected_mtd(s) for s in ("openai/prod", "openai/research")), Decimal(0)
    )
    assert doc["slack"]["posted"] is True and doc["checked_at"] == NOW.isoformat()


def test_http_function_config_error_is_500_without_secrets(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configuration error answers 500 naming the problem, with no secret in it."""
    import functions_framework

    monkeypatch.setenv("BUDGET_CONFIG", json.dumps({"total_budget_usd": 10, "providers": {"openai": {}}}))
    client = functions_framework.create_app(target="budget_check", source=str(Path(main.__file__))).test_client()
    resp = client.post("/")
    body = resp.get_data(as_text=True)
    env["outputs"].append(body)
    assert resp.status_code == 500
    assert "providers.openai.budget_usd is missing" in json.loads(body)["error"]


def test_corrupted_state_is_reported_and_nothing_is_posted(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrupted state file: exit code 3, an error naming it, no Slack flood."""
    Path(main.Settings.from_env().state_file).write_text("{garbage")
    code, out = _cli(env, capsys, "check", "--json", "--now", NOW.isoformat())
    assert code == 3 and "corrupted" in json.loads(out)["state_error"]
    assert env["slack"].attempts() == 0


def test_first_minutes_of_the_month(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """At Dec 1 00:05 UTC every provider reports December month-to-date; nothing from November leaks in."""
    dec = dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.UTC)
    env["sim"].set_clock(dec)
    _, out = _cli(env, capsys, "check", "--json", "--dry-run", "--now", dec.isoformat())
    doc = json.loads(out)
    for p in doc["providers"].values():
        for a in p["accounts"]:
            assert a["status"] == "ok" and a["billing_month"] == "2026-12"
    assert Decimal(doc["total"]["mtd_usd"]) == sum(
        (env["sim"].expected_mtd(s, now=dec) for s in ("openai/prod", "openai/research", "anthropic/main")), Decimal(0)
    )
    assert Decimal(doc["total"]["mtd_usd"]) < 50


def test_anthropic_complete_days_only_on_the_first(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """An Anthropic that answers 400 on the 1st (no complete day) is a $0 month-to-date with a note."""
    dec = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
    env["sim"].set_clock(dec)
    env["sim"].set_complete_days_only(True)
    _, out = _cli(env, capsys, "check", "--json", "--dry-run", "--now", dec.isoformat())
    acc = json.loads(out)["providers"]["anthropic"]["accounts"][0]
    assert acc["status"] == "ok" and acc["mtd_usd"] == "0"
    assert "complete days through Nov 30" in acc["freshness"]["note"]
    assert acc["freshness"]["complete_through"] == "2026-11-30"


def test_a_400_that_is_not_the_date_range_error_fails_on_the_first(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Any other 400 from Anthropic on the 1st is `failed` (client_error), never a $0 month-to-date."""
    dec = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
    env["sim"].set_clock(dec)
    env["sim"].add_fault("anthropic", "http_400")
    _, out = _cli(env, capsys, "check", "--json", "--dry-run", "--now", dec.isoformat())
    doc = json.loads(out)
    acc = doc["providers"]["anthropic"]["accounts"][0]
    assert acc["status"] == "failed" and acc["cause"] == "client_error" and acc["mtd_usd"] is None
    assert doc["partial"] is True


def test_anthropic_freshness_forecast_and_priority_tier_follow_the_data(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Complete-days mode says "complete days through Nov 27"; the forecast is the same in both modes."""
    sim = env["sim"]
    doc = _json_check(env, capsys, "--dry-run")
    acc = doc["providers"]["anthropic"]["accounts"][0]
    blocks = json.dumps(doc["message"]["blocks"])
    if sim.complete_days_only:
        assert acc["freshness"]["complete_through"] == "2026-11-27"
        assert acc["freshness"]["note"].startswith("complete days through Nov 27")
        assert "main complete days through Nov 27" in blocks and "today not reported yet" in blocks
    else:
        assert acc["freshness"]["complete_through"] is None and acc["freshness"]["note"].startswith("today so far")
    settled = [v for d, v in sorted(sim.expected_daily("anthropic/main").items()) if d < NOW.date()]
    rate = sum(settled[-7:], Decimal(0)) / 7
    projected = sum(settled, Decimal(0)) + rate * (30 - len(settled))
    assert doc["providers"]["anthropic"]["forecast_usd"] == str(projected.quantize(Decimal("0.01")))
    assert any("Priority Tier" in n for n in acc["notes"]) and "Priority Tier" in blocks


def test_daily_digest_once_a_day_and_can_be_turned_off(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the digest hour one summary is posted (even with nothing new); once per day; off means never."""
    monkeypatch.setenv("BUDGET_CONFIG", json.dumps({**BUDGETS, "digest": {"enabled": True, "hour_utc": 18}}))
    first = _json_check(env, capsys)
    assert "digest:2026-11-28" in first["alerts"]["delivered"] and len(env["slack"].messages()) == 1
    again = _json_check(env, capsys, "--now", (NOW + dt.timedelta(minutes=30)).isoformat())
    assert again["alerts"]["delivered"] == []
    next_day = NOW + dt.timedelta(days=1)
    env["sim"].set_clock(next_day)
    doc = _json_check(env, capsys, "--now", next_day.isoformat())
    assert [k for k in doc["alerts"]["delivered"] if k.startswith("digest")] == ["digest:2026-11-29"]
    assert len(env["slack"].messages()) == 2, "the digest rides in the one message of that check"
    monkeypatch.setenv("BUDGET_CONFIG", json.dumps({**BUDGETS, "digest": {"enabled": False, "hour_utc": 18}}))
    day3 = NOW + dt.timedelta(days=2)
    env["sim"].set_clock(day3)
    assert _json_check(env, capsys, "--now", day3.isoformat())["alerts"]["delivered"] == []


def test_a_day_of_processing_lag_does_not_dip_the_forecast(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Complete days with a 1-day lag (through Nov 26): Nov 27 and today are projected, not counted as $0."""
    sim = env["sim"]
    if not sim.complete_days_only:
        pytest.skip("the processing lag is a complete-days behaviour")
    sim.set_lag(24 * 60, provider="anthropic")
    doc = _json_check(env, capsys, "--dry-run")
    acc = doc["providers"]["anthropic"]["accounts"][0]
    assert acc["freshness"]["complete_through"] == "2026-11-26"
    assert Decimal(acc["mtd_usd"]) == sim.expected_mtd("anthropic/main")
    settled = [v for d, v in sorted(sim.expected_daily("anthropic/main").items()) if d <= dt.date(2026, 11, 26)]
    assert len(settled) == 26 and all(v > 0 for v in settled)
    projected = sum(settled, Decimal(0)) + sum(settled[-7:], Decimal(0)) / 7 * 4
    assert doc["providers"]["anthropic"]["forecast_usd"] == str(projected.quantize(Decimal("0.01")))
