"""How provider answers are put on the wire: exact amounts, page cursors and the data faults.

Every provider endpoint builds its normal JSON body through an `Emitter`, which formats each amount
in the provider's unit (or spoils it for `negative_amounts` / `absurd_amounts` / `drift_amount_type`),
and returns a `Body`. `finish()` then applies the faults that act on the whole body.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from simulator._server import Reply, Request, json_reply
from simulator.faults import HUGE_BYTES

ABSURD_USD = Decimal(1_000_000_000)
CENTS_5 = Decimal("0.00001")


class Emitter:
    """Formats USD amounts for the wire; a data-fault mode can spoil every amount it formats."""

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode

    def _usd(self, usd: Decimal) -> Decimal:
        if self.mode == "negative_amounts":
            return -usd
        if self.mode == "absurd_amounts":
            return ABSURD_USD
        return usd

    def dollars(self, usd: Decimal) -> Any:
        """A JSON float of dollars whose repr round-trips to the exact Decimal (OpenAI, xAI usage)."""
        value = self._usd(usd)
        number = float(value)
        if Decimal(repr(number)) != value:
            raise ValueError(f"{value} cannot travel exactly as a float: lower the scenario's amounts")
        if self.mode == "drift_amount_type":
            return {"usd": number}
        return number

    def cents_string(self, usd: Decimal) -> Any:
        """Cents as a decimal string with 5 decimals (Anthropic cost_report)."""
        if self.mode == "drift_amount_type":
            return True
        return format((self._usd(usd) * 100).quantize(CENTS_5), "f")

    def whole_cents(self, usd: Decimal) -> Any:
        """Whole cents as an integer string (xAI invoice, balance and limits)."""
        if self.mode == "drift_amount_type":
            return {"cents": True}
        return str(int((self._usd(usd) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)))

    def wrapped_cents(self, usd: Decimal) -> Any:
        """Whole cents wrapped as `{"val": "..."}`."""
        if self.mode == "drift_amount_type":
            return {"val": False}
        return {"val": self.whole_cents(usd)}


@dataclasses.dataclass
class Body:
    """A normal answer: its JSON, the key `drift_missing_data` removes, and a list `huge` repeats."""

    payload: dict[str, Any]
    main_key: str
    huge_list: tuple[str | int, ...] = ()
    huge_item: Any = None


def finish(body: Body, mode: str | None, headers: dict[str, str] | None = None) -> Reply:
    """The reply for `body`, spoiled by the whole-body data faults."""
    headers = headers or {}
    if mode == "drift_missing_data":
        payload = {k: v for k, v in body.payload.items() if k != body.main_key}
        return json_reply(200, payload, headers)
    if mode == "truncated_json":
        raw = json.dumps(body.payload).encode()
        return Reply(200, raw[: max(1, len(raw) // 2)], "application/json", headers)
    if mode == "huge":
        return huge_reply(body, headers)
    return json_reply(200, body.payload, headers)


def huge_reply(body: Body, headers: dict[str, str]) -> Reply:
    """A valid-looking body of about `HUGE_BYTES`, streamed: `huge_item` repeated inside `huge_list`."""
    marker = "__SIMULATOR_HUGE_LIST__"
    payload = json.loads(json.dumps(body.payload))
    target: Any = payload
    for step in body.huge_list[:-1]:
        target = target[step]
    target[body.huge_list[-1]] = marker
    prefix, suffix = (part.encode() for part in json.dumps(payload).split(f'"{marker}"'))
    item = json.dumps(body.huge_item).encode()
    per_chunk = max(1, 65536 // (len(item) + 1))
    chunks = -(-HUGE_BYTES // ((len(item) + 1) * per_chunk))
    count = chunks * per_chunk
    length = len(prefix) + 2 + count * len(item) + (count - 1) + len(suffix)

    def stream() -> Iterator[bytes]:
        yield prefix + b"["
        block = b",".join([item] * per_chunk)
        for i in range(chunks):
            yield block if i == 0 else b"," + block
        yield b"]" + suffix

    return Reply(200, content_type="application/json", headers=headers, stream=stream, length=length)


# --- page cursors: opaque to clients, "page_" + base64 of a position -------------------------------


def encode_cursor(position: str) -> str:
    return "page_" + base64.urlsafe_b64encode(position.encode()).decode()


def decode_cursor(token: str) -> str:
    """The position inside a cursor; `ValueError` for a token this simulator did not issue."""
    if not token.startswith("page_"):
        raise ValueError("not a page cursor")
    try:
        return base64.urlsafe_b64decode(token[5:].encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not a page cursor") from None


@dataclasses.dataclass(frozen=True)
class PageSlice:
    """Which buckets one page holds and what comes next."""

    first: int
    stop: int
    has_more: bool
    next_page: str | None


def paginate(total: int, limit: int, page: str | None, position_of: list[str], mode: str | None) -> PageSlice:
    """Slice `total` buckets into pages of `limit`; `position_of[i]` names bucket i in its cursor.

    `pagination_loop` hands back the same cursor forever; `endless_has_more` keeps issuing new cursors
    past the end (pages there are empty).
    """
    first = 0
    endless_step = 0
    if page is not None:
        position = decode_cursor(page)
        if position.startswith("endless:"):
            endless_step = int(position.removeprefix("endless:"))
            first = total
        elif position in position_of:
            first = position_of.index(position)
        else:
            raise ValueError("page cursor does not belong to this query")
    stop = min(total, first + limit)
    has_more = stop < total
    next_page = encode_cursor(position_of[stop]) if has_more else None
    if mode == "pagination_loop":
        fallback = encode_cursor(position_of[first] if first < total else "endless:0")
        return PageSlice(first, stop, True, page or next_page or fallback)
    if mode == "endless_has_more":
        return PageSlice(first, stop, True, next_page or encode_cursor(f"endless:{endless_step + 1}"))
    return PageSlice(first, stop, has_more, next_page)


@dataclasses.dataclass(frozen=True)
class Ctx:
    """What an endpoint needs besides the request and the account."""

    now: dt.datetime  # the simulator clock
    visible_until: dt.datetime  # now - lag: hours ending later are not reported yet
    emit: Emitter
    mode: str | None  # the data fault to apply, if any
    request_id: str
    complete_days_only: bool = False


def bearer_key(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    return auth[7:].strip() or None


def list_param(query: dict[str, list[str]], name: str) -> list[str]:
    """Values of an array parameter sent either as `name=a&name=b` or `name[]=a&name[]=b`."""
    return [*query.get(name, []), *query.get(f"{name}[]", [])]
