"""OpenAI hard spend limits: strict parsing, read-only calls, headroom in the JSON and Slack, and the
"limit before month end" alert, once a month across hourly runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import make_deps, report_for

import check
import output
from alerts import limits
from alerts.events import Kind, Severity
from alerts.state import FileStore
from check import default_deps, run_check
from config import SecretResolver, Settings
from errors import Cause, ProviderError
from models import UTC, CostCell, Deadline, Headroom, usd
from providers import openai
from providers.openai import (
    MAX_PROJECT_LIMITS,
    ORG_SPEND_LIMIT,
    PROJECT_SPEND_LIMIT,
    READ_CALLS,
    OpenAIAccount,
    OpenAICosts,
    SpendLimit,
    limit_projects,
    parse_spend_limit,
)
from simulator import Scenario, Simulator, SlackReceiver
from tools.replay import replay

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
ORG = "organization.spend_limit"
PROJECT = "project.spend_limit"
KEY = "sk-admin-limits-test-000001"
SCENARIO: dict[str, Any] = {
    "name": "limits",
    "accounts": [
        {
            "provider": "openai",
            "label": "prod",
            "key": KEY,
            "spend": {"base_daily_usd": "100"},
            "spend_limit_usd": "5000",  # projected $3,000: headroom, never an alert
            "project_spend_limits": {"proj_lim": "1440", "proj_gone": None},  # proj_lim: $50/day → Nov 29
            "breakdown": {
                "line_item": [{"id": "gpt-5.4, input", "weight": 1}],
                "project_id": [
                    {"id": "proj_lim", "weight": 1},
                    {"id": "proj_free", "weight": 1},  # no limit set: threshold 0
                ],
            },
        }
    ],
}
BUDGETS = {
    "total_budget_usd": 100000,
    "thresholds_pct": [100],
    "forecast_thresholds_pct": [100],
    "providers": {"openai": {"budget_usd": 90000, "accounts": [{"label": "prod", "key_env": "LIMITS_OPENAI"}]}},
    "digest": {"enabled": False},
}


def _doc(object_type: str = ORG, cents: Any = 200000, status: str = "inactive", **over: Any) -> dict[str, Any]:
    """A spend-limit answer in the SDK's shape (openai-node OrganizationSpendLimit / ProjectSpendLimit)."""
    doc = {
        "object": object_type,
        "threshold_amount": cents,
        "currency": "USD",
        "interval": "month",
        "enforcement": {"status": status},
    }
    doc.update(over)
    return doc


# --- parsing ---------------------------------------------------------------------------------------


def test_threshold_amount_is_whole_cents() -> None:
    """200000 cents is a $2,000.00 limit; the enforcement status is carried as said."""
    assert parse_spend_limit(_doc(PROJECT, 200000, "enforcing"), object_type=PROJECT) == SpendLimit(
        Decimal(2000), True, "enforcing"
    )
    assert parse_spend_limit(_doc(ORG, 1, "inactive"), object_type=ORG) == SpendLimit(
        Decimal("0.01"), False, "inactive"
    )


def test_zero_threshold_is_no_limit() -> None:
    """threshold_amount 0 means no hard limit, not a $0 limit already reached."""
    assert parse_spend_limit(_doc(cents=0), object_type=ORG) is None


def test_an_unknown_enforcement_status_keeps_the_limit() -> None:
    """The SDK types the status as an open string: a new value keeps the limit, its status unknown."""
    parsed = parse_spend_limit(_doc(status="paused"), object_type=ORG)
    assert parsed is not None and parsed.enforcing is None and parsed.usd == Decimal(2000)


@pytest.mark.parametrize(
    "doc",
    [
        _doc(cents="200000"),
        _doc(cents=True),
        _doc(cents=2000.5),
        _doc(cents=-1),
        _doc(cents=None),
        _doc(currency="EUR"),
        _doc(currency=None),
        _doc(interval="year"),
        _doc(object_type=PROJECT),  # the project's object where the organisation's is expected
        _doc(enforcement="enforcing"),
        _doc(enforcement={}),
        {"error": {"message": "Internal error", "type": "server_error"}},
        {"object": ORG},
    ],
)
def test_drifted_limit_is_bad_response(doc: dict[str, Any]) -> None:
    """Strings, booleans, floats, other currencies or intervals, a missing status and error envelopes raise."""
    with pytest.raises(ProviderError) as exc:
        parse_spend_limit(doc, object_type=ORG)
    assert exc.value.cause is Cause.BAD_RESPONSE


def test_projects_read_are_the_named_ones_then_the_largest_spenders() -> None:
    """Team-named projects first (even with no spend), then by spend, at most the cap; bad ids never."""
    day = dt.date(2026, 11, 1)
    cells = [CostCell(day, (("project", f"proj_{i:02d}"),), Decimal(i)) for i in range(1, 30)] + [
        CostCell(day, (("project", None),), Decimal(999)),
        CostCell(day, (("project", "../admin"),), Decimal(999)),
    ]
    wanted, skipped = limit_projects(cells, {"proj_named", "proj_03"})
    assert len(wanted) == MAX_PROJECT_LIMITS and wanted[:2] == ("proj_03", "proj_named")
    assert wanted[2:5] == ("proj_29", "proj_28", "proj_27")
    assert len(skipped) == 29 + 1 - MAX_PROJECT_LIMITS and "../admin" not in (*wanted, *skipped)


# --- the fetch, against a fake transport -----------------------------------------------------------


def _costs_page() -> dict[str, Any]:
    start = int(dt.datetime(2026, 11, 27, tzinfo=UTC).timestamp())
    rows = [("proj_a", 30.0), ("proj_b", 12.5), (None, 1.0)]
    results = [{"amount": {"value": v, "currency": "usd"}, "line_item": "x", "project_id": p} for p, v in rows]
    return {"object": "page", "has_more": False, "data": [{"start_time": start, "results": results}]}


def _fetch(limit_answers: dict[str, httpx.Response], **deps: Any) -> tuple[Any, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.url.path == openai.PATH:
            return httpx.Response(200, json=_costs_page())
        return limit_answers.get(req.url.path, httpx.Response(404, json={"error": {"message": "not found"}}))

    src = OpenAICosts(OpenAIAccount(), make_deps(handler, **deps))
    return src.fetch(src.billing_period(NOW), Deadline(30)), seen


def test_org_and_project_limits_become_headroom() -> None:
    """The org limit is the account's headroom; each project's is a limit below it, used = its cells."""
    rep, seen = _fetch(
        {
            "/v1/organization/spend_limit": httpx.Response(200, json=_doc(ORG, 10000)),
            "/v1/organization/projects/proj_a/spend_limit": httpx.Response(200, json=_doc(PROJECT, 2500, "enforcing")),
            "/v1/organization/projects/proj_b/spend_limit": httpx.Response(200, json=_doc(PROJECT, 0)),
        }
    )
    assert rep.headroom == Headroom(
        Decimal(100), Decimal("43.5"), Decimal("56.5"), openai.LIMIT_SOURCE,
        enforcing=False, refusal=openai.ORG_REFUSAL, basis=openai.LIMIT_BASIS,
    )  # fmt: skip
    assert [(h.name, h.match, h.used_usd, h.remaining_usd, h.enforcing) for h in rep.limits] == [
        ("project proj_a", (("project", "proj_a"),), Decimal(30), Decimal(-5), True)
    ]
    assert rep.notes == () and rep.requests == 4 and {r.method for r in seen} == {"GET"}


def test_no_limit_anywhere_is_no_headroom_and_no_note() -> None:
    """404 for the organisation and for every project: nothing to show, nothing failed."""
    rep, _ = _fetch({})
    assert rep.headroom is None and rep.limits == () and rep.notes == ()
    assert rep.mtd_usd == Decimal("43.5")


def test_a_failed_limit_is_a_note_never_a_failed_account() -> None:
    """A 500 and a drifted answer become notes; the account's month-to-date stands, the rest is read."""
    rep, _ = _fetch(
        {
            "/v1/organization/spend_limit": httpx.Response(500, json={"error": {"message": "boom"}}),
            "/v1/organization/projects/proj_a/spend_limit": httpx.Response(200, json=_doc(PROJECT, "2500")),
            "/v1/organization/projects/proj_b/spend_limit": httpx.Response(200, json=_doc(PROJECT, 9999)),
        }
    )
    assert rep.mtd_usd == Decimal("43.5") and rep.headroom is None
    assert [h.name for h in rep.limits] == ["project proj_b"]
    assert rep.notes == (
        "spend-limit context unavailable: organization: provider server error",
        "spend-limit context unavailable: 1 project(s) (unexpected response shape): proj_a",
    )


def test_projects_the_teams_name_are_read_without_spend() -> None:
    """A project a team names for this account is read even before it has spent this month."""
    _, seen = _fetch({}, owner_ids={"openai/default": frozenset({"proj_quiet"})})
    assert "/v1/organization/projects/proj_quiet/spend_limit" in {r.url.path for r in seen}


def test_a_call_outside_read_calls_is_refused_before_sending() -> None:
    """Only the three GETs may leave the process: a POST to the same path is refused locally."""
    assert {("GET", openai.PATH), ORG_SPEND_LIMIT, PROJECT_SPEND_LIMIT} == READ_CALLS
    sent: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        sent.append(req)
        return httpx.Response(200, json=_doc())

    with httpx.Client(base_url="https://api.openai.com", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ValueError, match="not a read call"):
            openai._call(client, ("POST", ORG_SPEND_LIMIT[1]), deadline=Deadline(5))
        with pytest.raises(ValueError, match="not a read call"):
            openai._call(client, ("DELETE", PROJECT_SPEND_LIMIT[1]), deadline=Deadline(5), project="proj_a")
    assert sent == []


def test_the_cells_keep_project_beside_what_the_teams_asked_for() -> None:
    """With teams asking for line items only, cells are joint over line item and project."""
    rep, _ = _fetch({}, cell_dims={"openai": ("line_item",)})
    assert rep.cell_dims == ("line_item", "project")
    assert sum((c.amount for c in rep.cells), Decimal(0)) == rep.mtd_usd


# --- the alert (pure) --------------------------------------------------------------------------------


def _with_limit(daily: list[str], limit: str, *, name: str = "", cells: tuple[CostCell, ...] = ()) -> Any:
    r = report_for("openai", "prod", NOW, daily)
    assert r.report is not None
    used = sum((c.amount for c in cells), Decimal(0)) if name else r.report.mtd_usd
    room = Headroom(
        Decimal(limit), used, Decimal(limit) - used, "test limit",
        name=name, match=(("project", name.split()[-1]),) if name else (),
        refusal="429 (`limit_code`)", basis="by the test's month-to-date",
    )  # fmt: skip
    rep = dataclasses.replace(r.report, cells=cells, cell_dims=("project",))
    rep = dataclasses.replace(rep, limits=(room,)) if name else dataclasses.replace(rep, headroom=room)
    return dataclasses.replace(r, report=rep)


def test_a_limit_the_forecast_reaches_before_month_end_alerts() -> None:
    """$100/day for 27 settled days against $2,900: reached around Nov 29, one warning with the vendor's words."""
    r = _with_limit(["100"] * 27 + ["75"], "2900")
    [event] = limits.limit_events([r])
    assert event.key == "limit:2026-11:openai/prod" and event.kind is Kind.LIMIT and event.scope == "openai/prod"
    assert event.severity is Severity.WARNING
    assert event.line == (
        "*OpenAI · prod*: its $2,900.00 hard limit is reached around Nov 29 (by the test's month-to-date, "
        "$2,775.00 so far); requests will then fail with 429 (`limit_code`)"
    )


def test_a_limit_beyond_month_end_does_not_alert() -> None:
    """$100/day reaches $3,100 on Dec 1: no alert, and the JSON's crossing day is empty."""
    r = _with_limit(["100"] * 27 + ["75"], "3100")
    assert limits.limit_events([r]) == [] and limits.views(r)[0].crossing_day is None


def test_a_project_limit_already_reached_says_has_reached() -> None:
    """Its cells' month-to-date at or over the limit: "has reached", crossed severity, keyed by the project."""
    days = [dt.date(2026, 11, d) for d in range(1, 29)]
    cells = tuple(CostCell(d, (("project", "proj_abc"),), Decimal(80)) for d in days)
    r = _with_limit(["100"] * 28, "2000", name="project proj_abc", cells=cells)
    [event] = limits.limit_events([r])
    assert event.key == "limit:2026-11:openai/prod:proj_abc" and event.severity is Severity.CROSSED
    assert event.line.startswith("*OpenAI · prod project proj_abc* has reached its $2,000.00 hard limit: $2,240.00")
    assert limits.views(r)[0].crossing_day == dt.date(2026, 11, 25)  # 25 × $80 = $2,000


def test_a_limit_that_refuses_nothing_never_alerts() -> None:
    """A headroom without `refusal` (a postpaid or prepaid balance) is shown, never a limit alert."""
    r = _with_limit(["100"] * 28, "100")
    assert r.report is not None and r.report.headroom is not None
    postpaid = dataclasses.replace(r.report.headroom, refusal=None)
    r = dataclasses.replace(r, report=dataclasses.replace(r.report, headroom=postpaid))
    assert limits.limit_events([r]) == [] and limits.views(r) == ()


# --- against the simulator: never writes, JSON, once a month ----------------------------------------


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator.start(Scenario.from_dict(SCENARIO), clock=NOW) as s:
        yield s


def _env(sim: Simulator, tmp_path: Path) -> dict[str, str]:
    return {
        **sim.env(),
        "BUDGET_CONFIG": json.dumps(BUDGETS),
        "LIMITS_OPENAI": KEY,
        "STATE_FILE": str(tmp_path / "state.json"),
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/unused",
    }


def _dry_run(sim: Simulator, tmp_path: Path) -> Any:
    env = _env(sim, tmp_path)
    settings = Settings.from_env(env)
    deps = default_deps(settings, SecretResolver(env=env))
    return run_check(settings, deps, sim.now(), dry_run=True, store=FileStore(tmp_path / "state.json"))


def test_headroom_json_matches_the_simulated_sums(sim: Simulator, tmp_path: Path) -> None:
    """The account's `limits` list: the org's and proj_lim's limit, used to the cent, crossing days."""
    outcome = _dry_run(sim, tmp_path)
    [acc] = output.to_json(outcome)["providers"]["openai"]["accounts"]
    by_project = sim.scenario.expected_breakdown("openai/prod", now=NOW)["project_id"]
    mtd = sim.scenario.expected_mtd("openai/prod", now=NOW)
    assert acc["limits"] == [
        {
            "name": "",
            "limit_usd": "5000.00",
            "used_usd": format(mtd.quantize(Decimal("0.01")), "f"),
            "remaining_usd": format((Decimal(5000) - mtd).quantize(Decimal("0.01")), "f"),
            "enforcing": False,
            "crossing_day": None,
        },
        {
            "name": "project proj_lim",
            "limit_usd": "1440.00",
            "used_usd": format(by_project["proj_lim"].quantize(Decimal("0.01")), "f"),
            "remaining_usd": format((Decimal(1440) - by_project["proj_lim"]).quantize(Decimal("0.01")), "f"),
            "enforcing": False,
            "crossing_day": "2026-11-29",
        },
    ]
    assert acc["notes"] == [] and output.to_json(outcome)["alerts"]["holding"] == ["limit:2026-11:openai/prod:proj_lim"]
    left = usd(Decimal(1440) - by_project["proj_lim"])
    assert f"project proj_lim: {left} left of $1,440.00" in json.dumps(outcome.payload["blocks"])


def test_the_alerter_never_writes_a_spend_limit(sim: Simulator, tmp_path: Path) -> None:
    """A check sends GETs only; the simulator answers and records a write, so the assertion can fail."""
    _dry_run(sim, tmp_path)
    sent = sim.requests("openai")
    assert sent and all(r["method"] == "GET" and not r["mutating"] for r in sent)
    paths = {r["path"] for r in sent}
    assert {"/v1/organization/spend_limit", "/v1/organization/projects/proj_lim/spend_limit"} <= paths
    with httpx.Client(base_url=sim.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        for method in ("POST", "DELETE"):
            assert client.request(method, "/v1/organization/projects/proj_lim/spend_limit").status_code == 405
    assert [r["method"] for r in sim.requests("openai") if r["mutating"]] == ["POST", "DELETE"]


def test_the_simulator_answers_the_sdk_shape(sim: Simulator) -> None:
    """Unset → threshold 0, null → 404, enforcing once the month-to-date reaches the limit."""
    sim.set_clock(dt.datetime(2026, 11, 30, 12, tzinfo=UTC))
    with httpx.Client(base_url=sim.url, headers={"Authorization": f"Bearer {KEY}"}) as client:

        def get(project: str) -> httpx.Response:
            return client.get(f"/v1/organization/projects/{project}/spend_limit")

        assert get("proj_free").json() == _doc(PROJECT, 0, "inactive")
        assert get("proj_gone").status_code == 404 and get("proj_unknown").status_code == 404
        assert get("proj_lim").json() == _doc(PROJECT, 144000, "enforcing")
        assert client.get("/v1/organization/spend_limit").json() == _doc(ORG, 500000, "inactive")


@pytest.mark.parametrize(
    ("mode", "note"),
    [
        ("error_envelope_200", "unexpected response shape"),
        ("drift_amount_type", "unexpected response shape"),
        ("foreign_currency", "unexpected response shape"),
        ("http_500", "provider server error"),
    ],
)
def test_simulated_limit_faults_are_notes(sim: Simulator, tmp_path: Path, mode: str, note: str) -> None:
    """An envelope, a string amount, EUR or a 500 on proj_lim's limit: a note; month-to-date and the rest stand."""
    sim.add_fault("openai", mode, endpoint="projects/proj_lim/spend_limit")
    outcome = _dry_run(sim, tmp_path)
    [r] = outcome.results
    assert r.report is not None and r.report.mtd_usd == sim.scenario.expected_mtd("openai/prod", now=NOW)
    assert r.report.headroom is not None and r.report.limits == ()
    assert r.report.notes == (f"spend-limit context unavailable: 1 project(s) ({note}): proj_lim",)
    assert not [e for e in outcome.events_now if e.kind == "limit"]


def test_the_limit_alert_fires_once_a_month_across_hourly_runs(sim: Simulator, tmp_path: Path) -> None:
    """Nov 28 → Dec 2 hourly: proj_lim's alert is said once (projected, then reached: one key), the org's never."""
    start, end = dt.datetime(2026, 11, 28, 0, tzinfo=UTC), dt.datetime(2026, 12, 2, 0, tzinfo=UTC)
    with SlackReceiver.start() as slack:
        env = {**_env(sim, tmp_path), "SLACK_WEBHOOK_URL": slack.hook_url}
        out = io.StringIO()
        with redirect_stdout(out):
            code = replay(
                Settings.from_env(env), SecretResolver(env=env), start, end, dt.timedelta(hours=1),
                simulator=sim.url, as_json=True,
            )  # fmt: skip
        assert code == 0
        fired = [json.loads(x) for x in out.getvalue().splitlines() if x.startswith("{")]
        limit_keys = [(x["at"], x["event"]) for x in fired if x["event"].startswith("limit:")]
        assert limit_keys == [("2026-11-28T00:00:00+00:00", "limit:2026-11:openai/prod:proj_lim")]
        texts = [m["text"] for m in slack.messages()]
        assert sum("project proj_lim*: its $1,440.00 hard limit is reached around Nov 29" in t for t in texts) == 1
    # The limit was really reached within the replay (its line turned to "has reached"), and not said again.
    later = sim.scenario.expected_breakdown("openai/prod", now=dt.datetime(2026, 11, 30, 12, tzinfo=UTC))
    assert later["project_id"]["proj_lim"] > Decimal(1440)


def test_the_projects_teams_name_reach_the_source_of_each_account_they_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """`owner_ids`: a team's project ids land on the accounts its match names (all of them when it names none)."""
    from support import budgets

    doc = budgets(
        providers={
            "openai": {
                "budget_usd": 500,
                "accounts": [{"label": "prod", "key_env": "A"}, {"label": "lab", "key_env": "B"}],
            }
        },
        teams={
            "search": {"budget_usd": 100, "match": {"openai": {"accounts": ["prod"], "project_ids": ["proj_s"]}}},
            "support": {"budget_usd": 100, "match": {"openai": {"project_ids": ["proj_t"]}}},
        },
    )
    assert doc.owner_ids() == {"openai/prod": {"proj_s", "proj_t"}, "openai/lab": {"proj_t"}}
    env = {"BUDGET_CONFIG": doc.model_dump_json(exclude_none=True)}
    settings = Settings.from_env(env)
    seen: list[Any] = []

    def spy(provider: str, account: Any, deps: Any) -> Any:
        seen.append(deps.owner_ids)
        raise ProviderError(Cause.CLIENT_ERROR, "spy: no fetch")

    monkeypatch.setattr(check, "build_source", spy)
    results = check.fetch_all(settings, make_deps(), NOW, Deadline(5))  # a caller's own deps, as in a replay
    assert len(results) == 2 and seen == [doc.owner_ids()] * 2
