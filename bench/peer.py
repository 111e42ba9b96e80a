"""4. Side by side with the peer, llm-org-cost-monitor 0.2.0 (PyPI), on the same simulator data.

The peer needs Python >= 3.12, so it lives in its own throwaway venv, `.venv-peer/` at the repo
root (ignored by `.venv-*/`; never in the project's requirements), installed only when missing.

How the peer reads month-to-date (llm_org_cost_monitor/providers.py, cli.py, dates.py):
* OpenAI: `GET {OpenAICostClient.base_url}/organization/costs`, `bucket_width=1d`, `limit=180`,
  grouped by project_id, api_key_id, line_item, `end_time` = tomorrow 00:00 UTC; amounts
  `Decimal(str(value))` dollars. Before it, `GET /organization/projects` for project names.
* Anthropic: `GET {AnthropicCostClient.base_url}/organizations/cost_report`, `limit=31`, grouped by
  workspace_id, description, with `ending_at` clamped to *today* 00:00 UTC (finalised days only);
  each row `Decimal(amount) / 100` rounded to 6 decimals. Before it, `GET /organizations/workspaces`.
* Base URLs are class attributes with no setting, and `--period mtd` and the Anthropic clamp read
  the wall clock (`date.today()`, `providers._utc_today`). A launcher written to a temp dir sets the
  two base URLs to the simulator and `_utc_today` to the simulated date, then calls the peer's own
  CLI with the same window spelled explicitly: `summary --start <1st> --end <today> --format json`.

Both tools run as fresh processes under the same wrapper (wall time, own peak RSS), interleaved,
median of 7, with the same keys against the same simulator clock.

Totals are compared twice. At the bench clock (23:00 UTC) the peer lags by the day so far, because
it clamps Anthropic to finalised days; the gap is printed and recomputed. At 00:00 UTC both read
the same buckets, and there they must agree: the only difference left must be the peer's rounding
of each row to 6 decimals, recomputed from the same page (sub-cent).
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench._common import (
    LATENCY_MS,
    NOW,
    NOW_ISO,
    PEER_SCOPES,
    ROOT,
    Child,
    Figure,
    Section,
    SimServer,
    call,
    child_env,
    demo_accounts,
    expected_mtd,
    import_times,
    median,
    ms,
    run_child,
)
from bench.coldstart import argv_a, check_doc, env_a

PEER = "llm-org-cost-monitor"
PEER_VERSION = "0.2.0"
PEER_VENV = ROOT / ".venv-peer"
REPS = 7
REPS_LATENCY = 3

LAUNCHER = '''"""Run llm-org-cost-monitor's own CLI against the simulator (written by bench/peer.py at run time).

Overrides, and nothing else: the two base URLs (class attributes without a setting) and the UTC
"today" the Anthropic clamp reads from the wall clock, so the peer sees the simulator's clock.
"""
import datetime as dt
import sys

base, today = sys.argv[1], dt.date.fromisoformat(sys.argv[2])
from llm_org_cost_monitor import providers  # noqa: E402

providers.OpenAICostClient.base_url = base + "/v1"
providers.AnthropicCostClient.base_url = base + "/v1"
providers._utc_today = lambda: today
from llm_org_cost_monitor.cli import app  # noqa: E402

app(sys.argv[3:], prog_name="llm-org-cost-monitor")
'''


class PeerUnavailable(RuntimeError):
    pass


def _python312() -> str | None:
    """A Python >= 3.12 that actually runs (a pyenv shim for an unselected version does not)."""
    root = os.environ.get("PYENV_ROOT", "/root/.pyenv")
    candidates = sorted(glob.glob(f"{root}/versions/3.1[2-9]*/bin/python"))
    candidates += [p for p in (shutil.which("python3.12"), shutil.which("python3.13")) if p]
    for candidate in candidates:
        probe = [candidate, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"]
        try:
            if subprocess.run(probe, capture_output=True, timeout=30).returncode == 0:
                return candidate
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def ensure_peer(sec: Section) -> Path:
    """`.venv-peer/bin/python` with the peer installed; created only when missing or not that version."""
    py = PEER_VENV / "bin" / "python"
    probe = "import importlib.metadata as m; print(m.version('llm-org-cost-monitor'))"
    if py.exists():
        got = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, timeout=30)
        if got.returncode == 0 and got.stdout.strip() == PEER_VERSION:
            sec.say(f"peer: {PEER} {PEER_VERSION} already in {PEER_VENV.relative_to(ROOT)}/")
            return py
    base = _python312()
    if base is None:
        raise PeerUnavailable(f"{PEER} needs Python >= 3.12 and none was found")
    sec.say(f"peer: installing {PEER}=={PEER_VERSION} into {PEER_VENV.relative_to(ROOT)}/ with {base}")
    subprocess.run([base, "-m", "venv", "--clear", str(PEER_VENV)], check=True, timeout=120)
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{PEER}=={PEER_VERSION}"]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise PeerUnavailable(f"pip install {PEER}=={PEER_VERSION} failed: {done.stderr[-500:]}")
    return py


def _peer_argv(
    py: Path, launcher: Path, sim: SimServer, *, importtime: bool = False, now: dt.datetime = NOW
) -> list[str]:
    x = ["-X", "importtime"] if importtime else []
    first = now.date().replace(day=1)
    return [
        str(py), *x, str(launcher), sim.url, now.date().isoformat(),
        "summary", "--start", first.isoformat(), "--end", now.date().isoformat(), "--format", "json",
    ]  # fmt: skip


def _our_argv(now: dt.datetime) -> list[str]:
    argv = argv_a()
    return [*argv[:-1], f"{now:%Y-%m-%dT%H:%M:%SZ}"]


def _peer_env(workdir: Path) -> dict[str, str]:
    accounts = demo_accounts()
    return child_env(
        {
            "OPENAI_ADMIN_KEY": accounts["openai/prod"].key,
            "ANTHROPIC_ADMIN_KEY": accounts["anthropic/main"].key,
            "LLM_ORG_COST_LEDGER": str(workdir / "peer-ledger.json"),
        },
        workdir,
    )


def _peer_totals(child: Child) -> dict[str, Decimal]:
    if child.returncode != 0:
        raise RuntimeError(f"peer exited {child.returncode}: {child.stderr[-800:]}")
    doc = child.json()
    names = {"OpenAI": "openai", "Anthropic": "anthropic"}
    return {names[row["group"]]: Decimal(row["amount"]) for row in doc["summary"]}


def _our_totals(child: Child) -> dict[str, Decimal]:
    doc = check_doc(child)
    return {p: Decimal(v["mtd_usd"]) for p, v in doc["providers"].items()}


def _interleaved(
    sim: SimServer, ours: tuple[list[str], dict[str, str]], peer: tuple[list[str], dict[str, str]], reps: int
) -> tuple[list[Child], list[Child]]:
    a: list[Child] = []
    b: list[Child] = []
    for _ in range(reps):
        a.append(run_child(ours[0], ours[1], cwd=ROOT))
        b.append(run_child(peer[0], peer[1], cwd=Path(peer[1]["HOME"])))
    return a, b


def _anthropic_explained(sim: SimServer, peer_total: Decimal, now: dt.datetime = NOW) -> dict[str, Any]:
    """Recompute the peer's Anthropic figure from the same page: which part is window, which is rounding."""
    import httpx

    key = demo_accounts()["anthropic/main"].key
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("starting_at", f"{now:%Y-%m-01}T00:00:00Z"),
        ("ending_at", f"{now:%Y-%m-%d}T00:00:00Z"),
        ("bucket_width", "1d"),
        ("limit", "31"),
        ("group_by[]", "workspace_id"),
        ("group_by[]", "description"),
    ]
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        doc = client.get("/v1/organizations/cost_report", params=params, headers=headers).json()
    amounts = [Decimal(r["amount"]) for b in doc["data"] for r in b["results"]]
    exact = sum((a / 100 for a in amounts), Decimal(0))
    rounded = sum(((a / 100).quantize(Decimal("0.000001")) for a in amounts), Decimal(0))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "complete_days_expected": expected_mtd("anthropic/main", midnight),
        "same_page_unrounded": exact,
        "same_page_rounded_like_peer": rounded,
        "reproduces_peer": rounded == peer_total,
        "rows": len(amounts),
    }


SAME_WINDOW_AT = NOW.replace(hour=0, minute=0, second=0, microsecond=0)


def _same_window(
    sim: SimServer, py: Path, launcher: Path, our_env: dict[str, str], peer_env: dict[str, str], peer_home: Path
) -> dict[str, Any]:
    """Both tools at 00:00 UTC, where the peer's finalised-days clamp and our month-to-date cover the
    same buckets: the totals must agree, and what is left must be the peer's 6-decimal row rounding."""
    at = SAME_WINDOW_AT
    call("POST", f"{sim.url}/_sim/clock", {"now": f"{at:%Y-%m-%dT%H:%M:%SZ}"})
    try:
        ours = _our_totals(run_child(_our_argv(at), our_env, cwd=ROOT))
        peer = _peer_totals(run_child(_peer_argv(py, launcher, sim, now=at), peer_env, cwd=peer_home))
        explained = _anthropic_explained(sim, peer["anthropic"], at)
    finally:
        call("POST", f"{sim.url}/_sim/clock", {"now": NOW_ISO})
    expected = {p: sum((expected_mtd(s, at) for s in PEER_SCOPES if s.startswith(p)), Decimal(0)) for p in ours}
    total_ours, total_peer = sum(ours.values()), sum(peer.values())
    residue = total_ours - total_peer
    rounding = explained["same_page_unrounded"] - explained["same_page_rounded_like_peer"]
    agree = (
        all(ours[p] == expected[p] for p in expected)  # ours is the simulator's exact sum
        and ours["openai"] == peer["openai"]  # dollars both: equal to the last digit
        and explained["reproduces_peer"]  # the peer's Anthropic figure = same page, rounded per row
        and residue == rounding  # so the whole difference is that rounding ...
        and abs(residue) < Decimal("0.005")  # ... and it is under half a cent
    )
    return {
        "at": at,
        "expected": expected,
        "ours": ours,
        "peer": peer,
        "total_ours": total_ours,
        "total_peer": total_peer,
        "residue": residue,
        "rounding": rounding,
        "rows": explained["rows"],
        "agree": agree,
    }


def run(sim: SimServer, workdir: Path) -> Section:
    sec = Section(f"4. side by side with the peer ({PEER} {PEER_VERSION})")
    try:
        py = ensure_peer(sec)
    except (PeerUnavailable, subprocess.SubprocessError, OSError) as exc:
        sec.error = str(exc)
        sec.say(f"peer skipped: {exc}")
        sec.figures.append(Figure("peer: wall ours/peer", "skipped", "<= 1.0", False))
        return sec
    launcher = workdir / "peer_launch.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    peer_home = workdir / "peer-home"
    peer_home.mkdir(exist_ok=True)
    ours = (argv_a(), env_a(sim, workdir))
    peer = (_peer_argv(py, launcher, sim), _peer_env(peer_home))

    # Warm-up (page cache, .pyc), then one run of each alone for the totals and the requests it sent.
    _interleaved(sim, ours, peer, 1)
    sim.clear_requests()
    o1 = run_child(*ours, cwd=ROOT)
    our_reqs = [f"GET {r['path']} -> {r['status']}" for r in sim.requests()]
    sim.clear_requests()
    p1 = run_child(*peer, cwd=peer_home)
    peer_reqs = [f"GET {r['path']} -> {r['status']}" for r in sim.requests()]
    ours_tot, peer_tot = _our_totals(o1), _peer_totals(p1)

    expected = {p: sum((expected_mtd(s) for s in PEER_SCOPES if s.startswith(p)), Decimal(0)) for p in ours_tot}
    sec.say(f"clock {NOW:%Y-%m-%dT%H:%MZ}, accounts {', '.join(PEER_SCOPES)}, same keys for both tools")
    sec.say("ours runs in .venv-runtime (requirements.txt only, as deployed); the peer in .venv-peer (its own deps)")
    sec.say(f"{'provider':<10} {'simulator expected':>20} {'ours':>20} {'peer':>20}")
    for p in ("openai", "anthropic"):
        sec.say(f"{p:<10} {expected[p]:>20} {ours_tot[p]:>20} {peer_tot[p]:>20}")
    total_exp, total_ours, total_peer = sum(expected.values()), sum(ours_tot.values()), sum(peer_tot.values())
    sec.say(f"{'total':<10} {total_exp:>20} {total_ours:>20} {total_peer:>20}")
    ours_exact = all(ours_tot[p] == expected[p] for p in expected)
    agree = all(ours_tot[p] == peer_tot[p] for p in expected)
    explained = _anthropic_explained(sim, peer_tot["anthropic"])
    if not agree:
        gap_window = expected["anthropic"] - explained["complete_days_expected"]
        gap_round = explained["same_page_unrounded"] - explained["same_page_rounded_like_peer"]
        sec.say(
            f"the totals differ by ${total_exp - total_peer:.7f}, all of it Anthropic "
            f"(OpenAI agrees to the last digit: {ours_tot['openai'] == peer_tot['openai']}):"
        )
        sec.say(
            f"  window: the peer clamps ending_at to today 00:00 UTC (finalised days only), so "
            f"{NOW:%b %d} 00:00-{NOW:%H:%M} UTC is missing: ${gap_window:.7f}"
        )
        sec.say(
            f"  rounding: the peer rounds each of {explained['rows']} rows to 6 decimals of a dollar; the API "
            f"carries 7 (cents with 5 decimals): ${gap_round:.7f}"
        )
        sec.say(
            f"  recomputed from the same page with the peer's rules: ${explained['same_page_rounded_like_peer']} "
            f"({'reproduces' if explained['reproduces_peer'] else 'does NOT reproduce'} the peer's figure)"
        )
        sec.say(
            "  which is right: ours equals the simulator's month-to-date to the last digit "
            f"({ours_exact}); the peer's is a finalised-days total by design (its comment: Anthropic "
            "reports finalised days only). Units and pagination agree (cents / 100, one page each)."
        )
    same = _same_window(sim, py, launcher, ours[1], peer[1], peer_home)
    sec.say(
        f"same window for both (clock {same['at']:%Y-%m-%dT%H:%MZ}: the peer's clamp to today 00:00 UTC and our "
        "month-to-date read the same buckets):"
    )
    sec.say(f"{'provider':<10} {'simulator expected':>20} {'ours':>20} {'peer':>20}")
    for p in ("openai", "anthropic"):
        sec.say(f"{p:<10} {same['expected'][p]:>20} {same['ours'][p]:>20} {same['peer'][p]:>20}")
    sec.say(f"{'total':<10} {sum(same['expected'].values()):>20} {same['total_ours']:>20} {same['total_peer']:>20}")
    sec.say(
        f"  difference ${same['residue']:.7f}; the peer's rounding of {same['rows']} rows to 6 decimals, recomputed "
        f"from the same page: ${same['rounding']:.7f} -> {'agree' if same['agree'] else 'DO NOT agree'}"
    )
    sec.say(f"requests, ours (concurrent): {'; '.join(our_reqs)}")
    sec.say(f"requests, peer (one after another): {'; '.join(peer_reqs)}")

    # Wall time and RSS at 0 ms latency (pure process overhead), then at the latency of section 1.
    a, b = _interleaved(sim, ours, peer, REPS)
    wo, wp = median([c.wall_s for c in a]), median([c.wall_s for c in b])
    ro, rp = median([c.maxrss_mb for c in a]), median([c.maxrss_mb for c in b])
    co, cp = median([c.cpu_s for c in a]), median([c.cpu_s for c in b])
    sec.say(f"0 ms latency, {REPS} interleaved fresh processes each:")
    sec.say(f"    ours wall {', '.join(ms(c.wall_s) for c in a)}; median {ms(wo)}; peak RSS median {ro:.1f} MB")
    sec.say(f"    peer wall {', '.join(ms(c.wall_s) for c in b)}; median {ms(wp)}; peak RSS median {rp:.1f} MB")
    sec.say(
        f"    ratio ours/peer: wall {wo / wp:.2f}, peak RSS {ro / rp:.2f}, CPU (user+sys, less noisy) "
        f"{co / cp:.2f} ({ms(co)} / {ms(cp)})"
    )
    sim.set_latency(LATENCY_MS)
    try:
        la, lb = _interleaved(sim, ours, peer, REPS_LATENCY)
    finally:
        sim.set_latency(0)
    lwo, lwp = median([c.wall_s for c in la]), median([c.wall_s for c in lb])
    sec.say(
        f"{LATENCY_MS:.0f} ms latency, {REPS_LATENCY} each: ours median {ms(lwo)}, peer {ms(lwp)}: "
        f"ratio {lwo / lwp:.2f} (the peer's 4 requests run in sequence, ours 2 concurrently)"
    )
    peer_imports = import_times(
        run_child(_peer_argv(py, launcher, sim, importtime=True), peer[1], cwd=peer_home).stderr
    )
    sec.say(f"import time, peer: {peer_imports.total_ms:.0f} ms in all; by package (self time summed):")
    sec.say("    " + ", ".join(f"{name} {t:.0f} ms" for name, t in peer_imports.by_package[:8]))

    sec.details |= {
        "expected": {k: str(v) for k, v in expected.items()},
        "ours": {k: str(v) for k, v in ours_tot.items()},
        "peer": {k: str(v) for k, v in peer_tot.items()},
        "anthropic_explained": {k: str(v) for k, v in explained.items()},
        "same_window": {k: str(v) for k, v in same.items()},
        "requests_ours": our_reqs,
        "requests_peer": peer_reqs,
        "wall_s": {"ours": [c.wall_s for c in a], "peer": [c.wall_s for c in b]},
        "maxrss_mb": {"ours": [c.maxrss_mb for c in a], "peer": [c.maxrss_mb for c in b]},
        "cpu_s": {"ours": [c.cpu_s for c in a], "peer": [c.cpu_s for c in b]},
        "wall_ratio": wo / wp,
        "cpu_ratio": co / cp,
        "rss_ratio": ro / rp,
        "latency_wall_s": {"ours": [c.wall_s for c in la], "peer": [c.wall_s for c in lb]},
        "latency_wall_ratio": lwo / lwp,
        "peer_importtime": {"total_ms": peer_imports.total_ms, "by_package": peer_imports.by_package[:25]},
    }
    sec.figures += [
        Figure(
            "peer: our total = simulator's expected sum",
            f"${total_ours} {'=' if ours_exact else '!='} ${total_exp}",
            "exact",
            ours_exact,
        ),
        Figure(
            f"peer: totals, same window (to {same['at']:%b %d} 00:00 UTC)",
            f"ours ${same['total_ours']:.7f}, peer ${same['total_peer']:.6f}: "
            f"{'equal to the cent' if same['agree'] else 'DIFFER'} (residue ${same['residue']:.7f} "
            f"= peer's row rounding)",
            "agree",
            same["agree"],
        ),
        Figure(
            f"peer: totals at {NOW:%H:%M} UTC (info)",
            f"peer ${total_peer:.2f} vs ours ${total_ours:.2f}"
            + ("" if agree else f": peer lags ${total_ours - total_peer:.2f} (finalised Anthropic days only)"),
        ),
        Figure(
            "peer: wall ours/peer, config (a), 0 ms",
            f"{wo / wp:.2f} ({ms(wo)} / {ms(wp)}; CPU {co / cp:.2f})",
            "<= 1.0",
            wo / wp <= 1.0,
            wo / wp,
        ),
        Figure(
            "peer: peak RSS ours/peer, config (a)",
            f"{ro / rp:.2f} ({ro:.1f} / {rp:.1f} MB)",
            "<= 1.2",
            ro / rp <= 1.2,
            ro / rp,
        ),
        Figure(
            f"peer: wall ours/peer at {LATENCY_MS:.0f} ms (info)",
            f"{lwo / lwp:.2f} ({ms(lwo)} / {ms(lwp)})",
            value=lwo / lwp,
        ),
    ]
    return sec
