"""2. Requests per check in a 31-day month, counted where they arrive, and secrets read once per process.

Every key (and the Slack webhook URL) is a Secret Manager secret served by the simulator's Secret
Manager fake, reached through `SECRET_MANAGER_EMULATOR_HOST` exactly as in the cloud. Provider
requests are counted from the simulator's request log by path; BigQuery calls by a spy on the real
client's HTTP session; secret reads by `SecretResolver.fetches` and by the fake's own request log.
Two checks run in this process with one resolver, as a warm Cloud Functions instance would.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

from bench._common import (
    BQ_PROJECT,
    HTTP_SCOPES,
    NOW,
    SLACK_SECRET,
    Figure,
    Section,
    SimServer,
    budget_doc,
    demo_accounts,
    secrets_for,
)
from bench._google import BigQuerySpy

ENDPOINTS = {
    "/v1/organization/costs": "openai costs",
    "/v1/organizations/cost_report": "anthropic cost_report",
    "/usage": "xai usage",
    "/postpaid/invoice/preview": "xai invoice preview (context)",
    "/postpaid/spending-limits": "xai spending limits (context)",
}


def _endpoint(path: str) -> str:
    for suffix, name in ENDPOINTS.items():
        if path.endswith(suffix):
            return name
    return path


def run(sim: SimServer, workdir: Path, emu: Any) -> Section:
    from alerts.state import FileStore
    from check import default_deps, run_check
    from config import SecretResolver, Settings

    sec = Section("2. requests per check (31-day month)")
    sim.set_secrets(secrets_for(HTTP_SCOPES, sim.hook_url))
    env = {
        **sim.env(),
        "BUDGET_CONFIG": json.dumps(budget_doc(HTTP_SCOPES, keys="secret", gemini=True)),
        "SECRET_MANAGER_EMULATOR_HOST": sim.secrets_url,
        "SLACK_WEBHOOK_SECRET": f"{SLACK_SECRET}/versions/latest",
        "BIGQUERY_EMULATOR_HOST": emu.bq.url,
        "BIGQUERY_JOB_PROJECT": BQ_PROJECT,
        "STATE_FILE": str(workdir / "requests-state.json"),
    }
    settings = Settings.from_env(env)
    resolver = SecretResolver(env={}, emulator_host=settings.secret_manager_emulator_host)
    spy = BigQuerySpy(emu.bq.url)
    deps = dataclasses.replace(default_deps(settings, resolver), bigquery_factory=spy)
    store = FileStore(workdir / "requests-state.json")

    checks: list[dict[str, Any]] = []
    for n in (1, 2):
        sim.clear_requests()
        sim.clear_sm_requests()
        sim.clear_slack()
        spy.clear()
        fetches_before = resolver.fetches
        outcome = run_check(settings, deps, NOW, store=store)
        failed = [r.account.scope for r in outcome.results if r.report is None]
        if failed:
            raise RuntimeError(f"check {n}: failed accounts {failed}: {[r.error for r in outcome.results]}")
        by = Counter((f"{r['provider']}/{r['account']}", _endpoint(r["path"])) for r in sim.requests() if r["provider"])
        checks.append(
            {
                "check": n,
                "provider_requests": {f"{scope} {ep}": c for (scope, ep), c in sorted(by.items())},
                "bigquery_jobs": len(spy.job_inserts()),
                "bigquery_http_calls": [f"{c.method} {c.path}" for c in spy.calls],
                "secret_fetches": resolver.fetches - fetches_before,
                "secret_manager_requests": len(sim.sm_requests()),
                "slack_posts": int(sim.slack_snapshot().get("attempts", 0)),
                "reported_requests": {r.account.scope: r.report.requests for r in outcome.results if r.report},
            }
        )

    first, second = checks
    accounts = demo_accounts()
    n_openai = sum(1 for s in HTTP_SCOPES if accounts[s].provider == "openai")
    n_secrets = len(HTTP_SCOPES) + 1
    pr = first["provider_requests"]
    openai_ok = all(pr.get(f"{s} openai costs") == 1 for s in HTTP_SCOPES if s.startswith("openai/"))
    anth_ok = pr.get("anthropic/main anthropic cost_report") == 1
    xai_ok = (
        pr.get("xai/core xai usage") == 1
        and pr.get("xai/core xai invoice preview (context)") == 1
        and pr.get("xai/core xai spending limits (context)") == 1
    )
    gem_ok = first["bigquery_jobs"] == 1
    provider_total = sum(pr.values())
    for c in checks:
        sec.say(f"check {c['check']} at {NOW:%Y-%m-%dT%H:%MZ} (same process, same SecretResolver):")
        for name, count in c["provider_requests"].items():
            sec.say(f"    {name:<52} {count}")
        sec.say(f"    {'gemini BigQuery query jobs (jobs.insert)':<52} {c['bigquery_jobs']}")
        sec.say(f"    {'  all BigQuery HTTP calls of that job':<52} {len(c['bigquery_http_calls'])}")
        sec.say(f"    {'Secret Manager: SecretResolver.fetches':<52} {c['secret_fetches']}")
        sec.say(f"    {'Secret Manager: requests the fake received':<52} {c['secret_manager_requests']}")
        sec.say(f"    {'Slack posts':<52} {c['slack_posts']}")
    sec.say(f"BigQuery calls of one check: {', '.join(first['bigquery_http_calls'])}")
    sec.details["checks"] = checks

    holds_first = openai_ok and anth_ok and xai_ok and gem_ok and first["secret_fetches"] == n_secrets
    sec.figures.append(
        Figure(
            "requests, check 1: cost endpoint per account",
            f"openai {n_openai}x1, anthropic 1, xai 1 (+2 context), gemini {first['bigquery_jobs']} job; "
            f"{provider_total} HTTP total",
            "1 per account +2 xAI ctx, 1 query",
            holds_first,
            float(provider_total + first["bigquery_jobs"]),
        )
    )
    sec.figures.append(
        Figure(
            "Secret Manager reads, check 1 -> check 2",
            f"{first['secret_fetches']} -> {second['secret_fetches']} (fake saw "
            f"{first['secret_manager_requests']} -> {second['secret_manager_requests']})",
            f"{n_secrets} -> 0",
            first["secret_fetches"] == n_secrets
            and second["secret_fetches"] == 0
            and second["secret_manager_requests"] == 0,
            float(second["secret_fetches"]),
        )
    )
    return sec
