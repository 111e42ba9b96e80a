"""Routing (pure): which destinations each event goes to, and which scopes each destination shows."""

from __future__ import annotations

import dataclasses
from typing import Any

from support import budgets

from alerts.events import Event, Kind, Severity
from alerts.routing import Routes, delivery_key, event_key

DESTINATIONS = {
    "finops": {"webhook_env": "SLACK_FINOPS_WEBHOOK_URL"},
    "search": {"webhook_env": "SLACK_SEARCH_WEBHOOK_URL"},
    "support": {"webhook_env": "SLACK_SUPPORT_WEBHOOK_URL"},
    "research": {"webhook_env": "SLACK_RESEARCH_WEBHOOK_URL"},
}
PROVIDERS = {
    "openai": {
        "budget_usd": 500,
        "accounts": [
            {"label": "prod", "key_env": "OPENAI_ADMIN_KEY"},
            {"label": "research", "key_env": "OPENAI_RESEARCH_KEY", "notify": ["research"]},
        ],
    },
    "anthropic": {"budget_usd": 400, "notify": ["support"], "accounts": [{"label": "main", "key_env": "ANT_KEY"}]},
}
TEAMS = {
    "search": {
        "budget_usd": 200,
        "notify": ["search"],
        "match": {"openai": {"accounts": ["prod"], "project_ids": ["proj_search"]}},
    },
    "support": {"budget_usd": 100, "match": {"anthropic": {"workspace_ids": ["default"]}}},
}


def routes(**overrides: Any) -> Routes:
    doc: dict[str, Any] = {
        "providers": PROVIDERS,
        "teams": TEAMS,
        "destinations": DESTINATIONS,
        "default_destination": "finops",
        **overrides,
    }
    return Routes.of(budgets(**doc))


def event(kind: Kind, scope: str) -> Event:
    return Event(f"{kind}:2026-11:{scope}:80", kind, scope, "2026-11", f"{scope} line", Severity.WARNING)


def test_an_account_goes_to_its_own_notify_else_its_providers_else_the_default() -> None:
    """Account scope: the account's notify, else its provider's notify, else the default destination."""
    r = routes()
    assert r.of_scope("openai/research") == ("research",)
    assert r.of_scope("anthropic/main") == ("support",)
    assert r.of_scope("openai/prod") == ("finops",)


def test_a_provider_goes_to_its_notify_else_the_default() -> None:
    """Provider scope: the provider's notify, or the default."""
    r = routes()
    assert r.of_scope("anthropic") == ("support",)
    assert r.of_scope("openai") == ("finops",)


def test_a_team_goes_to_its_notify_else_the_default() -> None:
    """team/<name>: that team's notify, or the default."""
    r = routes()
    assert r.of_scope("team/search") == ("search",)
    assert r.of_scope("team/support") == ("finops",)


def test_total_and_unassigned_go_to_the_default() -> None:
    """The total and the spend no team owns go to the default destination only."""
    r = routes()
    assert r.of_event(event(Kind.THRESHOLD, "total")) == ("finops",)
    assert r.of_event(event(Kind.THRESHOLD, "unassigned")) == ("finops",)


def test_a_failing_account_is_told_to_its_destinations_and_every_team_reaching_it() -> None:
    """Failure / recovery of an account: its destinations ∪ those of each team whose match reaches it."""
    r = routes()
    assert r.of_event(event(Kind.FAILURE, "openai/prod")) == ("finops", "search")
    assert r.of_event(event(Kind.RECOVERY, "anthropic/main")) == ("finops", "support")  # support team: default
    assert r.of_event(event(Kind.FAILURE, "openai/research")) == ("research",)  # the search team takes only prod
    assert r.of_event(event(Kind.THRESHOLD, "openai/prod")) == ("finops",), "a threshold is the account's alone"


def test_the_digest_goes_to_every_destination() -> None:
    """The daily digest is delivered to each destination (each message with its own scopes)."""
    digest = Event("digest:2026-11-28", Kind.DIGEST, "total", "2026-11", "digest", Severity.INFO)
    assert routes().of_event(digest) == ("finops", "search", "support", "research")


def test_a_destination_without_scopes_gets_no_digest() -> None:
    """A destination only the weekly report names shows no scope, so the daily digest skips it."""
    digest = Event("digest:2026-11-28", Kind.DIGEST, "total", "2026-11", "digest", Severity.INFO)
    dests = {**DESTINATIONS, "weekly-only": {"webhook_env": "SLACK_WEEKLY_WEBHOOK_URL"}}
    r = routes(destinations=dests, weekly_report={"destinations": ["weekly-only"]})
    assert r.of_event(digest) == ("finops", "search", "support", "research")


def test_copy_all_to_default_adds_the_default_to_everything() -> None:
    """With copy_all_to_default the default destination also gets every routed alert and shows every scope."""
    r = routes(copy_all_to_default=True)
    assert r.of_event(event(Kind.THRESHOLD, "team/search")) == ("finops", "search")
    assert r.of_event(event(Kind.FORECAST, "openai/research")) == ("finops", "research")
    scopes = ["total", "unassigned", "openai", "openai/prod", "openai/research", "team/search", "team/support"]
    assert r.shown("finops", scopes) == frozenset(scopes)


def test_each_destination_shows_only_the_scopes_routed_to_it() -> None:
    """The default shows the total, unassigned and what is not routed elsewhere; a team's channel its team."""
    r = routes()
    scopes = [
        "total",
        "unassigned",
        "openai",
        "openai/prod",
        "openai/research",
        "anthropic",
        "anthropic/main",
        "team/search",
        "team/support",
    ]
    assert r.shown("finops", scopes) == {"total", "unassigned", "openai", "openai/prod", "team/support"}
    assert r.shown("search", scopes) == {"team/search"}
    assert r.shown("support", scopes) == {"anthropic", "anthropic/main"}
    assert r.shown("research", scopes) == {"openai/research"}


def test_without_destinations_everything_goes_to_the_implicit_default() -> None:
    """A document naming no destinations routes every event to "default", which shows every scope."""
    teams = {"search": {**TEAMS["search"], "notify": []}, "support": TEAMS["support"]}
    plain = {
        "openai": {"budget_usd": 500, "accounts": [{"label": "prod", "key_env": "K"}]},
        "anthropic": {"budget_usd": 1},
    }
    r = Routes.of(budgets(teams=teams, providers=plain))
    assert r.names == ("default",)
    assert r.of_event(event(Kind.THRESHOLD, "team/search")) == ("default",)
    assert r.shown("default", ["total", "openai/prod", "team/search"]) == {"total", "openai/prod", "team/search"}


def test_a_scope_with_a_suffix_is_routed_as_its_account() -> None:
    """A provider-limit scope such as openai/research:proj_abc goes where openai/research goes."""
    assert routes().of_scope("openai/research:proj_abc") == ("research",)


def test_the_weekly_report_goes_to_its_destinations_else_every_destination() -> None:
    """A weekly event goes to weekly_report.destinations, or to every destination when it names none."""
    weekly = dataclasses.replace(event(Kind.DIGEST, "total"), key="weekly:2026-W48", kind="weekly")  # type: ignore[arg-type]
    assert routes(weekly_report={"destinations": ["search", "finops"]}).of_event(weekly) == ("finops", "search")
    assert routes(weekly_report={}).of_event(weekly) == ("finops", "search", "support", "research")


def test_delivery_keys_are_bare_for_the_default_and_suffixed_for_the_others() -> None:
    """The state key is the event key for the default destination and <key>@<dest> for the others."""
    key = "threshold:2026-11:team/search:80"
    assert delivery_key(key, "finops", "finops") == key
    assert delivery_key(key, "search", "finops") == key + "@search"
    assert event_key(key + "@search") == event_key(key) == key
