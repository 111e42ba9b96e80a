"""Cost sources: one module per vendor behind one small interface, and the registry, the only list of vendors.

Every source turns one configured account into a `CostReport` for its own billing month, or raises
`ProviderError` with a classified cause. Each vendor module declares what the rest of the product
knows about it in one `SPEC = ProviderSpec(...)` (name, title, console link, account schema, key and
base-URL variables, billing month, pre-imports, doctor probe); nothing outside `providers/` names a
vendor (`tests/test_vendor_names.py`).

    openai     GET /v1/organization/costs            dollars (float)          UTC month
    anthropic  GET /v1/organizations/cost_report     cents (decimal string)   UTC month
    xai        POST /v1/billing/teams/{team}/usage   dollars; limits in cents UTC month
    gemini     BigQuery Cloud Billing export         billing currency → USD   Pacific invoice month
    bedrock    POST ce GetCostAndUsage (SigV4)       USD (decimal string)     UTC month, fetched every N h
    openrouter GET /api/v1/activity + /keys          USD (float)              UTC month (completed days + today)

Adding a vendor: write `providers/<name>.py` ending in `SPEC`, add it to `_BUILTIN`, give it a
simulator module, tests and a key in Terraform's key map (`terraform/locals.tf`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# The vendor modules are light (the Google clients they use are imported on first use), so importing
# them here, on the thread that imports `providers`, also keeps first imports out of the fetch threads.
from models import Deadline
from providers import anthropic, bedrock, gemini, openai, openrouter, xai
from providers._spec import (
    Account,
    CostSource,
    Deps,
    KeyedAccount,
    Memo,
    Probe,
    ProbeResult,
    ProbeStatus,
    ProviderSpec,
    SecretSource,
    TeamMatch,
    Usd,
    admin_key,
)

__all__ = [
    "Account",
    "CostSource",
    "Deadline",
    "Deps",
    "KeyedAccount",
    "Memo",
    "Probe",
    "ProbeResult",
    "ProbeStatus",
    "ProviderSpec",
    "SecretSource",
    "TeamMatch",
    "Usd",
    "admin_key",
    "build_source",
    "builtin",
    "names",
    "registered",
    "spec",
    "specs",
]

_BUILTIN: tuple[ProviderSpec, ...] = (
    openai.SPEC, anthropic.SPEC, xai.SPEC, gemini.SPEC, bedrock.SPEC, openrouter.SPEC
)  # fmt: skip
_extra: list[ProviderSpec] = []


def builtin() -> tuple[ProviderSpec, ...]:
    """The vendors this build ships, in the order messages list them (what Terraform deploys for)."""
    return _BUILTIN


def specs() -> tuple[ProviderSpec, ...]:
    """Every registered vendor: the built-in ones, then any `registered` for the moment."""
    return (*_BUILTIN, *_extra)


def names() -> tuple[str, ...]:
    return tuple(s.name for s in specs())


def spec(name: str) -> ProviderSpec:
    """The spec of the provider `name` (a key of the budget document's `providers`)."""
    for s in specs():
        if s.name == name:
            return s
    raise KeyError(f"no provider named {name!r}; known: {', '.join(names())}")


def build_source(provider: str, account: Account, deps: Deps) -> CostSource:
    """The cost source for `account` of `provider`."""
    return spec(provider).build(account, deps)


@contextlib.contextmanager
def registered(extra: ProviderSpec) -> Iterator[ProviderSpec]:
    """Add a source after the built-in ones for the duration of the block.

    For tests (a fixed-amount source) and for trying a provider before it is built in. Not
    thread-safe and not for production: a deployed build knows its vendors at import.
    """
    if extra.name in names():
        raise ValueError(f"a provider named {extra.name!r} is already registered")
    _extra.append(extra)
    try:
        yield extra
    finally:
        _extra.remove(extra)
