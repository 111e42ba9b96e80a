"""Errors raised by llm-budget-alert.

The hierarchy is small on purpose; every error a check can meet is one of these::

    BudgetAlertError                 base class, never raised itself
    ├── ConfigError                  bad or missing configuration: names the field and the fix
    │   └── SecretError              a secret is missing or unreadable: names which one (never its value)
    ├── ProviderError                one cost source failed: carries provider, account and a `Cause`
    ├── StateError                   alert state is unreadable, corrupted or of an unknown version
    │   └── StateConflict            a conditional write lost a race (another run wrote first)
    └── NotifyError                  Slack did not accept a message: carries a `Cause`, whether it is
                                     permanent (with the fix) and whether the post may have landed

A `ProviderError` is caught per source by the check and becomes a *failed* result: it is never
turned into $0 and never stops the other sources. `ConfigError` and `StateError` stop a check
before anything is posted.
"""

from __future__ import annotations

import enum

__all__ = [
    "BudgetAlertError",
    "Cause",
    "ConfigError",
    "NotifyError",
    "ProviderError",
    "SecretError",
    "StateConflict",
    "StateError",
]


class Cause(enum.StrEnum):
    """Why a provider or Slack call failed, in words an operator acts on."""

    AUTH = "auth"  # 401: key missing, wrong or revoked
    PERMISSION = "permission"  # 403: key valid but lacks the admin/billing scope
    RATE_LIMIT = "rate_limit"  # 429 after bounded retries
    SERVER_ERROR = "server_error"  # 5xx / 529 after bounded retries
    TIMEOUT = "timeout"  # no answer within the time budget
    CONNECTION = "connection"  # refused, reset, DNS
    BAD_RESPONSE = "bad_response"  # error envelope in a 200, drifted shape, non-JSON, pagination loop
    NOT_FOUND = "not_found"  # 404, missing table, unknown team
    QUOTA = "quota"  # a cost cap we set ourselves was hit (BigQuery maximum_bytes_billed)
    SECRET = "secret"  # the key could not be read from Secret Manager / environment
    CLIENT_ERROR = "client_error"  # other 4xx: the request we built was refused
    WEBHOOK_REVOKED = "webhook_revoked"  # Slack 404 no_service / 403 invalid_token: the webhook is gone
    CHANNEL_ARCHIVED = "channel_archived"  # Slack 410 channel_is_archived
    POSTING_DENIED = "posting_denied"  # Slack 403 action_prohibited / posting_to_general_channel_denied
    MESSAGE_REJECTED = "message_rejected"  # Slack 400 invalid_payload / invalid_blocks / too_many_attachments

    @property
    def describe(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[Cause, str] = {
    Cause.AUTH: "admin key rejected",
    Cause.PERMISSION: "key lacks billing/admin permission",
    Cause.RATE_LIMIT: "rate limited",
    Cause.SERVER_ERROR: "provider server error",
    Cause.TIMEOUT: "timed out",
    Cause.CONNECTION: "connection failed",
    Cause.BAD_RESPONSE: "unexpected response shape",
    Cause.NOT_FOUND: "not found",
    Cause.QUOTA: "query cost cap reached",
    Cause.SECRET: "key could not be read",
    Cause.CLIENT_ERROR: "request refused",
    Cause.WEBHOOK_REVOKED: "Slack webhook revoked or deleted",
    Cause.CHANNEL_ARCHIVED: "Slack channel archived",
    Cause.POSTING_DENIED: "Slack refuses posts to that channel",
    Cause.MESSAGE_REJECTED: "Slack rejected the message",
}


class BudgetAlertError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(BudgetAlertError):
    """Configuration is missing or invalid. The message names the field and how to fix it."""


class SecretError(ConfigError):
    """A secret could not be read. The message names the secret (resource or variable), never its value.

    `reason` is one of `not_found`, `permission_denied`, `empty`, `unset`, `unreadable` (`doctor` shows it).
    """

    def __init__(self, message: str, *, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


class _Classified(BudgetAlertError):
    """An error with a classified `cause`, its `message`, and the HTTP `status` when there was one."""

    def __init__(self, cause: Cause, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message
        self.status = status


class ProviderError(_Classified):
    """One cost source failed, with a classified cause."""


class StateError(BudgetAlertError):
    """Alert state could not be read or written, or is corrupted / of an unknown version."""


class StateConflict(StateError):
    """A conditional write lost a race: another invocation wrote the state first."""


class NotifyError(_Classified):
    """Slack did not accept a message.

    `permanent`: retrying will not help until someone acts (`fix` says what to do). `maybe_delivered`:
    the request was sent and its answer lost (reset, timeout), so Slack may have posted it.
    """

    def __init__(
        self,
        cause: Cause,
        message: str,
        *,
        status: int | None = None,
        permanent: bool = False,
        fix: str | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(cause, message, status=status)
        self.permanent = permanent
        self.fix = fix
        self.maybe_delivered = maybe_delivered
