"""The dead-man's switch (terraform/monitoring.tf) against the log line the code really writes.

The real check runs (CLI, against the local simulator and Slack receiver) and writes its "check
finished" line; the line becomes the LogEntry Cloud Logging stores for a gen2 function; the
log-based metric's filter, taken from Terraform's own evaluation of locals.tf, is evaluated against
it by a small evaluator of the Logging query language subset the module uses, and the metric's
label extractor yields the outcome the alert policies count. The evaluator is itself tested on
entries that must not match.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest

import logs
import main
from runtime import PROCESS
from simulator import Scenario, Simulator, SlackReceiver

REPO = Path(__file__).resolve().parents[1]
TF = REPO / "terraform"
HCL_OPTIONS = hcl2.SerializationOptions(explicit_blocks=False, strip_string_quotes=True, with_comments=False)
FUNCTION = "llm-budget-check"  # local.function_name for the default name_prefix
NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
KEYS = {"prod": "sk-admin-monitoring-prod-0f1e2d3c", "main": "sk-ant-admin01-monitoring-main-5e4f"}
BUDGETS = {
    "total_budget_usd": 14000,
    "providers": {
        "openai": {"budget_usd": 9000, "accounts": [{"label": "prod", "key_env": "SIM_OPENAI_PROD_KEY"}]},
        "anthropic": {"budget_usd": 5000, "accounts": [{"label": "main", "key_env": "SIM_ANTHROPIC_KEY"}]},
    },
}


# --- a Logging query language evaluator (the subset monitoring.tf uses) ------------------------
# https://cloud.google.com/logging/docs/view/logging-query-language: comparisons `field OP value`
# joined by AND, optional NOT; `=` is equality, `:` is "has" (substring, case-insensitive);
# severity compares by its order. Anything else raises, so the module cannot use syntax the
# test would silently misread.

SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"]
TERM = re.compile(
    r"^(?P<not>NOT\s+)?(?P<field>[A-Za-z_][\w.]*)\s*(?P<op>>=|<=|!=|=|>|<|:)\s*"
    r'(?P<value>"(?:[^"\\]|\\.)*"|[^\s"]+)$'
)


def _split_and(query: str) -> list[str]:
    terms, current, quoted, i = [], "", False, 0
    while i < len(query):
        if query[i] == '"' and (i == 0 or query[i - 1] != "\\"):
            quoted = not quoted
        if not quoted and query.startswith(" AND ", i):
            terms.append(current.strip())
            current, i = "", i + 5
            continue
        current += query[i]
        i += 1
    terms.append(current.strip())
    if quoted or any(not t or " OR " in t for t in terms):
        raise ValueError(f"unsupported query: {query!r}")
    return terms


def _field(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _term(term: str, entry: dict[str, Any]) -> bool:
    match = TERM.match(term)
    if not match:
        raise ValueError(f"unsupported term: {term!r}")
    field, op, raw = match["field"], match["op"], match["value"]
    value = json.loads(raw) if raw.startswith('"') else raw
    actual = _field(entry, field)
    if actual is None:
        result = False
    elif field == "severity" and op in {"=", "!=", ">=", "<=", ">", "<"}:
        have, want = SEVERITIES.index(str(actual)), SEVERITIES.index(value)
        result = {"=": have == want, "!=": have != want, ">=": have >= want, "<=": have <= want,
                  ">": have > want, "<": have < want}[op]  # fmt: skip
    elif op == "=":
        result = _text(actual) == value
    elif op == "!=":
        result = _text(actual) != value
    elif op == ":":
        result = value.lower() in _text(actual).lower()
    else:
        raise ValueError(f"ordering comparison on {field} is not used by the module: {term!r}")
    return result != bool(match["not"])


def matches(query: str, entry: dict[str, Any]) -> bool:
    return all(_term(t, entry) for t in _split_and(query))


def extract(extractor: str, entry: dict[str, Any]) -> Any:
    """A log-based metric label extractor of the form EXTRACT(field)."""
    match = re.fullmatch(r"EXTRACT\(([\w.]+)\)", extractor)
    if not match:
        raise ValueError(f"unsupported extractor: {extractor!r}")
    return _field(entry, match[1])


def cloud_run_entry(line: str, service: str = FUNCTION) -> dict[str, Any]:
    """The LogEntry Cloud Logging stores for one JSON line a gen2 function wrote to stderr.

    Special JSON fields (cloud.google.com/logging/docs/structured-logging): `severity` becomes the
    entry's severity and `time` its timestamp, both leaving jsonPayload; `message` stays in it.
    """
    payload = json.loads(line)
    severity = payload.pop("severity", "DEFAULT")
    timestamp = payload.pop("time", None)
    return {
        "logName": "projects/acme-llm-budget/logs/run.googleapis.com%2Fstderr",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "project_id": "acme-llm-budget",
                "service_name": service,
                "revision_name": f"{service}-00001-abc",
                "configuration_name": service,
                "location": "us-central1",
            },
        },
        "severity": severity,
        "timestamp": timestamp,
        "jsonPayload": payload,
    }


# --- the filter and the resources, from terraform/ ---------------------------------------------


def _resource(rtype: str, name: str) -> dict[str, Any]:
    with (TF / "monitoring.tf").open(encoding="utf-8") as f:
        doc = hcl2.load(f, serialization_options=HCL_OPTIONS)
    for entry in doc["resource"]:
        if rtype in entry and name in entry[rtype]:
            body: dict[str, Any] = entry[rtype][name]
            return body
    raise AssertionError(f"monitoring.tf has no {rtype}.{name}")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """locals.checks_completed_filter and deadman_window as Terraform evaluates them (default inputs)."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform binary not on PATH: cannot evaluate locals.tf")
    from test_terraform import _console_json, _example_tfvars_text

    tmp = tmp_path_factory.mktemp("console")
    return dict(
        _console_json(
            tmp,
            _example_tfvars_text(),
            "{ filter = local.checks_completed_filter, window = local.deadman_window, name = local.function_name }",
        )
    )


# --- real lines from the real check ------------------------------------------------------------


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Simulator, SlackReceiver]]:
    doc = json.loads((REPO / "simulator/scenarios/demo.json").read_text(encoding="utf-8"))
    wanted = {("openai", "prod"), ("anthropic", "main")}
    doc["accounts"] = [a for a in doc["accounts"] if (a["provider"], a["label"]) in wanted]
    for a in doc["accounts"]:
        a["key"] = KEYS[a["label"]]
    with Simulator.start(Scenario.from_dict(doc), clock=NOW) as sim, SlackReceiver.start() as slack:
        yield sim, slack


@pytest.fixture
def run_check(
    servers: tuple[Simulator, SlackReceiver], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Run `main.py check` once per call (fresh alert state) and return its log lines."""
    sim, slack = servers
    sim.reset()
    sim.set_clock(NOW)
    slack.reset()
    for key, value in {
        **sim.env(),
        "BUDGET_CONFIG": json.dumps(BUDGETS),
        "SIM_OPENAI_PROD_KEY": KEYS["prod"],
        "SIM_ANTHROPIC_KEY": KEYS["main"],
        "SLACK_WEBHOOK_URL": f"{slack.url}/services/T0/B0/monitoring",
        "CHECK_DEADLINE_SECONDS": "30",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("BUDGET_CONFIG_FILE", "SLACK_WEBHOOK_SECRET", "STATE_BACKEND"):
        monkeypatch.delenv(key, raising=False)
    PROCESS.reset(logging_ready=True)  # a fresh process whose logging is already set up

    def run(*args: str) -> list[str]:
        monkeypatch.setenv("STATE_FILE", str(tmp_path / f"state-{len(list(tmp_path.iterdir()))}.json"))
        stream = io.StringIO()
        logs.setup("INFO", stream=stream)
        main.cli(["check", "--now", NOW.isoformat(), *args])
        return [line for line in stream.getvalue().splitlines() if line.strip()]

    yield run, sim, slack


def _finished(lines: list[str]) -> str:
    finished = [line for line in lines if json.loads(line).get("message") == "check finished"]
    assert len(finished) == 1, f"expected one 'check finished' line, got {lines}"
    return finished[0]


def test_filter_matches_the_real_line_of_each_outcome(run_check: Any, evaluated: dict[str, Any]) -> None:
    """The metric filter matches the line of a clean, partial, Slack-failed and dry run; its label is the outcome."""
    run, sim, slack = run_check
    extractor = _resource("google_logging_metric", "checks_completed")["label_extractors"]["outcome"]
    assert evaluated["name"] == FUNCTION
    seen = {}
    seen["ok"] = _finished(run())
    assert len(slack.messages()) == 1, "the clean run really posted"
    seen["dry_run"] = _finished(run("--dry-run"))
    sim.add_fault("openai", "http_500")
    seen["partial"] = _finished(run())
    sim.clear_faults()
    slack.add_fault("http_500", count=10)
    seen["notify_failed"] = _finished(run())
    slack.clear_faults()
    for outcome, line in seen.items():
        entry = cloud_run_entry(line)
        assert matches(evaluated["filter"], entry), f"{outcome}: the metric would not count {entry}"
        assert extract(extractor, entry) == outcome


def test_filter_rejects_other_lines_services_and_severities(run_check: Any, evaluated: dict[str, Any]) -> None:
    """Other lines of the same run, the same line from another service, and a non-INFO copy do not count."""
    run, _, _ = run_check
    lines = run()
    finished = _finished(lines)
    others = [line for line in lines if line != finished]
    assert others, "the run writes more than the final line"
    for line in others:
        assert not matches(evaluated["filter"], cloud_run_entry(line)), line
    assert not matches(evaluated["filter"], cloud_run_entry(finished, service="other-service"))
    entry = cloud_run_entry(finished)
    assert not matches(evaluated["filter"], {**entry, "severity": "ERROR"})
    assert not matches(evaluated["filter"], {**entry, "resource": {**entry["resource"], "type": "cloud_function"}})
    renamed = {**entry, "jsonPayload": {**entry["jsonPayload"], "logger": "llm_budget_alert.main"}}
    assert not matches(evaluated["filter"], renamed)


def test_state_error_writes_no_finished_line(run_check: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose alert state is unusable ends without "check finished": the switch sees it as not run."""
    broken = tmp_path / "broken-state"
    broken.mkdir()  # a directory where the state file should be: unreadable as state
    monkeypatch.setenv("STATE_FILE", str(broken))
    stream = io.StringIO()
    logs.setup("INFO", stream=stream)
    main.cli(["check", "--now", NOW.isoformat()])
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines() if line.strip()]
    assert "check finished" not in messages
    assert any("state" in m for m in messages), messages


@pytest.mark.parametrize(
    ("query", "entry", "expected"),
    [
        ('jsonPayload.message="check finished"', {"jsonPayload": {"message": "check finished"}}, True),
        ('jsonPayload.message="check finished"', {"jsonPayload": {"message": "check finished early"}}, False),
        ('jsonPayload.message:"FINISHED"', {"jsonPayload": {"message": "check finished early"}}, True),
        ("severity=INFO", {"severity": "INFO"}, True),
        ("severity=INFO", {"severity": "WARNING"}, False),
        ("severity>=WARNING", {"severity": "ERROR"}, True),
        ("severity>=WARNING", {"severity": "INFO"}, False),
        ("jsonPayload.dry_run=false", {"jsonPayload": {"dry_run": False}}, True),
        ("jsonPayload.dry_run=false", {"jsonPayload": {}}, False),
        ('NOT resource.type="cloud_run_revision"', {"resource": {"type": "gce_instance"}}, True),
        ('resource.labels.service_name="a" AND severity=INFO',
         {"resource": {"labels": {"service_name": "a"}}, "severity": "DEBUG"}, False),
    ],
)  # fmt: skip
def test_evaluator_follows_the_query_language(query: str, entry: dict[str, Any], expected: bool) -> None:
    """Equality is exact, `:` is a case-insensitive substring, severity is ordered, AND needs every term."""
    assert matches(query, entry) is expected


def test_evaluator_refuses_syntax_it_does_not_implement() -> None:
    """OR, regular expressions and bare words raise instead of being misread."""
    for query in ('a="1" OR b="2"', 'jsonPayload.message=~"check"', "check finished"):
        with pytest.raises(ValueError):
            matches(query, {})


# --- the HCL of the switch ---------------------------------------------------------------------


def test_policies_alert_on_absence_over_the_window_to_the_listed_channels(evaluated: dict[str, Any]) -> None:
    """Both policies: absence of the metric over deadman_window (3 h), as one series, to local.alert_channels."""
    assert evaluated["window"] == "10800s"
    metric = "logging.googleapis.com/user/${google_logging_metric.checks_completed.name}"
    for name, extra in (("not_running", ""), ("failing", ' AND metric.label.outcome="ok"')):
        policy = _resource("google_monitoring_alert_policy", name)
        assert policy["notification_channels"] == "${local.alert_channels}"
        (condition,) = policy["conditions"]
        absent = condition["condition_absent"][0]
        assert absent["duration"] == "${local.deadman_window}"
        filter_ = absent["filter"].replace("${local.checks_completed_metric}", "METRIC")
        assert filter_ == f"METRIC{extra}", name
        (aggregation,) = absent["aggregations"]
        assert aggregation["cross_series_reducer"] == "REDUCE_SUM" and "group_by_fields" not in aggregation
        assert policy["documentation"][0]["content"].strip()
    with (TF / "monitoring.tf").open(encoding="utf-8") as f:
        text = f.read()
    assert f'metric.type=\\"{metric}\\"' in text
    channel = _resource("google_monitoring_notification_channel", "email")
    assert channel["type"] == "email" and channel["for_each"] == "${toset(var.alert_emails)}"
    assert channel["labels"] == {"email_address": "${each.value}"}


@pytest.mark.parametrize(
    ("tfvars", "message"),
    [
        ('alert_emails = ["not-an-address"]', "alert_emails must be plain email addresses"),
        ('alert_emails = ["a@example.com", "a@example.com"]', "alert_emails must be distinct addresses"),
        ('alert_notification_channels = ["1234"]', "alert_notification_channels entries must be full channel names"),
        ("deadman_window_hours = 1", "deadman_window_hours must be a whole number of hours from 2"),
        ("deadman_window_hours = 24", "deadman_window_hours must be a whole number of hours from 2"),
        ('scheduler_region = "us-central1-a"', "scheduler_region must be null or a Cloud Scheduler region"),
    ],
)
def test_monitoring_inputs_are_validated_with_fixing_messages(tmp_path: Path, tfvars: str, message: str) -> None:
    """Bad alert recipients, windows and scheduler regions fail at plan with a message that says how to fix them."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform binary not on PATH")
    from test_terraform import _console, _example_tfvars_text

    name = tfvars.split("=", 1)[0].strip()
    example = re.sub(rf"(?m)^{name}\s*=.*$", "", _example_tfvars_text())  # the example sets some of these
    _, stderr = _console(tmp_path, example + "\n" + tfvars + "\n", "local.deadman_window")
    assert message in " ".join(stderr.split()), stderr
