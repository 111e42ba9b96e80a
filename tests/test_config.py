"""Configuration: the budget document and the environment, with errors that name the field and the fix."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from config import ConfigError, SecretResolver, Settings, parse_budget_config
from errors import SecretError


def _env(**kw: str) -> dict[str, str]:
    base = {"BUDGET_CONFIG": json.dumps({"total_budget_usd": 100, "providers": {"openai": {"budget_usd": 50}}})}
    base.update(kw)
    return base


def test_example_document_is_valid() -> None:
    """budgets.example.json (what the README shows) validates."""
    cfg = parse_budget_config((ROOT / "budgets.example.json").read_text(), origin="example")
    assert [a.label for a in cfg.accounts("openai")] == ["prod", "research"]
    assert cfg.thresholds_pct == (Decimal(50), Decimal(80), Decimal(100))


def test_defaults() -> None:
    """Thresholds default to 50/80/100, forecast to 100, and a provider without accounts has one default account."""
    cfg = parse_budget_config('{"total_budget_usd": "10.50", "providers": {"anthropic": {"budget_usd": 5}}}',
                              origin="x")
    assert cfg.total_budget_usd == Decimal("10.50") and cfg.forecast_thresholds_pct == (Decimal(100),)
    assert [a.label for a in cfg.accounts("anthropic")] == ["default"]


@pytest.mark.parametrize(("doc", "needle"), [
    ({"total_budget_usd": 10, "providers": {"openai": {}}}, "providers.openai.budget_usd is missing"),
    ({"providers": {"openai": {"budget_usd": 1}}}, "total_budget_usd: is required"),
    ({"total_budget_usd": 10, "providers": {}}, "configure at least one of openai"),
    ({"total_budget_usd": 0, "providers": {"openai": {"budget_usd": 1}}}, "must be a positive amount"),
    ({"total_budget_usd": 10, "thresholds_pct": [0], "providers": {"openai": {"budget_usd": 1}}}, "0 < p <= 1000"),
    ({"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 1, "accounts": [{"label": "A B"}]}}},
     "providers.openai.accounts.0.label"),
    ({"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 1, "accounts": [{"label": "a"}, {"label": "a"}]}}},
     "repeated: a"),
    ({"total_budget_usd": 10, "providers": {"xai": {"budget_usd": 1}}}, "team_id"),
    ({"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 1, "accounts": [{"key_secret": "my-secret"}]}}},
     "projects/P/secrets/S/versions/latest"),
    ({"total_budget_usd": 10, "providers": {"gemini": {"budget_usd": 1, "accounts": [
        {"billing_export_table": "p.d.t", "service_ids": ["Gemini"]}]}}}, "project.dataset.table"),
    ({"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 1}}, "thresholds": [1]},
     "thresholds: is not a known setting"),
])
def test_errors_name_the_field_and_the_fix(doc: dict[str, object], needle: str) -> None:
    """Each invalid document raises ConfigError naming the field and how to fix it."""
    with pytest.raises(ConfigError) as exc:
        parse_budget_config(json.dumps(doc), origin="BUDGET_CONFIG")
    assert needle in str(exc.value) and "BUDGET_CONFIG" in str(exc.value)


def test_bad_json_says_where() -> None:
    """Invalid JSON reports line and column."""
    with pytest.raises(ConfigError, match="line 1, column"):
        parse_budget_config("{", origin="BUDGET_CONFIG")


def test_settings_from_env(tmp_path: Path) -> None:
    """The environment maps to Settings; the file form works; both forms at once is an error."""
    s = Settings.from_env(_env(OPENAI_BASE_URL="http://127.0.0.1:9/", STATE_BACKEND="gcs", STATE_BUCKET="b"))
    assert s.base_urls["openai"] == "http://127.0.0.1:9" and s.state_backend == "gcs"
    assert s.base_urls["anthropic"] == "https://api.anthropic.com"
    f = tmp_path / "b.json"
    f.write_text(_env()["BUDGET_CONFIG"])
    assert Settings.from_env({"BUDGET_CONFIG_FILE": str(f)}).budgets.total_budget_usd == 100
    with pytest.raises(ConfigError, match="not both"):
        Settings.from_env(_env(BUDGET_CONFIG_FILE=str(f)))


@pytest.mark.parametrize(("env", "needle"), [
    ({}, "no budget configuration"),
    ({"BUDGET_CONFIG_FILE": "/nonexistent/b.json"}, "cannot read it"),
    (_env(STATE_BACKEND="redis"), "STATE_BACKEND must be"),
    (_env(STATE_BACKEND="gcs"), "needs STATE_BUCKET"),
    (_env(SLACK_WEBHOOK_SECRET="hooks"), "SLACK_WEBHOOK_SECRET must be"),
    (_env(SLACK_WEBHOOK_URL="ftp://x"), "https://"),
    (_env(CHECK_DEADLINE_SECONDS="soon"), "CHECK_DEADLINE_SECONDS"),
    (_env(OPENAI_BASE_URL="api.openai.com"), "OPENAI_BASE_URL must start with https://"),
])
def test_environment_errors_name_the_variable(env: dict[str, str], needle: str) -> None:
    """Bad environment values name the variable and the fix."""
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env)


def test_env_secret_missing_names_the_variable() -> None:
    """A missing key names the variable to set, never a value."""
    with pytest.raises(SecretError, match="OPENAI_ADMIN_KEY is not set"):
        SecretResolver(env={}).get(secret=None, env_name="OPENAI_ADMIN_KEY", what="OpenAI admin key")


def test_a_run_that_posts_needs_a_webhook() -> None:
    """Without SLACK_WEBHOOK_SECRET or SLACK_WEBHOOK_URL a posting run is a configuration error."""
    with pytest.raises(ConfigError, match="SLACK_WEBHOOK_SECRET"):
        Settings.from_env(_env()).require_slack()
    Settings.from_env(_env(SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T/B/x")).require_slack()


def test_fetch_threads_reading_secrets_at_once_share_one_secret_manager_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Five threads reading five secrets together build one Secret Manager client and read each secret once."""
    import threading
    import time

    from google.cloud import secretmanager

    from simulator import SecretManagerFake

    built: list[str] = []
    real_init = secretmanager.SecretManagerServiceClient.__init__

    def slow_init(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(threading.current_thread().name)
        time.sleep(0.1)  # a real client also resolves credentials here: the other threads arrive meanwhile
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(secretmanager.SecretManagerServiceClient, "__init__", slow_init)
    values = {f"projects/p/secrets/key-{i}": f"sk-admin-value-{i}-0123456789" for i in range(5)}
    with SecretManagerFake.start(values) as fake:
        resolver = SecretResolver(env={}, emulator_host=fake.url)
        start = threading.Barrier(5)
        got: dict[str, str] = {}

        def read(name: str) -> None:
            start.wait()
            got[name] = resolver.get(secret=f"{name}/versions/latest", env_name=None, what=name)

        threads = [threading.Thread(target=read, args=(name,)) for name in values]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        requests = fake.request_count
    assert len(built) == 1
    assert got == values and resolver.fetches == 5 and requests == 5
