"""`doctor` against the local stack: simulator, Secret Manager fake, fake GCS, BigQuery emulator, Slack receiver.

Every key and the webhook are sentinel strings; each test ends by proving none of them appeared in
the table, the JSON, the HTTP answer or a log line. Each injected fault must show as its own row.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import record_fault

import devservers
import doctor
import logs
import main
from devservers.dry_run_proxy import DryRunProxy
from runtime import PROCESS
from simulator import Scenario, SecretManagerFake, Simulator, SlackReceiver
from simulator import billing_export as billing

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
PROJECT = "demo-project"
TABLE = f"{PROJECT}.billing.gcp_billing_export_v1_01ABCD_234567_89ABCD"
SM = "projects/doctor-test/secrets"
KEYS = {
    "prod": "sk-admin-SENTINEL-prod-0f1e2d3c4b5a",
    "research": "sk-admin-SENTINEL-research-9a8b7c6d",
    "main": "sk-ant-admin01-SENTINEL-main-5e4f3a2b",
    "core": "xai-mgmt-SENTINEL-core-77aa66bb55cc",
    "idle": "xai-mgmt-SENTINEL-idle-11dd22ee33ff",
}
HOOK_SECRET = "T0SENTINEL/B0SENTINEL/hooksecretSENTINEL42"


def _scenario() -> Scenario:
    doc = json.loads((Path(__file__).resolve().parent.parent / "simulator/scenarios/demo.json").read_text())
    doc["accounts"] = [a for a in doc["accounts"] if a["provider"] in ("openai", "anthropic", "xai")]
    core = next(a for a in doc["accounts"] if a["provider"] == "xai")
    idle = {**core, "label": "idle", "team_id": "0b6c3f1e-idle-team", "spend": {"base_daily_usd": "0"}}
    doc["accounts"].append(idle)
    for a in doc["accounts"]:
        a["key"] = KEYS[a["label"]]
    return Scenario.from_dict(doc)


def _budgets(**gemini: Any) -> dict[str, Any]:
    return {
        "total_budget_usd": 20000,
        "providers": {
            "openai": {
                "budget_usd": 9000,
                "accounts": [
                    {"label": "prod", "key_secret": f"{SM}/openai-prod/versions/latest"},
                    {"label": "research", "key_env": "SIM_OPENAI_RESEARCH_KEY"},
                ],
            },
            "anthropic": {"budget_usd": 5000, "accounts": [{"label": "main", "key_env": "SIM_ANTHROPIC_KEY"}]},
            "xai": {
                "budget_usd": 1000,
                "accounts": [
                    {
                        "label": "core",
                        "team_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                        "key_secret": f"{SM}/xai-core/versions/latest",
                    },
                    {"label": "idle", "team_id": "0b6c3f1e-idle-team", "key_env": "SIM_XAI_IDLE_KEY"},
                ],
            },
            "gemini": {"budget_usd": 500, "accounts": [{"label": "export", "billing_export_table": TABLE, **gemini}]},
        },
    }


@pytest.fixture(scope="module")
def stack(bigquery_emulator: Any) -> Iterator[dict[str, Any]]:
    client = devservers.bigquery_client(bigquery_emulator)
    billing.create_export_table(client, TABLE, replace=True)
    billing.load(client, TABLE, billing.scenario_rows("2026-11"))
    with (
        Simulator.start(_scenario(), clock=NOW) as sim,
        SlackReceiver.start() as slack,
        SecretManagerFake.start() as sm,
    ):
        yield {"sim": sim, "slack": slack, "sm": sm, "bq": bigquery_emulator}


@pytest.fixture
def env(stack: dict[str, Any], gcs_bucket: str) -> Iterator[dict[str, Any]]:
    """A ready configuration; tests break one thing each. Yields {env, stack..., outputs, log}."""
    sim, slack, sm = stack["sim"], stack["slack"], stack["sm"]
    sim.reset()
    sim.set_clock(NOW)
    slack.reset()
    sm.clear_faults()
    sm.set_secret(f"{SM}/openai-prod", KEYS["prod"])
    sm.set_secret(f"{SM}/xai-core", KEYS["core"])
    sm.set_secret(f"{SM}/slack-webhook", f"{slack.url}/services/{HOOK_SECRET}")
    values = {
        **sim.env(),
        "BUDGET_CONFIG": json.dumps(_budgets()),
        "SIM_OPENAI_RESEARCH_KEY": KEYS["research"],
        "SIM_ANTHROPIC_KEY": KEYS["main"],
        "SIM_XAI_IDLE_KEY": KEYS["idle"],
        "SECRET_MANAGER_EMULATOR_HOST": sm.url,
        "SLACK_WEBHOOK_SECRET": f"{SM}/slack-webhook/versions/latest",
        "STATE_BACKEND": "gcs",
        "STATE_BUCKET": gcs_bucket,
        "BIGQUERY_EMULATOR_HOST": stack["bq"].url,
        "BIGQUERY_JOB_PROJECT": PROJECT,
    }
    log = io.StringIO()
    logs.setup("DEBUG", stream=log)
    ctx = {**stack, "env": values, "outputs": [], "log": log}
    yield ctx
    haystacks = [log.getvalue(), *ctx["outputs"], json.dumps(slack.messages())]
    for hay in haystacks:
        for secret in [*KEYS.values(), HOOK_SECRET, "SENTINEL"]:
            assert secret not in hay, "a secret leaked into doctor output, a log line or a Slack payload"


def _run(ctx: dict[str, Any], *, post_test: bool = False) -> doctor.Report:
    report = doctor.run(ctx["env"], post_test=post_test, now=NOW)
    ctx["outputs"].extend([doctor.table(report), doctor.to_json_text(report)])
    return report


def _row(report: doctor.Report, check: str, target: str) -> doctor.Row:
    (row,) = [r for r in report.rows if r.check == check and r.target.startswith(target)]
    return row


def _expect(report: doctor.Report, fault: str, check: str, target: str, status: str) -> doctor.Row:
    """The row for `fault` has `status`; recorded in the session's fault table (fault → expected → observed)."""
    row = _row(report, check, target)
    record_fault(
        f"doctor: {fault}", f"{check} {target}: {status.upper()}", f"{row.check} {row.target}: {row.status.upper()}"
    )
    assert row.status == status and row.target == target, row.detail
    return row


def _failed(report: doctor.Report) -> list[tuple[str, str]]:
    return [(r.check, r.target) for r in report.rows if r.status == "fail"]


def _set_secret(ctx: dict[str, Any], name: str, value: str) -> None:
    ctx["sm"].set_secret(f"{SM}/{name}", value)


# --- the ready stack -----------------------------------------------------------------------------


@pytest.mark.emulator
def test_ready_stack_prints_one_ok_row_per_check(env: dict[str, Any]) -> None:
    """Against the healthy local stack every row is ok (or skip for the opt-in post) and exit is 0."""
    report = _run(env)
    assert _failed(report) == [] and report.exit_code == 0
    rows = {(r.check, r.target.split(" ")[0]): r for r in report.rows}
    for scope in ("openai/prod", "openai/research", "anthropic/main", "xai/core", "xai/idle"):
        assert rows[("secret", scope)].status == "ok"
        assert rows[("provider", scope)].status == "ok", rows[("provider", scope)].detail
    assert rows[("secret", "slack")].status == "ok"
    assert rows[("slack", "webhook")].status == "skip"
    table = doctor.table(report)
    assert table.splitlines()[0].split() == ["check", "target", "status", "detail"]
    assert table.rstrip().endswith("READY")
    assert env["slack"].messages() == []  # nothing posted without --post-test


@pytest.mark.emulator
def test_one_read_call_per_account_and_nothing_mutating(env: dict[str, Any]) -> None:
    """Each keyed account gets exactly one request, none of them mutating; state and Slack are left alone."""
    _run(env)
    calls = [(r["provider"], r["account"], r["method"]) for r in env["sim"].requests()]
    assert sorted(calls) == [
        ("anthropic", "main", "GET"), ("openai", "prod", "GET"), ("openai", "research", "GET"),
        ("xai", "core", "POST"), ("xai", "idle", "POST"),
    ]  # fmt: skip
    assert not any(r["mutating"] for r in env["sim"].requests())
    assert env["slack"].attempts() == 0


@pytest.mark.emulator
def test_provider_rows_report_what_the_answers_showed(env: dict[str, Any]) -> None:
    """OpenAI grouping, Anthropic's newest bucket end and today, xAI's shape are facts in the rows."""
    report = _run(env)
    openai = _row(report, "provider", "openai/prod").facts
    assert openai["grouped"] == {"line_item": True, "project_id": True} and openai["results"] > 0
    anthropic = _row(report, "provider", "anthropic/main").facts
    assert anthropic["today_served"] is True
    assert dt.datetime.fromisoformat(anthropic["newest_bucket_end"]) == dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    idle = _row(report, "provider", "xai/idle")
    assert "time_series" in idle.facts["shape"] and "$0" in idle.detail


@pytest.mark.emulator
def test_gemini_row_is_a_dry_run_with_monthly_cost_and_freshness(env: dict[str, Any]) -> None:
    """The Gemini row dry-runs the real query (bills nothing) and reports bytes, 720-run cost, export_time."""
    with DryRunProxy(env["bq"].url, bytes_processed=300 * 1024**2) as proxy:
        env["env"]["BIGQUERY_EMULATOR_HOST"] = proxy.url
        row = _row(_run(env), "provider", "gemini/export")
    assert proxy.dry_runs == 1
    assert row.status == "ok", row.detail
    assert row.facts["bytes_processed"] == 300 * 1024**2 and row.facts["would_hit_cap"] is False
    assert row.facts["monthly_bytes_billed"] == 720 * 300 * 1024**2
    assert row.facts["monthly_cost_usd"] == "1.29"  # 210.9 GiB at $6.25/TiB
    newest = dt.datetime.fromisoformat(row.facts["newest_export_time"])
    assert NOW - dt.timedelta(hours=24) < newest <= NOW


@pytest.mark.emulator
def test_tiny_query_is_billed_the_ten_mib_minimum(env: dict[str, Any]) -> None:
    """The emulator meters 0 bytes; the monthly estimate still counts BigQuery's 10 MiB per-query minimum."""
    row = _row(_run(env), "provider", "gemini/export")
    assert row.facts["bytes_processed"] == 0
    assert row.facts["monthly_bytes_billed"] == 720 * 10 * 1024**2


# --- each fault is its own row ------------------------------------------------------------------


@pytest.mark.emulator
@pytest.mark.parametrize(
    ("fault", "reason"),
    [("missing", "not_found"), ("http_403", "permission_denied"), ("empty", "empty")],
)
def test_each_secret_failure_is_its_own_row(env: dict[str, Any], fault: str, reason: str) -> None:
    """Not found, permission denied and an empty payload each fail the secret's row, and skip its provider."""
    budgets = _budgets()
    if fault == "missing":
        budgets["providers"]["openai"]["accounts"][0]["key_secret"] = f"{SM}/nothing-here/versions/latest"
        env["env"]["BUDGET_CONFIG"] = json.dumps(budgets)
    elif fault == "empty":
        _set_secret(env, "openai-prod", "")
    else:
        env["sm"].add_fault("http_403", secret=f"{SM}/openai-prod")
    report = _run(env)
    row = _expect(report, f"secret {fault}", "secret", "openai/prod key", "fail")
    assert row.facts["reason"] == reason
    assert _row(report, "provider", "openai/prod").status == "skip"
    assert _failed(report) == [("secret", "openai/prod key")] and report.exit_code == 1


@pytest.mark.emulator
def test_unset_key_variable_is_its_own_row(env: dict[str, Any]) -> None:
    """An account whose key_env is not set fails its own secret row only."""
    del env["env"]["SIM_ANTHROPIC_KEY"]
    report = _run(env)
    _expect(report, "key variable unset", "secret", "anthropic/main key", "fail")
    assert _failed(report) == [("secret", "anthropic/main key")]
    assert _row(report, "secret", "anthropic/main").facts["reason"] == "unset"


@pytest.mark.emulator
def test_trailing_whitespace_is_reported_stripped(env: dict[str, Any]) -> None:
    """A key stored with a trailing newline is a warning ('stripped'); the stripped key still works."""
    _set_secret(env, "xai-core", KEYS["core"] + "\n")
    env["env"]["SIM_OPENAI_RESEARCH_KEY"] = KEYS["research"] + "  "
    report = _run(env)
    for scope in ("xai/core", "openai/research"):
        row = _expect(report, f"trailing whitespace ({scope})", "secret", f"{scope} key", "warn")
        assert row.facts["reason"] == "stripped" and "stripped" in row.detail
        assert _row(report, "provider", scope).status == "ok"
    assert report.exit_code == 0


@pytest.mark.emulator
def test_webhook_secret_failure_is_its_own_row(env: dict[str, Any]) -> None:
    """A webhook secret that cannot be read fails its row; the Slack row is skipped, not posted."""
    env["sm"].add_fault("http_403", secret=f"{SM}/slack-webhook")
    report = _run(env, post_test=True)
    _expect(report, "webhook secret 403", "secret", "slack webhook", "fail")
    assert _failed(report) == [("secret", "slack webhook")]
    assert _row(report, "slack", "webhook").status == "skip"
    assert env["slack"].attempts() == 0


@pytest.mark.emulator
def test_provider_401_is_its_own_row(env: dict[str, Any]) -> None:
    """A 401 from one account fails that account's provider row with cause auth; the others stay ok."""
    env["sim"].add_fault("openai", "http_401", account="prod")
    report = _run(env)
    row = _expect(report, "provider 401", "provider", "openai/prod", "fail")
    assert row.facts == {"cause": "auth", "http_status": 401}
    assert _failed(report) == [("provider", "openai/prod")]


@pytest.mark.emulator
def test_missing_bucket_fails_the_write_row(env: dict[str, Any]) -> None:
    """A state bucket that does not exist fails the create-with-precondition row."""
    env["env"]["STATE_BUCKET"] = "no-such-bucket-doctor"
    report = _run(env)
    _expect(report, "state bucket missing", "state", "create-only write", "fail")
    assert _failed(report) == [("state", "create-only write")]
    row = _row(report, "state", "create-only write")
    assert "NotFound" in row.detail and "STATE_BUCKET" in row.detail
    assert row.facts["object"].startswith("gs://no-such-bucket-doctor/llm-budget-alert/state.json.doctor-")


@pytest.mark.emulator
def test_state_probe_never_touches_the_state_object(env: dict[str, Any], gcs_emulator: Any) -> None:
    """The probe object is created once, refused a second create, deleted; the real state object is untouched."""
    client = devservers.storage_client(gcs_emulator)
    bucket = client.bucket(env["env"]["STATE_BUCKET"])
    state = bucket.blob("llm-budget-alert/state.json")
    state.upload_from_string(b'{"version":1,"events":{},"health":{},"updated_at":null}')
    state.reload()
    before = state.generation
    report = _run(env)
    assert _row(report, "state", "gs://").detail.startswith(f"readable, generation {before}")
    assert _row(report, "state", "create-only").facts == {"precondition_enforced": True}
    assert [b.name for b in client.list_blobs(bucket)] == ["llm-budget-alert/state.json"]
    state.reload()
    assert state.generation == before


@pytest.mark.emulator
def test_corrupted_state_object_is_its_own_row(env: dict[str, Any], gcs_emulator: Any) -> None:
    """A state object that is not JSON fails the read row (the check would refuse to run)."""
    bucket = devservers.storage_client(gcs_emulator).bucket(env["env"]["STATE_BUCKET"])
    bucket.blob("llm-budget-alert/state.json").upload_from_string(b"not json")
    report = _run(env)
    location = f"gs://{env['env']['STATE_BUCKET']}/llm-budget-alert/state.json"
    _expect(report, "state object corrupted", "state", location, "fail")
    assert _failed(report) == [("state", location)]


def test_store_without_preconditions_fails_the_write_row(tmp_path: Path) -> None:
    """A store that lets a second create-only write through is reported: overlapping checks could both post."""
    from alerts.state import FileStore

    class Lax(FileStore):
        def write(self, data: bytes, *, if_generation: int) -> int:
            return super().write(data, if_generation=self._generation())

    rows = doctor._state_probe(Lax(tmp_path / "probe.json"), [])
    assert rows[-1].status == "fail" and rows[-1].facts == {"precondition_enforced": False}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.emulator
def test_webhook_404_with_post_test_is_its_own_row(env: dict[str, Any]) -> None:
    """--post-test against a revoked webhook (404 no_service) fails the Slack row."""
    env["slack"].add_fault("no_service")
    report = _run(env, post_test=True)
    row = _expect(report, "webhook 404 with --post-test", "slack", "webhook", "fail")
    assert row.facts["http_status"] == 404 and "no_service" in row.detail
    assert _failed(report) == [("slack", "webhook")]


@pytest.mark.emulator
def test_post_test_sends_one_message(env: dict[str, Any]) -> None:
    """--post-test posts exactly one test message with a text fallback."""
    report = _run(env, post_test=True)
    assert _row(report, "slack", "webhook").status == "ok"
    (msg,) = env["slack"].messages()
    assert "doctor" in msg["text"] and msg["blocks"]


@pytest.mark.emulator
def test_dry_run_over_the_cap_is_its_own_row(env: dict[str, Any]) -> None:
    """A dry run estimating more than maximum_bytes_billed fails the Gemini row, before any real query."""
    env["env"]["BUDGET_CONFIG"] = json.dumps(_budgets(maximum_bytes_billed=1024**3))
    with DryRunProxy(env["bq"].url, bytes_processed=3 * 1024**3) as proxy:
        env["env"]["BIGQUERY_EMULATOR_HOST"] = proxy.url
        report = _run(env)
    row = _expect(report, "BigQuery dry run over the cap", "provider", "gemini/export", "fail")
    assert row.facts["would_hit_cap"] is True and "maximum_bytes_billed" in row.detail
    assert "newest_export_time" not in row.facts
    assert _failed(report) == [("provider", "gemini/export")]


@pytest.mark.emulator
def test_cap_below_the_ten_mib_minimum_would_be_hit(env: dict[str, Any]) -> None:
    """The cap is held against bytes billed (10 MiB minimum), so a 5 MiB cap fails even for a tiny query."""
    env["env"]["BUDGET_CONFIG"] = json.dumps(_budgets(maximum_bytes_billed=5 * 1024**2))
    row = _row(_run(env), "provider", "gemini/export")
    assert row.facts["bytes_processed"] == 0 and row.facts["bytes_billed_per_run"] == 10 * 1024**2
    assert row.status == "fail" and row.facts["would_hit_cap"] is True


@pytest.mark.emulator
def test_missing_export_table_is_its_own_row(env: dict[str, Any]) -> None:
    """A billing_export_table that does not exist fails the Gemini row as not found."""
    env["env"]["BUDGET_CONFIG"] = json.dumps(
        _budgets(billing_export_table=f"{PROJECT}.billing.gcp_billing_export_v1_X")
    )
    row = _expect(_run(env), "export table missing", "provider", "gemini/export", "fail")
    assert row.facts["cause"] == "not_found"


def test_broken_configuration_is_one_failed_row() -> None:
    """A budget document that does not parse is a failed config row and exit 1, nothing else runs."""
    report = doctor.run({"BUDGET_CONFIG": "{"}, now=NOW)
    assert [(r.check, r.status) for r in report.rows] == [("config", "fail")] and report.exit_code == 1


# --- entry points ---------------------------------------------------------------------------------


@pytest.mark.emulator
def test_cli_prints_the_table_and_exits_non_zero_on_a_fault(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python main.py doctor` prints the table; `--json` the same rows; a fault makes the exit code 1."""
    for k, v in env["env"].items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("BUDGET_CONFIG_FILE", raising=False)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    PROCESS.reset(logging_ready=True)
    env["sim"].add_fault("anthropic", "http_401")
    code = main.cli(["doctor"])
    out = capsys.readouterr().out
    env["outputs"].append(out)
    assert code == 1 and "NOT READY: 1 check(s) failed" in out
    assert any(line.startswith("provider") and "anthropic/main" in line and "FAIL" in line for line in out.splitlines())
    code = main.cli(["doctor", "--json"])
    out = capsys.readouterr().out
    env["outputs"].append(out)
    doc = json.loads(out)
    assert code == 1 and doc["ready"] is False and doc["exit_code"] == 1


@pytest.mark.emulator
def test_http_doctor_request_runs_doctor_not_the_check(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """POST {"doctor": true} answers the doctor document (200 ready, 503 not) and logs the table on its
    "doctor" line (how an operator reads it through the paused Scheduler job); a malformed one is 400."""
    from functions_framework import create_app

    for k, v in env["env"].items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("BUDGET_CONFIG_FILE", raising=False)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    PROCESS.reset(logging_ready=True)
    client = create_app(target="budget_check", source=str(Path(main.__file__))).test_client()
    resp = client.post("/", json={"doctor": True})
    env["outputs"].append(resp.get_data(as_text=True))
    assert resp.status_code == 200 and resp.get_json()["ready"] is True
    assert env["sim"].requests("openai") and env["slack"].messages() == []
    env["slack"].add_fault("no_service")
    resp = client.post("/", json={"doctor": True, "post_test": True})
    env["outputs"].append(resp.get_data(as_text=True))
    assert resp.status_code == 503
    assert [c["target"] for c in resp.get_json()["checks"] if c["status"] == "fail"] == ["webhook"]
    line = [r for r in caplog.records if r.getMessage() == "doctor"][-1]
    assert line.levelname == "ERROR" and line.fields["ready"] is False  # type: ignore[attr-defined]
    logged = line.fields["checks"]  # type: ignore[attr-defined]
    assert [(c["check"], c["target"], c["status"]) for c in logged] == [
        (c["check"], c["target"], c["status"]) for c in resp.get_json()["checks"]
    ]
    env["sim"].clear_requests()
    resp = client.post("/", json={"doctor": "yes"})
    assert resp.status_code == 400 and env["sim"].requests() == []
    env["slack"].clear_faults()
    resp = client.post("/", data='{"doctor": true}', content_type="application/x-www-form-urlencoded")
    env["outputs"].append(resp.get_data(as_text=True))
    assert resp.status_code == 200 and "checks" in resp.get_json(force=True)


def test_an_unclassified_probe_error_is_a_failed_row_not_a_crash() -> None:
    """A probe that raises something unexpected becomes one failed row; the other rows still print."""
    env = {
        "BUDGET_CONFIG": json.dumps({"total_budget_usd": 10, "providers": {"anthropic": {"budget_usd": 10}}}),
        "STATE_BACKEND": "gcs",
        "STATE_BUCKET": "any-bucket",
    }
    report = doctor.run(env, now=NOW, clients=doctor.Clients(storage_client=object()))
    assert [(r.check, r.status) for r in report.rows] == [
        ("config", "ok"), ("secret", "fail"), ("secret", "fail"), ("provider", "skip"), ("state", "fail"),
        ("slack", "skip"),
    ]  # fmt: skip
    assert _row(report, "state", "any-bucket").detail == "internal error: AttributeError"
