"""`make demo`: the real check, end to end, against local servers that speak the real APIs.

1. starts the provider simulator (OpenAI, Anthropic, xAI, OpenRouter), a Slack webhook receiver, a Secret
   Manager fake (the Slack webhook URL and one admin key are read from it, as in the cloud), the BigQuery
   emulator with a Cloud Billing export table (Gemini / Vertex AI rows, credits, a non-USD account), and
   moto (AWS STS + Cost Explorer) with a fake Google metadata server, so AWS Bedrock is read through
   federation: Google ID token → AssumeRoleWithWebIdentity → GetCostAndUsage;
2. runs `python main.py check` at 2026-11-28 18:00 UTC with a budget document that has teams (search,
   support, research: the scenario's own `teams` block, copied as it is), dollar thresholds and three
   Slack destinations on one receiver (`/hook/finops`, the default, `/hook/search`, `/hook/support`):
   thresholds are crossed, each team's message lands in its own channel and the total (and research,
   which names no destination) in finops; each channel is shown under its own heading, next to the
   scenario's exact team and unassigned sums (owned + unassigned = total);
3. runs it again an hour later: nothing new is posted in any channel;
4. switches the simulator's Anthropic to complete days only (as Anthropic's cookbook asks for them,
   and as other clients report the real API): a dry run says "complete days through Nov 27" rather
   than a fetch time, and on Dec 1 00:30 the date-range 400 is a correct $0, not a failure;
5. replays Nov 28 → Dec 2 hour by hour with fresh state (`python -m tools.replay`), in the default
   mode (today's bucket served): each alert fires once, the month rolls over on Dec 1 (Google's
   invoice month 8 hours later). Bedrock sits the replay out: moto serves queued answers, it has no
   clock to replay;
6. stops everything it started, also on failure.

Routing (one message per destination) is issue 13's routing slice: a build without `alerts/routing.py`
still posts one message, to the default channel, through `SLACK_WEBHOOK_SECRET`, and the demo says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devservers import bigquery_client, bigquery_server  # noqa: E402
from devservers.metadata import MetadataServer  # noqa: E402
from devservers.moto import load_cost_and_usage, moto_server  # noqa: E402
from simulator import (  # noqa: E402
    Scenario,
    SecretManagerFake,
    Simulator,
    SlackReceiver,
    billing_export,
    render_terminal,
)
from simulator._bedrock import cost_and_usage_results  # noqa: E402

NOW = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)
PROJECT = "demo-project"
TABLE = f"{PROJECT}.billing_export.gcp_billing_export_v1_01DEMO_234567_89ABCD"
XAI_TEAM = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
KEYS = {
    "DEMO_OPENAI_PROD_KEY": "sk-admin-sim-prod-7Qm2vXc9LpA4",
    "DEMO_OPENAI_RESEARCH_KEY": "sk-admin-sim-research-Hn3kT8wZ2rJe",
    "DEMO_XAI_KEY": "xai-mgmt-sim-core-Zt5nW2eK8uLs",
    "DEMO_OPENROUTER_KEY": "sk-or-v1-mgmt-sim-router-Qa7Lk2Wd9Xe3",
}
AWS_ACCOUNT = "111122223333"
AWS_ROLE = f"arn:aws:iam::{AWS_ACCOUNT}:role/llm-budget-alert-ce-read"
FIRST_OF_DECEMBER = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
ANTHROPIC_SECRET = "projects/demo-project/secrets/anthropic-main-admin-key"
SLACK_SECRET = "projects/demo-project/secrets/slack-webhook"
# Slack channels: one receiver, one webhook path each; finops is the default destination.
CHANNELS = ("finops", "search", "support")
DEFAULT_CHANNEL = "finops"
# Each team's budget and where its alerts go; what it owns is the scenario's `teams.<name>.match`.
TEAMS: dict[str, dict[str, object]] = {
    "search": {"budget_usd": 5000, "thresholds_usd": [4000], "notify": ["search"]},
    "support": {"budget_usd": 6000, "notify": ["support"]},
    "research": {"budget_usd": 2000},  # no destination of its own: the default one (finops)
}


def webhook_env(channel: str) -> str:
    return f"SLACK_{channel.upper()}_WEBHOOK_URL"


def budgets(scenario: Scenario, *, bedrock: bool = True) -> dict[str, object]:
    aws = {"bedrock": {"budget_usd": 2500, "accounts": [{"label": "main", "role_arn": AWS_ROLE}]}} if bedrock else {}
    return {
        "total_budget_usd": 24000,
        "thresholds_pct": [50, 80, 100],
        "thresholds_usd": [15000],
        # The default channel's webhook is a Secret Manager secret, as deployed; the teams' are variables.
        "destinations": {
            c: {"webhook_secret": f"{SLACK_SECRET}/versions/latest"}
            if c == DEFAULT_CHANNEL
            else {"webhook_env": webhook_env(c)}
            for c in CHANNELS
        },
        "default_destination": DEFAULT_CHANNEL,
        "teams": {t.name: {**TEAMS[t.name], "match": t.match} for t in scenario.teams},
        "providers": {
            "openai": {
                "budget_usd": 9000,
                "accounts": [
                    {"label": "prod", "budget_usd": 7500, "key_env": "DEMO_OPENAI_PROD_KEY"},
                    {"label": "research", "key_env": "DEMO_OPENAI_RESEARCH_KEY"},
                ],
            },
            "anthropic": {
                "budget_usd": 5000,
                "accounts": [{"label": "main", "key_secret": f"{ANTHROPIC_SECRET}/versions/latest"}],
            },
            "xai": {
                "budget_usd": 1000,
                "accounts": [{"label": "core", "team_id": XAI_TEAM, "key_env": "DEMO_XAI_KEY"}],
            },
            "gemini": {"budget_usd": 2000, "accounts": [{"label": "billing", "billing_export_table": TABLE}]},
            "openrouter": {"budget_usd": 1500, "accounts": [{"label": "router", "key_env": "DEMO_OPENROUTER_KEY"}]},
            **aws,
        },
        "digest": {"enabled": False},
    }


def banner(text: str) -> None:
    print(f"\n\033[1m== {text} ==\033[0m", flush=True)


def run(args: list[str], env: dict[str, str]) -> int:
    print(f"$ python {' '.join(args)}", flush=True)
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    print(proc.stdout, end="", flush=True)
    errors = [line for line in proc.stderr.splitlines() if '"severity": "ERROR"' in line]
    for line in errors[:5]:
        print(f"  log: {line}")
    return proc.returncode


def counts(slack: SlackReceiver) -> dict[str, int]:
    return {c: len(slack.messages(path=slack.hook_path(c))) for c in CHANNELS}


def show_channels(slack: SlackReceiver) -> bool:
    """Each channel's messages under its own heading; whether they are what this build should post."""
    for channel in CHANNELS:
        messages = slack.messages(path=slack.hook_path(channel))
        default = " (default destination)" if channel == DEFAULT_CHANNEL else ""
        banner(f"#{channel}{default}: {len(messages)} message(s)")
        for message in messages:
            print(render_terminal(message, width=100) + "\n")
    got = counts(slack)
    want = dict.fromkeys(CHANNELS, 1)  # one message per destination holding only its scopes
    if got != want:
        print(f"expected messages per channel {want}, got {got}")
        return False
    return True


def show_team_sums(scenario: Scenario, rows: list[billing_export.Row]) -> bool:
    """The scenario's own team, unassigned and total sums at NOW (computed from its hourly cells)."""
    print("\nthe scenario's exact sums at that instant (what the check must report):")
    owned = Decimal(0)
    for team in scenario.teams:
        mtd = scenario.expected_team(team.name, now=NOW, gemini_rows=rows)
        owned += mtd
        budget = Decimal(str(TEAMS[team.name]["budget_usd"]))
        print(f"  team/{team.name:<10} ${mtd:>10,.2f} of ${budget:,.0f} ({mtd / budget:.0%})")
    unassigned = scenario.expected_unassigned(now=NOW, gemini_rows=rows)
    total = scenario.expected_total(now=NOW, gemini_rows=rows)
    print(f"  {'unassigned':<15} ${unassigned:>10,.2f}")
    print(f"  {'total':<15} ${total:>10,.2f} (owned + unassigned = total: {owned + unassigned == total})")
    return owned + unassigned == total


def main() -> int:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="llm-budget-demo-") as tmp:
        banner("1. starting local servers (simulator, Slack receiver, Secret Manager fake, BigQuery emulator, moto)")
        sim = stack.enter_context(Simulator.start(clock=NOW))
        slack = stack.enter_context(SlackReceiver.start())
        secrets = stack.enter_context(
            SecretManagerFake.start(
                secrets={
                    ANTHROPIC_SECRET: "sk-ant-admin01-sim-main-Vb6yP1qRz0Wd",
                    SLACK_SECRET: slack.hook_url(DEFAULT_CHANNEL),
                }
            )
        )
        bq = stack.enter_context(bigquery_server(project=PROJECT))
        client = bigquery_client(bq, PROJECT)
        billing_export.create_export_table(client, TABLE, replace=True)
        rows = billing_export.scenario_rows("2026-11") + billing_export.scenario_rows(
            "2026-12", currency="EUR", conversion_rate="0.92", billing_account_id="01EURO-000000-000000"
        )
        billing_export.load(client, TABLE, rows)
        aws = stack.enter_context(moto_server())
        metadata = stack.enter_context(MetadataServer())
        bedrock_account = sim.scenario.find("bedrock/main")
        # moto serves each new request body the next queued answer: Nov 28's two pages, then Dec 1's
        load_cost_and_usage(
            aws,
            cost_and_usage_results(bedrock_account, now=NOW)
            + cost_and_usage_results(bedrock_account, now=FIRST_OF_DECEMBER),
            account_id=AWS_ACCOUNT,
        )
        print(f"simulator {sim.url} · slack {slack.url} · secret manager {secrets.url} · bigquery {bq.url}")
        print(f"moto (STS, Cost Explorer) {aws.url} · metadata server {metadata.host}")
        print(f"billing export {TABLE}: {len(rows)} rows (Nov USD account, Dec EUR account, credits, other services)")

        budget_file = Path(tmp) / "budgets.json"
        budget_file.write_text(json.dumps(budgets(sim.scenario), indent=2))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "XAI_", "AWS_"))},
            **sim.env(),
            **KEYS,
            "AWS_COST_EXPLORER_BASE_URL": aws.url,
            "GCE_METADATA_HOST": metadata.host,
            "BUDGET_CONFIG_FILE": str(budget_file),
            **{webhook_env(c): slack.hook_url(c) for c in CHANNELS if c != DEFAULT_CHANNEL},
            "SECRET_MANAGER_EMULATOR_HOST": secrets.url,
            "BIGQUERY_EMULATOR_HOST": bq.url,
            "BIGQUERY_JOB_PROJECT": PROJECT,
            "STATE_FILE": str(Path(tmp) / "state.json"),
            "LOG_LEVEL": "WARNING",
        }
        env.pop("SLACK_WEBHOOK_URL", None)  # destinations name their own webhooks (SLACK_WEBHOOK_* is refused)

        banner(f"2. one check at {NOW:%Y-%m-%d %H:%M} UTC: thresholds crossed, each channel gets its own message")
        if run(["main.py", "check", "--now", NOW.isoformat()], env) != 0:
            return 1
        if not show_channels(slack):
            return 1
        http_sources = ("openai/prod", "openai/research", "anthropic/main", "xai/core", "openrouter/router")
        expected = sum((sim.expected_mtd(s) for s in (*http_sources, "bedrock/main")), Decimal(0))
        gemini = billing_export.expected_net_usd(rows, "202611", billing_export.GEMINI_SERVICE_IDS, NOW)
        print(
            f"\nsimulator scenario total at that instant: ${expected + gemini:,.2f} "
            f"(HTTP providers and Bedrock ${expected:,.2f} + Gemini ${gemini:,.2f})"
        )
        if not show_team_sums(sim.scenario, rows):
            return 1

        later = NOW + dt.timedelta(hours=1)
        sim.set_clock(later)
        banner(f"3. the next hourly check ({later:%H:%M} UTC): nothing new, nothing posted")
        posted = counts(slack)
        if run(["main.py", "check", "--now", later.isoformat()], env) != 0:
            return 1
        if counts(slack) != posted:
            print(f"a repeat was posted ({posted} → {counts(slack)}): that is a bug")
            return 1
        print(f"Slack messages so far, per channel: {posted} (unchanged)")

        banner("4. Anthropic serving complete days only: freshness from the data, the 1st's date-range 400 is $0")
        sim.set_complete_days_only(True)
        for at in (NOW, FIRST_OF_DECEMBER):
            sim.set_clock(at)
            if run(["main.py", "check", "--dry-run", "--now", at.isoformat()], env) != 0:
                return 1
        sim.set_complete_days_only(False)
        sim.set_clock(later)

        banner("5. replay Nov 28 00:00 → Dec 2 00:00 UTC hourly, fresh state: each alert once, month rollover")
        env["STATE_FILE"] = str(Path(tmp) / "replay-state.json")
        replay_budgets = Path(tmp) / "replay-budgets.json"
        replay_budgets.write_text(json.dumps(budgets(sim.scenario, bedrock=False), indent=2))
        env["BUDGET_CONFIG_FILE"] = str(replay_budgets)
        before = counts(slack)
        if (
            run(
                [
                    "-m",
                    "tools.replay",
                    "--from",
                    "2026-11-28T00:00:00Z",
                    "--to",
                    "2026-12-02T00:00:00Z",
                    "--step",
                    "1h",
                    "--simulator",
                    sim.url,
                ],
                env,
            )
            != 0
        ):
            return 1
        after = counts(slack)
        print(f"Slack messages posted by the replay, per channel: { {c: after[c] - before[c] for c in CHANNELS} }")
        banner("6. stopping every server")
    print("done: all servers stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
