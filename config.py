"""Configuration in one place: the budget document, the process environment, and secret resolution.

Two sources, both validated here and nowhere else:

* the **budget document** (JSON): thresholds, budgets per account / provider / total, accounts and
  where each account's key lives. From `BUDGET_CONFIG` (the JSON itself; Terraform sets it with
  `jsonencode`) or `BUDGET_CONFIG_FILE` (a path, for local runs).
* the **environment** (`Settings`): Slack webhook, state location, base URLs, emulator hosts.

Vendor facts (account schemas, key and base-URL variables) live in each `providers/<name>.py`;
the budget document's schema is built from the registry (`document_schema`).

Every variable the code reads is listed in `CLOUD_ENV_VARS` (Terraform sets each of them) or
`LOCAL_ENV_VARS` (local runs, tests and the demo only). `tests/test_terraform.py` holds both lists
against `terraform/` and against the source.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

import logs
import providers
from errors import ConfigError, SecretError
from providers import Account, KeyedAccount, ProviderSpec, Usd
from providers._spec import SECRET_NAME_RE

__all__ = [
    "BASE_URL_ENV",
    "CLOUD_ENV_VARS",
    "DEFAULT_BASE_URLS",
    "LOCAL_ENV_VARS",
    "MAX_DOCUMENT_BYTES",
    "SECRET_MANAGER_IMPORTS",
    "SECRET_NAME_RE",
    "SECRET_TIMEOUT_S",
    "Account",
    "BudgetConfig",
    "ConfigError",
    "KeyedAccount",
    "ProviderBudget",
    "ProviderTable",
    "SecretResolver",
    "Settings",
    "document_schema",
    "parse_budget_config",
    "repeated",
]

# --- environment variables -------------------------------------------------------------------

_STATIC_CLOUD_ENV_VARS = (
    "BIGQUERY_JOB_PROJECT",
    "BUDGET_CONFIG",
    "CHECK_DEADLINE_SECONDS",
    "LOG_LEVEL",
    "SLACK_WEBHOOK_SECRET",
    "STATE_BACKEND",
    "STATE_BUCKET",
    "STATE_OBJECT",
)
CLOUD_ENV_VARS: tuple[str, ...] = tuple(
    sorted({*_STATIC_CLOUD_ENV_VARS, *(s.base_url_env for s in providers.builtin() if s.base_url_env)})
)
"""Read by the deployed function (the fixed ones, and each built-in provider's base-URL variable);
`terraform/function.tf` sets exactly these."""

LOCAL_ENV_VARS: tuple[str, ...] = (
    "BIGQUERY_EMULATOR_HOST",
    "BUDGET_CONFIG_FILE",
    "SECRET_MANAGER_EMULATOR_HOST",
    "SLACK_WEBHOOK_URL",
    "STATE_FILE",
)
"""Local runs only (plus each account's `key_env`, named in the budget document)."""

# Derived from the built-in specs, for the tests that hold them against Terraform.
DEFAULT_BASE_URLS: Mapping[str, str] = {s.name: s.default_base_url for s in providers.builtin() if s.default_base_url}
BASE_URL_ENV: Mapping[str, str] = {s.name: s.base_url_env for s in providers.builtin() if s.base_url_env}
SECRET_TIMEOUT_S = 5.0  # one secret read, retries included
SECRET_FLOOR_S = 2.0  # ... even when the check's time is (nearly) spent: the webhook read must still work


# --- the budget document ---------------------------------------------------------------------


def _percent(v: Decimal) -> Decimal:
    if not v.is_finite() or not (0 < v <= 1000):
        raise ValueError("each threshold is a percentage of budget with 0 < p <= 1000, e.g. 80")
    return v


Percent = Annotated[Decimal, AfterValidator(_percent)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


A = TypeVar("A", bound=Account)


class ProviderBudget(_Strict, Generic[A]):
    budget_usd: Usd | None = None
    accounts: tuple[A, ...] = ()

    @model_validator(mode="after")
    def _accounts(self) -> ProviderBudget[A]:
        dupes = repeated(a.label for a in self.accounts)
        if dupes:
            shown = ", ".join(dupes[:10]) + (f" and {len(dupes) - 10} more" if len(dupes) > 10 else "")
            raise ValueError(f"account labels must be unique; repeated: {shown}")
        return self


def repeated(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted; one pass over `values` (40k labels: linear)."""
    counts = Counter(values)
    return sorted(v for v, n in counts.items() if n > 1)


class Spike(_Strict):
    factor: Decimal = Field(default=Decimal(2), gt=1, le=1000)
    min_usd: Decimal = Field(default=Decimal(10), ge=0, le=Decimal("1e12"))
    baseline_days: int = Field(default=7, ge=3, le=28)


class Digest(_Strict):
    enabled: bool = True
    hour_utc: int = Field(default=9, ge=0, le=23)


class ProviderTable(_Strict):
    """The budget document's `providers`: one optional field per registered provider (`document_schema`)."""

    def configured(self) -> dict[str, ProviderBudget[Any]]:
        """The providers the document configures, in registry order."""
        return {name: pb for name in type(self).model_fields if (pb := getattr(self, name)) is not None}


class BudgetConfig(_Strict):
    """The budget document. See README "Configuration" for a complete example."""

    total_budget_usd: Usd
    thresholds_pct: tuple[Percent, ...] = (Decimal(50), Decimal(80), Decimal(100))
    forecast_thresholds_pct: tuple[Percent, ...] = (Decimal(100),)
    providers: ProviderTable
    spike: Spike = Spike()
    failure_notice_after_runs: int = Field(default=2, ge=1, le=48)
    digest: Digest = Digest()

    @field_validator("thresholds_pct", "forecast_thresholds_pct")
    @classmethod
    def _sorted(cls, v: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _complete(self) -> BudgetConfig:
        configured = self.configured()
        if not configured:
            known = ", ".join(type(self.providers).model_fields)
            raise ValueError(f"providers: configure at least one of {known}")
        for name, pb in configured.items():
            if pb.budget_usd is None:
                raise ValueError(
                    f"providers.{name}.budget_usd is missing: every configured provider needs a "
                    f'monthly budget in USD, e.g. "budget_usd": 500'
                )
            need = providers.spec(name).accounts_required
            if need is not None and not pb.accounts:
                raise ValueError(f"providers.{name}.accounts: list at least one account with its {need}")
        return self

    def configured(self) -> dict[str, ProviderBudget[Any]]:
        """The configured providers, in registry order."""
        return self.providers.configured()

    def accounts(self, provider: str) -> tuple[Account, ...]:
        pb = self.configured()[provider]
        if pb.accounts:
            return tuple(pb.accounts)
        # A provider with no account list has one "default" account (keyed by its default env var).
        return providers.spec(provider).default_accounts()


@functools.cache
def document_schema(specs: tuple[ProviderSpec, ...]) -> type[BudgetConfig]:
    """The budget document's model for these providers: `providers.<name>` is a `ProviderBudget` of
    each spec's account schema. Built once per spec tuple, so a provider registered for a test
    takes effect at the next parse."""
    fields: dict[str, Any] = {s.name: (ProviderBudget[s.account_schema] | None, None) for s in specs}  # type: ignore[name-defined]
    table = create_model("Providers", __base__=ProviderTable, **fields)
    schema: type[BudgetConfig] = create_model("BudgetConfig", __base__=BudgetConfig, providers=(table, ...))
    return schema


MAX_DOCUMENT_BYTES = 1024 * 1024
"""A budget document is at most 1 MiB (the example is 2 KiB; 40,000 accounts of bare labels are
0.8 MiB): a larger one is refused before it is parsed. Checks are linear: that document validates
in about 0.5 s (`python -m bench.budget_document`)."""
MAX_DEPTH = 32
"""Nesting levels allowed (a budget document needs 5: document, providers, provider, accounts,
account). Checked before `json.loads`, whose recursion a deeply nested document would exhaust."""
MAX_EXPLAINED = 20  # validation problems listed one by one; the rest are counted
# A string (possessive, so never rescanned; an unterminated one runs to the end instead of failing
# and being retried from each later quote, which would be quadratic), or a bracket.
_JSON_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\[\s\S])*+(?:"|\\?\Z)|[\[\]{}]')


def parse_budget_config(raw: str | bytes, *, origin: str) -> BudgetConfig:
    """Parse and validate the budget document; errors name the field (or the byte) and the fix.

    Every malformed document is a `ConfigError`, in time linear in its size: too large, not UTF-8,
    nested too deep, not JSON, a key given twice in one object, or a value that fails validation.
    """
    text = _document_text(raw, origin)
    _check_depth(text, origin)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except _DuplicateKey as exc:
        raise ConfigError(
            f'{origin}: the key "{_clip(exc.key)}" appears twice in one object (JSON would keep only the '
            "last one silently): remove or rename one"
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise ConfigError(f"{origin}: not valid JSON: a number has more than 4300 digits") from None
    try:
        return document_schema(providers.specs()).model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: invalid budget configuration:\n{_explain(exc)}") from None


def _too_large(origin: str, size: str | None) -> ConfigError:
    what = f"is {size}, larger than" if size else "is larger than"
    return ConfigError(
        f"{origin}: the budget document {what} the limit of 1 MiB ({MAX_DOCUMENT_BYTES:,} bytes); "
        "list fewer accounts or remove what is not configuration"
    )


def _document_text(raw: str | bytes, origin: str) -> str:
    """The document as text: at most MAX_DOCUMENT_BYTES of UTF-8 (a leading BOM is dropped)."""
    if isinstance(raw, str):
        if len(raw) > MAX_DOCUMENT_BYTES:  # a character is at least one byte
            raise _too_large(origin, f"{len(raw):,} characters")
        # os.environ carries undecodable bytes as lone surrogates: back to bytes to find the first one.
        data = _escaped_bytes(raw, origin) if _has_surrogates(raw) else None
        if data is None:
            size = len(raw.encode("utf-8"))
            if size > MAX_DOCUMENT_BYTES:
                raise _too_large(origin, f"{size:,} bytes")
            return raw.removeprefix("\ufeff")
        raw = data
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _too_large(origin, None)  # a file is read up to one byte past the limit, no further
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{origin}: not UTF-8 text: byte offset {exc.start} (line {line}) is 0x{raw[exc.start]:02x}; "
            "save the document as UTF-8"
        ) from None


def _escaped_bytes(text: str, origin: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:  # a surrogate no undecodable byte turns into (not from os.environ)
        raise ConfigError(f"{origin}: not UTF-8 text: character {exc.start} is a lone surrogate") from None


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_depth(text: str, origin: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, in one pass that skips strings (brackets in a string
    are not nesting)."""
    depth = 0
    for m in _JSON_TOKEN_RE.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, m.start()) + 1
                column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
                raise ConfigError(
                    f"{origin}: nested deeper than {MAX_DEPTH} levels (line {line}, column {column}); "
                    "a budget document needs 5 (document, providers, provider, accounts, account)"
                )
        elif token in "]}":
            depth -= 1


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _segment(p: object) -> str:
    """A path segment as written, quoted when it is not a plain name or index (so an empty key shows as "")."""
    s = str(p)
    return s if re.fullmatch(r"[A-Za-z0-9_]+", s) else json.dumps(s)


def _explain(exc: ValidationError) -> str:
    lines = []
    errors = exc.errors(include_url=False, include_input=False)
    for err in errors[:MAX_EXPLAINED]:
        path = ".".join(_segment(p) for p in err["loc"] if not str(p).startswith("function-after"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = 'is not a known setting (check the spelling against README "Configuration")'
        lines.append(f"  - {path or '(document)'}: {msg}")
    if len(errors) > MAX_EXPLAINED:
        lines.append(f"  - …and {len(errors) - MAX_EXPLAINED} more problems of the same kinds")
    return "\n".join(lines)


# --- the environment -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a check reads from the environment, validated once."""

    budgets: BudgetConfig
    slack_webhook_url: str | None
    slack_webhook_secret: str | None
    state_backend: Literal["file", "gcs"]
    state_file: Path
    state_bucket: str | None
    state_object: str
    base_urls: Mapping[str, str]
    bigquery_job_project: str | None
    bigquery_emulator_host: str | None
    secret_manager_emulator_host: str | None
    deadline_s: float
    log_level: str

    def require_slack(self) -> None:
        """A run that may post needs a webhook; say so up front rather than keep alerts pending forever."""
        if not (self.slack_webhook_url or self.slack_webhook_secret):
            raise ConfigError(
                "no Slack webhook configured: set SLACK_WEBHOOK_SECRET to its Secret Manager version name "
                "(cloud) or SLACK_WEBHOOK_URL (local), or use --dry-run"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every setting from `env` (default: the process environment), validated; a `ConfigError` names the fix."""
        env = os.environ if env is None else env
        budgets = _load_budgets(env)
        webhook_url, webhook_secret = _webhook(env)
        backend, bucket = _state(env)
        return cls(
            budgets=budgets,
            slack_webhook_url=webhook_url,
            slack_webhook_secret=webhook_secret,
            state_backend=backend,
            state_file=Path(env.get("STATE_FILE") or ".state/alert-state.json"),
            state_bucket=bucket,
            state_object=env.get("STATE_OBJECT") or "llm-budget-alert/state.json",
            base_urls=_base_urls(env),
            bigquery_job_project=env.get("BIGQUERY_JOB_PROJECT") or None,
            bigquery_emulator_host=env.get("BIGQUERY_EMULATOR_HOST") or None,
            secret_manager_emulator_host=env.get("SECRET_MANAGER_EMULATOR_HOST") or None,
            deadline_s=_deadline(env),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        )


def _webhook(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    webhook_url = env.get("SLACK_WEBHOOK_URL") or None
    webhook_secret = env.get("SLACK_WEBHOOK_SECRET") or None
    if webhook_url and webhook_secret:
        raise ConfigError("set either SLACK_WEBHOOK_SECRET (cloud) or SLACK_WEBHOOK_URL (local), not both")
    if webhook_secret and not SECRET_NAME_RE.match(webhook_secret):
        raise ConfigError(
            "SLACK_WEBHOOK_SECRET must be a Secret Manager version name: projects/P/secrets/S/versions/latest"
        )
    if webhook_url and not webhook_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ConfigError("SLACK_WEBHOOK_URL must be an https:// incoming-webhook URL")
    return webhook_url, webhook_secret


def _state(env: Mapping[str, str]) -> tuple[Literal["file", "gcs"], str | None]:
    backend = env.get("STATE_BACKEND", "file")
    if backend not in ("file", "gcs"):
        raise ConfigError(f"STATE_BACKEND must be 'file' or 'gcs', not {backend!r}")
    bucket = env.get("STATE_BUCKET") or None
    if backend == "gcs" and not bucket:
        raise ConfigError("STATE_BACKEND=gcs needs STATE_BUCKET, the bucket Terraform created for alert state")
    return ("gcs" if backend == "gcs" else "file"), bucket


def _base_urls(env: Mapping[str, str]) -> dict[str, str]:
    """Each registered provider's API base URL: its base-URL variable, else its default."""
    base_urls = {}
    for spec in providers.specs():
        if spec.default_base_url is None:
            continue
        url = ((env.get(spec.base_url_env) if spec.base_url_env else None) or spec.default_base_url).rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"{spec.base_url_env} must start with https:// (got a value without a scheme)")
        base_urls[spec.name] = url
    return base_urls


def _deadline(env: Mapping[str, str]) -> float:
    try:
        deadline = float(env.get("CHECK_DEADLINE_SECONDS", "60"))
    except ValueError:
        raise ConfigError("CHECK_DEADLINE_SECONDS must be a number of seconds, e.g. 60") from None
    if not 5 <= deadline <= 3000:
        raise ConfigError("CHECK_DEADLINE_SECONDS must be between 5 and 3000")
    return deadline


def _load_budgets(env: Mapping[str, str]) -> BudgetConfig:
    raw = env.get("BUDGET_CONFIG")
    path = env.get("BUDGET_CONFIG_FILE")
    if raw and path:
        raise ConfigError("set either BUDGET_CONFIG (JSON) or BUDGET_CONFIG_FILE (a path), not both")
    if raw:
        return parse_budget_config(raw, origin="BUDGET_CONFIG")
    if path:
        try:
            with Path(path).open("rb") as f:
                data = f.read(MAX_DOCUMENT_BYTES + 1)  # enough to know it is too large, no more
        except OSError as exc:
            raise ConfigError(f"BUDGET_CONFIG_FILE={path}: cannot read it ({exc.strerror})") from None
        return parse_budget_config(data, origin=f"BUDGET_CONFIG_FILE={path}")
    raise ConfigError(
        "no budget configuration: set BUDGET_CONFIG to the JSON document or BUDGET_CONFIG_FILE to its path "
        "(see budgets.example.json)"
    )


# --- secrets ---------------------------------------------------------------------------------

# What the Secret Manager path imports on first use (see `check.import_client_libraries`).
SECRET_MANAGER_IMPORTS = (
    "google.api_core.exceptions",
    "google.api_core.retry",
    "google.api_core.client_options",
    "google.auth.credentials",
    "google.cloud.secretmanager",
    "requests.exceptions",
)


class SecretResolver:
    """Reads secrets once per process: Secret Manager for resource names, the environment otherwise.

    Values are cached in memory only and never logged; errors name the secret, never its value.
    The Secret Manager client is imported and built on first use, so runs without secrets pay
    nothing for it.
    """

    def __init__(self, *, env: Mapping[str, str] | None = None, emulator_host: str | None = None) -> None:
        self._env = os.environ if env is None else env
        self._emulator_host = emulator_host
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.fetches = 0  # Secret Manager calls made (benchmarks read it)
        self.stripped: set[str] = set()  # secrets / variables whose value had surrounding whitespace (doctor)

    def get(self, *, secret: str | None, env_name: str | None, what: str, time_left: float | None = None) -> str:
        """The value of `secret` (a Secret Manager version name) or of the variable `env_name`.

        `time_left` (seconds of the check's deadline) caps the Secret Manager call below `SECRET_TIMEOUT_S`.
        """
        if secret:
            with self._lock:  # held only to find the secret's own lock: one slow secret blocks no other
                one = self._locks.setdefault(secret, threading.Lock())
            with one:
                if secret not in self._cache:
                    value = self._access(secret, what, time_left)
                    logs.register_secret(value)
                    self._cache[secret] = value
                return self._cache[secret]
        if env_name:
            raw = self._env.get(env_name, "")
            value = raw.strip()
            if not value:
                raise SecretError(
                    f"{what}: environment variable {env_name} is not set (put the key there)", reason="unset"
                )
            if value != raw:
                self.stripped.add(env_name)
            logs.register_secret(value)
            return value
        raise SecretError(f"{what}: no key configured (set key_secret or key_env)", reason="unset")

    def _access(self, name: str, what: str, time_left: float | None = None) -> str:
        from google.api_core import exceptions as gexc  # heavy: only on the Secret Manager path
        from google.api_core import retry as gretry
        from requests import exceptions as req_exc

        client = self._secret_client()
        self.fetches += 1
        # One bound for the attempt (`timeout`, per request) and for the retries (an api_core `Retry`
        # terminates once its `timeout` is reached: googleapis/python-api-core#535): the smaller of
        # our own cap and what the check has left, never under SECRET_FLOOR_S.
        budget = SECRET_TIMEOUT_S if time_left is None else max(SECRET_FLOOR_S, min(SECRET_TIMEOUT_S, time_left))
        try:
            resp = client.access_secret_version(
                request={"name": name},
                timeout=budget,
                retry=gretry.Retry(initial=0.25, maximum=2.0, timeout=budget),
            )
        except gexc.NotFound:
            raise SecretError(
                f"{what}: secret {name} not found (add a version with gcloud secrets versions add)", reason="not_found"
            ) from None
        except (gexc.PermissionDenied, gexc.Forbidden):
            raise SecretError(
                f"{what}: permission denied on {name} (grant roles/secretmanager.secretAccessor on that secret)",
                reason="permission_denied",
            ) from None
        except (gexc.GoogleAPIError, req_exc.RequestException) as exc:
            raise SecretError(f"{what}: could not read {name}: {type(exc).__name__}") from None
        raw: str = resp.payload.data.decode("utf-8")
        value = raw.strip()
        if not value:
            raise SecretError(f"{what}: secret {name} is empty", reason="empty")
        if value != raw:
            self.stripped.add(name)  # e.g. `echo` added a newline: harmless, but doctor reports it
        return value

    def _secret_client(self) -> Any:
        with self._client_lock:  # fetch threads read their secrets at the same moment: build one client
            if self._client is None:
                from google.cloud import secretmanager

                if self._emulator_host:
                    from google.api_core.client_options import ClientOptions
                    from google.auth.credentials import AnonymousCredentials

                    self._client = secretmanager.SecretManagerServiceClient(
                        transport="rest",
                        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                        client_options=ClientOptions(api_endpoint=self._emulator_host),
                    )
                else:
                    self._client = secretmanager.SecretManagerServiceClient()
            return self._client
