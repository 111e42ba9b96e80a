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
    cfg = parse_budget_config(
        '{"total_budget_usd": "10.50", "providers": {"anthropic": {"budget_usd": 5}}}', origin="x"
    )
    assert cfg.total_budget_usd == Decimal("10.50") and cfg.forecast_thresholds_pct == (Decimal(100),)
    assert [a.label for a in cfg.accounts("anthropic")] == ["default"]


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"total_budget_usd": 10, "providers": {"openai": {}}}, "providers.openai.budget_usd is missing"),
        ({"providers": {"openai": {"budget_usd": 1}}}, "total_budget_usd: is required"),
        ({"total_budget_usd": 10, "providers": {}}, "configure at least one of openai"),
        ({"total_budget_usd": 0, "providers": {"openai": {"budget_usd": 1}}}, "must be a positive amount"),
        ({"total_budget_usd": 10, "thresholds_pct": [0], "providers": {"openai": {"budget_usd": 1}}}, "0 < p <= 1000"),
        (
            {"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 1, "accounts": [{"label": "A B"}]}}},
            "providers.openai.accounts.0.label",
        ),
        (
            {
                "total_budget_usd": 10,
                "providers": {"openai": {"budget_usd": 1, "accounts": [{"label": "a"}, {"label": "a"}]}},
            },
            "repeated: a",
        ),
        ({"total_budget_usd": 10, "providers": {"xai": {"budget_usd": 1}}}, "team_id"),
        (
            {
                "total_budget_usd": 10,
                "providers": {"openai": {"budget_usd": 1, "accounts": [{"key_secret": "my-secret"}]}},
            },
            "projects/P/secrets/S/versions/latest",
        ),
        (
            {
                "total_budget_usd": 10,
                "providers": {
                    "gemini": {
                        "budget_usd": 1,
                        "accounts": [{"billing_export_table": "p.d.t", "service_ids": ["Gemini"]}],
                    }
                },
            },
            "project.dataset.table",
        ),
        (
            {"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 1}}, "thresholds": [1]},
            "thresholds: is not a known setting",
        ),
    ],
)
def test_errors_name_the_field_and_the_fix(doc: dict[str, object], needle: str) -> None:
    """Each invalid document raises ConfigError naming the field and how to fix it."""
    with pytest.raises(ConfigError) as exc:
        parse_budget_config(json.dumps(doc), origin="BUDGET_CONFIG")
    assert needle in str(exc.value) and "BUDGET_CONFIG" in str(exc.value)


_TEAM_BASE: dict[str, Any] = {
    "total_budget_usd": 3000,
    "providers": {
        "openai": {"budget_usd": 1500, "accounts": [{"label": "prod"}, {"label": "research"}]},
        "anthropic": {"budget_usd": 800},
        "xai": {"budget_usd": 300, "accounts": [{"label": "core", "team_id": "00000000-0000-4000-8000-000000000000"}]},
    },
    "destinations": {
        "finops": {"webhook_env": "SLACK_FINOPS_WEBHOOK_URL"},
        "search": {"webhook_secret": "projects/p/secrets/slack-search/versions/latest"},
    },
    "default_destination": "finops",
}
_SEARCH = {"budget_usd": 2000, "notify": ["search"], "match": {"openai": {"project_ids": ["proj_sim_search"]}}}


def _teams_doc(teams: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**_TEAM_BASE, "teams": teams, **extra}


def test_a_document_with_teams_and_dollar_thresholds_is_valid() -> None:
    """Teams, destinations and thresholds_usd parse; the cells each provider must keep follow the matches."""
    doc = _teams_doc(
        {"search": {**_SEARCH, "thresholds_usd": [1500, 500, 500]}, "core": {"budget_usd": 1, "match": {"xai": {}}}},
        thresholds_usd=[2500],
    )
    cfg = parse_budget_config(json.dumps(doc), origin="BUDGET_CONFIG")
    assert cfg.teams["search"].thresholds_usd == (Decimal(500), Decimal(1500)), "sorted, each once"
    assert cfg.thresholds_usd == (Decimal(2500),) and cfg.teams["search"].thresholds_pct is None
    assert cfg.cell_dims() == {"openai": ("project",), "xai": ()}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            _teams_doc({"search": {**_SEARCH, "match": {"openai": {"project_ids": ["search-prod"]}}}}),
            "teams.search.match.openai.project_ids: 'search-prod' is not an OpenAI project id: use the id from "
            'platform.openai.com → Settings → Projects, e.g. "proj_abc123" (not the project name)',
        ),
        (
            _teams_doc({"search": {**_SEARCH, "match": {"anthropic": {"workspace_ids": ["Customer Agents"]}}}}),
            "teams.search.match.anthropic.workspace_ids: 'Customer Agents' is not a workspace id: use the id from "
            'console.anthropic.com → Settings → Workspaces, e.g. "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", or "default" '
            "for the default workspace",
        ),
        (
            _teams_doc({"search": _SEARCH, "support": {**_SEARCH, "notify": []}}),
            'teams: "search" and "support" both match openai/prod proj_sim_search: each spend can belong to one '
            'team; remove it from one, or set "allow_overlap": true if counting it in both is intended',
        ),
        (
            _teams_doc(
                {"search": _SEARCH, "research": {"budget_usd": 5, "match": {"openai": {"accounts": ["research"]}}}}
            ),
            'teams: "search" and "research" both match openai/research: each spend can belong to one team; '
            'remove it from one, or set "allow_overlap": true if counting it in both is intended',
        ),
        (
            _teams_doc({"search": {**_SEARCH, "notify": ["serch"]}}),
            'teams.search.notify: "serch" is not a destination (destinations: finops, search)',
        ),
        (
            {**_teams_doc({"search": _SEARCH}), "destinations": {}, "default_destination": None},
            'teams.search.notify: "search" is not a destination (define it under "destinations" with its '
            "webhook_secret or webhook_env)",
        ),
        (
            _teams_doc({"search": _SEARCH}, destinations={**_TEAM_BASE["destinations"], "support": {}}),
            "destinations.support: set webhook_secret (cloud: projects/P/secrets/S/versions/latest) or webhook_env "
            "(local: an environment variable holding the webhook URL)",
        ),
        (
            _teams_doc({"search": {**_SEARCH, "match": {"xai": {"accounts": ["main"]}}}}),
            'teams.search.match.xai.accounts: "main" is not an account of providers.xai (accounts: core)',
        ),
        (
            _teams_doc({"search": {**_SEARCH, "match": {"gemini": {"project_ids": ["llm-prod-123456"]}}}}),
            "teams.search.match.gemini: providers.gemini is not configured, so nothing can match it",
        ),
        (
            _teams_doc({"unassigned": _SEARCH}),
            'teams: "unassigned" is reserved (it names the spend no team owns, or the total)',
        ),
        (
            _teams_doc({"search": {**_SEARCH, "thresholds_usd": [0]}}),
            "teams.search.thresholds_usd.0: must be a positive amount of US dollars",
        ),
        (
            _teams_doc({"search": _SEARCH}, default_destination=None),
            "default_destination is missing: with several destinations, name the one that receives what no "
            'budget routes elsewhere, e.g. "default_destination": "finops"',
        ),
    ],
    ids=[
        "project-id-format",
        "workspace-id-format",
        "overlap-id",
        "overlap-account",
        "unknown-destination",
        "no-destinations",
        "missing-secret",
        "unknown-account",
        "provider-not-configured",
        "reserved-name",
        "usd-threshold",
        "default-destination",
    ],
)
def test_team_and_destination_errors_name_the_field_and_the_fix(doc: dict[str, Any], message: str) -> None:
    """Acceptance 6: each team / destination mistake is a ConfigError naming its path and the fix."""
    with pytest.raises(ConfigError) as exc:
        parse_budget_config(json.dumps(doc), origin="BUDGET_CONFIG")
    assert message in str(exc.value) and str(exc.value).startswith("BUDGET_CONFIG: invalid budget configuration")


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


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "no budget configuration"),
        ({"BUDGET_CONFIG_FILE": "/nonexistent/b.json"}, "cannot read it"),
        (_env(STATE_BACKEND="redis"), "STATE_BACKEND must be"),
        (_env(STATE_BACKEND="gcs"), "needs STATE_BUCKET"),
        (_env(SLACK_WEBHOOK_SECRET="hooks"), "SLACK_WEBHOOK_SECRET must be"),
        (_env(SLACK_WEBHOOK_URL="ftp://x"), "https://"),
        (_env(CHECK_DEADLINE_SECONDS="soon"), "CHECK_DEADLINE_SECONDS"),
        (_env(OPENAI_BASE_URL="api.openai.com"), "OPENAI_BASE_URL must start with https://"),
    ],
)
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


# --- malformed budget documents: exit 2 from the CLI, the field (or byte) named, linear time -----

GOOD = {"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 5}}}
_CHECK_ENV = ("BUDGET_CONFIG", "BUDGET_CONFIG_FILE", "SLACK_WEBHOOK_URL", "SLACK_WEBHOOK_SECRET", "STATE_BACKEND")


def _accounts_doc(n: int, *, repeat_last: bool = False) -> str:
    labels = [f"a{i:06d}" for i in range(n)]
    if repeat_last:
        labels[-1] = labels[0]
    accounts = [{"label": x} for x in labels]
    doc = {"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 5, "accounts": accounts}}}
    return json.dumps(doc, separators=(",", ":"))


def _dry_run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    document: str | bytes,
    *,
    as_file: bool,
) -> tuple[int, str]:
    import main

    for k in _CHECK_ENV:
        monkeypatch.delenv(k, raising=False)
    if as_file:
        f = tmp_path / "budgets.json"
        f.write_bytes(document if isinstance(document, bytes) else document.encode("utf-8", "surrogateescape"))
        monkeypatch.setenv("BUDGET_CONFIG_FILE", str(f))
    else:
        assert isinstance(document, str)
        monkeypatch.setenv("BUDGET_CONFIG", document)
    code = main.cli(["check", "--dry-run"])
    out = capsys.readouterr()
    assert out.out == "", "nothing but the error is printed"
    return code, out.err


DEEP = '{"total_budget_usd": 10, "providers": ' + "[" * 50_000 + "]" * 50_000 + "}"
MALFORMED: list[tuple[str, str | bytes, bool, str]] = [
    ("deep nesting (file)", DEEP, True, "nested deeper than 32 levels (line 1, column 70)"),
    ("deep nesting (env)", DEEP, False, "BUDGET_CONFIG: nested deeper than 32 levels"),
    ("deep nesting in accounts", '{"providers": {"openai": {"accounts": [' + "{" * 40, True, "deeper than 32"),
    (
        "non-UTF-8 file",
        b'{"total_budget_usd": 10,\n "providers": {"openai": {"budget_usd": 5, "accounts": [{"label": "caf\xe9"}]}}}',
        True,
        "not UTF-8 text: byte offset 95 (line 2) is 0xe9",
    ),
    ("non-UTF-8 env var", '{"total_budget_usd": 10, "x": "\udce9"}', False, "BUDGET_CONFIG: not UTF-8 text: byte"),
    ("larger than 1 MiB (file)", " " * (1024 * 1024) + json.dumps(GOOD), True, "larger than the limit of 1 MiB (1,048"),
    ("larger than 1 MiB (env)", json.dumps(GOOD) + " " * (1024 * 1024), False, "larger than the limit of 1 MiB"),
    (
        "a key twice in one object",
        '{"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 5}, "openai": {"budget_usd": 500}}}',
        True,
        'the key "openai" appears twice in one object',
    ),
    ("40,000 accounts, one label twice", _accounts_doc(40_000, repeat_last=True), True, "repeated: a000000"),
    ("a number of 5000 digits", '{"total_budget_usd": ' + "9" * 5000 + "}", True, "more than 4300 digits"),
    ("not an object", "[1, 2]", True, "(document): Input should be a valid dictionary"),
    ("not JSON", "{'total_budget_usd': 10}", True, "not valid JSON (line 1, column 2)"),
    ("brackets inside strings are not nesting", '{"x": "' + "[" * 100 + '"}', True, "x: is not a known setting"),
]


@pytest.mark.parametrize(("document", "as_file", "needle"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_document_exits_2_naming_the_problem(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    document: str | bytes,
    as_file: bool,
    needle: str,
) -> None:
    """Each malformed budget document: `check --dry-run` exits 2 with a one-message error, no traceback."""
    code, err = _dry_run(monkeypatch, capsys, tmp_path, document, as_file=as_file)
    assert code == 2, err
    assert err.startswith("configuration error: BUDGET_CONFIG") and needle in err, err
    assert "Traceback" not in err and len(err) < 2000


def test_a_utf8_bom_and_40000_accounts_are_accepted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A file saved with a UTF-8 BOM parses; 40,000 distinct accounts (0.8 MiB) are within the limit."""
    cfg = parse_budget_config(b"\xef\xbb\xbf" + json.dumps(GOOD).encode(), origin="bom")
    assert cfg.total_budget_usd == 10
    many = parse_budget_config(_accounts_doc(40_000), origin="many")
    assert len(many.accounts("openai")) == 40_000


def test_a_lone_surrogate_in_a_string_document_is_a_config_error() -> None:
    """A str document with a surrogate that no undecodable byte produces is refused, not a traceback."""
    with pytest.raises(ConfigError, match="BUDGET_CONFIG: not UTF-8 text: character 7 is a lone surrogate"):
        parse_budget_config('{"x": "\ud800"}', origin="BUDGET_CONFIG")


def test_many_problems_are_counted_not_all_listed() -> None:
    """A document with hundreds of invalid labels lists 20 problems and counts the rest."""
    doc = {"total_budget_usd": 10, "providers": {"openai": {"budget_usd": 5, "accounts": [{"label": "BAD"}] * 300}}}
    with pytest.raises(ConfigError) as exc:
        parse_budget_config(json.dumps(doc), origin="BUDGET_CONFIG")
    assert str(exc.value).count("\n  - providers.openai.accounts.") == 20
    assert "…and 280 more problems" in str(exc.value)


def test_the_duplicate_label_check_compares_a_linear_number_of_times() -> None:
    """`repeated` hashes each label once; it never compares every label with every other (quadratic)."""
    from config import repeated

    comparisons = [0]

    class Label(str):
        __hash__ = str.__hash__

        def __eq__(self, other: object) -> bool:
            comparisons[0] += 1
            return str.__eq__(self, other)

    labels = [Label(f"a{i:05d}") for i in range(5000)] + [Label("a00007"), Label("a04999")]
    assert repeated(labels) == ["a00007", "a04999"]
    assert comparisons[0] <= 2 * len(labels), f"{comparisons[0]} comparisons for {len(labels)} labels"
