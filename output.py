"""What a check answers: the JSON document (HTTP function, `--json`) and the CLI's text. Strings and
dicts only; `main.py` prints them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from alerts import weekly
from alerts.limits import views
from alerts.rules import Scope
from check import CheckOutcome
from models import ZERO, SourceResult, usd, usd_plain

__all__ = ["cli_text", "table", "to_json"]


def _usd(v: Decimal | None) -> str | None:
    return None if v is None else usd_plain(v)  # the rounding Slack shows (models.cents)


def to_json(outcome: CheckOutcome) -> dict[str, Any]:
    """Per-account status, month-to-date USD (decimal strings), freshness, totals, teams and the
    unassigned spend with their reconciliation, partial, alerts."""
    scopes = {s.name: s for s in outcome.scopes}
    providers: dict[str, Any] = {}
    for r in outcome.results:
        providers.setdefault(r.account.provider, {"accounts": []})["accounts"].append(_account_json(r))
    for name, p in providers.items():
        s = scopes.get(name)
        if s is not None:
            p.update(_scope_json(s))
    total = scopes["total"]
    return {
        "checked_at": outcome.now.isoformat(),
        "partial": outcome.partial,
        "total": _scope_json(total),
        "providers": providers,
        **_teams_json(outcome.scopes),
        "alerts": {
            "holding": sorted(e.key for e in outcome.events_now),
            "delivered": outcome.delivered,
            "pending": outcome.pending,
        },
        "destinations": {dest: dataclasses.asdict(r) for dest, r in outcome.deliveries.items()},
        "dropped": outcome.dropped,
        "slack": {  # the aggregate over destinations (posted: at least one took its message)
            "posted": outcome.posted,
            "error": outcome.notify_error,
            "dry_run": outcome.dry_run,
            "permanent": outcome.notify_permanent,
            "fix": outcome.notify_fix,
        },
        "state_error": outcome.state_error,
        "elapsed_s": round(outcome.elapsed_s, 3),
        **({"weekly": weekly.to_json(outcome.weekly)} if outcome.weekly is not None else {}),
    }


def _account_json(r: SourceResult) -> dict[str, Any]:
    acc: dict[str, Any] = {
        "label": r.account.label,
        "status": r.status.value,
        "billing_month": r.period.key,
        "month_timezone": r.period.tz_name,
        "mtd_usd": None,
    }
    if r.report is None:
        acc.update(cause=r.cause.value if r.cause else None, error=r.error)
        return acc
    rep = r.report
    acc.update(
        mtd_usd=str(rep.mtd_usd),
        mtd_usd_rounded=_usd(rep.mtd_usd),
        freshness={
            "as_of": rep.freshness.as_of.isoformat() if rep.freshness.as_of else None,
            "note": rep.freshness.note,
            "complete_through": c.isoformat() if (c := rep.freshness.complete_through) else None,
        },
        partial=rep.partial_reason,
        requests=rep.requests,
        notes=list(rep.notes),
    )
    if rep.headroom is not None:
        acc["headroom"] = {
            k: _usd(v) if isinstance(v, Decimal) else v for k, v in dataclasses.asdict(rep.headroom).items()
        }
    acc["limits"] = [
        {
            "name": v.headroom.name,
            "limit_usd": _usd(v.headroom.limit_usd),
            "used_usd": _usd(v.used_usd),
            "remaining_usd": _usd(v.headroom.limit_usd - v.used_usd),
            "enforcing": v.headroom.enforcing,
            "crossing_day": v.crossing_day.isoformat() if v.crossing_day else None,
        }
        for v in views(r)
    ]
    return acc


def _scope_json(s: Scope) -> dict[str, Any]:
    return {
        "mtd_usd": None if s.mtd_usd is None else str(s.mtd_usd),
        "mtd_usd_rounded": _usd(s.mtd_usd),
        "budget_usd": _usd(s.budget_usd),
        "pct": None if s.pct is None else str(s.pct),
        "billing_month": s.month,
        "partial": s.partial,
        "failed": list(s.failed_parts),
        "note": s.note,
        "forecast_usd": _usd(s.forecast.projected_usd) if s.forecast else None,
        "forecast_crossing_day": s.forecast.crossing_day.isoformat()
        if s.forecast and s.forecast.crossing_day
        else None,
    }


def _teams_json(scopes: list[Scope]) -> dict[str, Any]:
    """`teams`, `unassigned` and `reconciliation` (owned + unassigned = total, exact decimal strings);
    `teams` is {} and the other two null for a document without teams."""
    teams = {s.name.removeprefix("team/"): _team_json(s) for s in scopes if s.level == "team"}
    rest = next((s for s in scopes if s.level == "unassigned"), None)
    if rest is None:
        return {"teams": teams, "unassigned": None, "reconciliation": None}
    total = next(s for s in scopes if s.level == "total")
    owned, unassigned, whole = (v if v is not None else ZERO for v in (rest.owned_usd, rest.mtd_usd, total.mtd_usd))
    return {
        "teams": teams,
        "unassigned": {
            "mtd_usd": None if rest.mtd_usd is None else str(rest.mtd_usd),
            "mtd_usd_rounded": _usd(rest.mtd_usd),
            "partial": rest.partial,
            "failed": list(rest.failed_parts),
            "notes": _notes(rest),
            "by_account": {scope: None if v is None else str(v) for scope, v in rest.parts},
        },
        "reconciliation": {
            "owned_usd": str(owned),
            "unassigned_usd": str(unassigned),
            "total_usd": str(whole),
            "balanced": owned + unassigned == whole,
        },
    }


def _team_json(s: Scope) -> dict[str, Any]:
    """A team's (or the unassigned spend's) figure: the scope's fields, its notes, freshness and parts."""
    out = _scope_json(s)
    del out["note"]  # a team's notes are a list (its own and the total's)
    out.update(
        notes=_notes(s),
        freshness={
            "as_of": s.as_of.isoformat() if s.as_of else None,
            "complete_through": c.isoformat() if (c := s.complete_through) else None,
        },
        parts={scope: None if v is None else str(v) for scope, v in s.parts},
    )
    return out


def _notes(s: Scope) -> list[str]:
    return [*([s.note] if s.note else []), *s.notes]


def _money(value: str | None) -> str:
    """A document amount as Slack shows it ($1,234.57, models.usd), or "-" when there is none."""
    return "-" if value is None else usd(Decimal(value))


def table(doc: dict[str, Any]) -> str:
    """The CLI table of a check document: total, providers, accounts with freshness."""
    rows = [f"{'scope':<28} {'status':<7} {'month-to-date':>14} {'budget':>12} {'pct':>7}  freshness"]
    t = doc["total"]
    rows.append(
        f"{'TOTAL' + (' (partial)' if doc['partial'] else ''):<28} {'':<7} "
        f"{_money(t['mtd_usd']):>14} {_money(t['budget_usd']):>12} {t['pct'] or '-':>7}"
    )
    for name, p in doc["providers"].items():
        rows.append(
            f"{name:<28} {'':<7} {_money(p.get('mtd_usd')):>14} {_money(p.get('budget_usd')):>12} "
            f"{p.get('pct') or '-':>7}"
        )
        for a in p["accounts"]:
            as_of = (a.get("freshness") or {}).get("as_of")
            fresh = f"as of {dt.datetime.fromisoformat(as_of):%Y-%m-%d %H:%M}Z" if as_of else ""
            if through := (a.get("freshness") or {}).get("complete_through"):
                fresh = f"complete days through {through}"
            value = _money(a["mtd_usd"]) if a.get("mtd_usd") is not None else f"FAILED ({a.get('cause')})"
            rows.append(
                f"  {name + '/' + a['label']:<26} {a['status']:<7} {value:>14} {'':>12} {'':>7}  "
                f"{fresh} [{a['billing_month']}]"
            )
    rows.extend(_team_rows(doc))
    return "\n".join(rows)


def _team_rows(doc: dict[str, Any]) -> list[str]:
    """The teams section: each team, then the unassigned spend and whether the sums balance."""
    if doc.get("unassigned") is None:
        return []
    rows = ["", f"{'team':<28} {'':<7} {'month-to-date':>14} {'budget':>12} {'pct':>7}  freshness"]
    for name, t in doc["teams"].items():
        fresh = t["freshness"]
        when = f"as of {dt.datetime.fromisoformat(a):%Y-%m-%d %H:%M}Z" if (a := fresh["as_of"]) else ""
        if fresh["complete_through"]:
            when = f"complete days through {fresh['complete_through']}"
        failed = f" FAILED: {', '.join(t['failed'])}" if t["failed"] else ""
        rows.append(
            f"{name + (' (partial)' if t['partial'] else ''):<28} {'':<7} {_money(t['mtd_usd']):>14} "
            f"{_money(t['budget_usd']):>12} {t['pct'] or '-':>7}  {when}{failed}"
        )
    u, rec = doc["unassigned"], doc["reconciliation"]
    rows.append(f"{'unassigned' + (' (partial)' if u['partial'] else ''):<28} {'':<7} {_money(u['mtd_usd']):>14}")
    balance = "balanced" if rec["balanced"] else "NOT BALANCED"
    rows.append(
        f"  owned {_money(rec['owned_usd'])} + unassigned {_money(rec['unassigned_usd'])} = "
        f"total {_money(rec['total_usd'])} ({balance})"
    )
    return rows


def cli_text(outcome: CheckOutcome, doc: dict[str, Any]) -> str:
    """The CLI's answer: the table, the Slack message (posted or, in a dry run, what would be), and
    any Slack error."""
    parts = [table(doc)]
    several = len(outcome.payloads) > 1 or any(d != "default" for d in outcome.payloads)
    for dest, payload in outcome.payloads.items():
        res = outcome.deliveries.get(dest)
        took = res is not None and res.posted
        verb = "would post" if outcome.dry_run else ("posted" if took else "could NOT post")
        where = f"Slack → {dest}" if several else "Slack"
        parts.append(f"\n{where} ({verb}):\n{payload['text']}")
    if not outcome.payloads:
        parts.append("\nnothing new to say: no message")
    if outcome.notify_error and not outcome.posted:
        parts.append(f"\nSlack error: {outcome.notify_error} (alerts kept pending for the next run)")
    elif outcome.notify_error:
        parts.append(f"\nSlack warning: {outcome.notify_error}")
    return "\n".join(parts)
