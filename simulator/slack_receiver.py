"""A local Slack incoming-webhook receiver, and `render_terminal()` to show Block Kit in a terminal.

`POST /hook` (or any `/services/...` path) records the JSON payload (or a form `payload=`) and answers
200 `ok` as text/plain, like Slack (provider-apis.md section 5.1). Like Slack it refuses a payload
without text, blocks or attachments (400 `no_text`) and, when `strict_blocks` is on (the default),
Block Kit that breaks the documented limits of section 5.2 (400 `invalid_blocks`). Fault
`accept_then_reset` records the message and then resets the connection before answering (Slack
accepted it, the answer was lost).

Several channels: one receiver, one path per webhook (`hook_url("search")` is `<url>/hook/search`).
A fault with a `path` fails only that hook (`POST /_slack/faults {"mode": "http_500", "count": 5,
"path": "/hook/search"}`; a bare status such as `"500"` names the same mode); one without fails
every hook, as before. `GET /_slack/messages?path=/hook/search` lists what that hook accepted.

Control API: `POST /_slack/faults {"mode", "count", "path"?}`, `DELETE /_slack/faults`, `POST
/_slack/latency {"ms"}`, `GET|DELETE /_slack/messages` (`?path=`), `POST /_slack/reset`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import textwrap
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, TextIO
from urllib.parse import parse_qs

from simulator._server import (
    Handler,
    LatencyKnob,
    LocalServer,
    Recorder,
    Reply,
    Request,
    Running,
    hang_reply,
    iso_z,
    json_reply,
    reset_reply,
    text_reply,
)
from simulator.faults import SLACK_FAULT_MODES, Fault, FaultBook, parse_count, parse_seconds

_FAULT_REPLIES: Mapping[str, tuple[int, str]] = {
    "http_429": (429, "rate_limited"),
    "http_500": (500, "rollup_error"),
    "invalid_payload": (400, "invalid_payload"),
    "no_service": (404, "no_service"),
    "http_410": (410, "channel_is_archived"),
    "http_403": (403, "action_prohibited"),
    "invalid_blocks": (400, "invalid_blocks"),
}
MAX_BLOCKS = 50
KNOWN_BLOCKS = frozenset(
    {"header", "section", "context", "divider", "actions", "image", "rich_text", "markdown", "input", "file", "video"}
)


def block_problems(payload: Mapping[str, Any]) -> list[str]:
    """Why Slack would refuse these blocks (limits from provider-apis.md section 5.2); [] when fine."""
    blocks = payload.get("blocks")
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks; at most {MAX_BLOCKS} per message")
    for i, block in enumerate(blocks):
        if not isinstance(block, Mapping) or block.get("type") not in KNOWN_BLOCKS:
            problems.append(f"blocks[{i}]: unknown or missing type")
            continue
        kind = block["type"]
        if len(str(block.get("block_id", ""))) > 255:
            problems.append(f"blocks[{i}].block_id longer than 255")
        text = block.get("text")
        text_value = text.get("text", "") if isinstance(text, Mapping) else ""
        if kind == "header":
            if not isinstance(text, Mapping) or text.get("type") != "plain_text":
                problems.append(f"blocks[{i}]: a header's text must be plain_text")
            elif len(text_value) > 150:
                problems.append(f"blocks[{i}]: header text longer than 150")
        elif kind == "section":
            fields = block.get("fields") or []
            if not text_value and not fields:
                problems.append(f"blocks[{i}]: a section needs text or fields")
            if len(text_value) > 3000:
                problems.append(f"blocks[{i}]: section text longer than 3000")
            if len(fields) > 10:
                problems.append(f"blocks[{i}]: more than 10 fields")
            if any(len(str(f.get("text", ""))) > 2000 for f in fields if isinstance(f, Mapping)):
                problems.append(f"blocks[{i}]: a field longer than 2000")
        elif kind == "context" and len(block.get("elements") or []) > 10:
            problems.append(f"blocks[{i}]: more than 10 context elements")
        elif kind == "actions" and len(block.get("elements") or []) > 25:
            problems.append(f"blocks[{i}]: more than 25 actions")
    return problems


def is_hook_path(path: str) -> bool:
    """Whether `path` is a webhook the receiver answers: `/hook`, `/hook/<name>` or Slack's `/services/...`."""
    return path == "/hook" or path.startswith(("/hook/", "/services/"))


def fault_mode(mode: str) -> str:
    """`mode`, or the `http_<status>` mode a bare status (`"500"`) names; unknown modes raise ValueError."""
    named = f"http_{mode}" if mode.isdigit() else mode
    if named not in SLACK_FAULT_MODES:
        raise ValueError(f"unknown Slack fault mode {mode!r}; known: {', '.join(SLACK_FAULT_MODES)}")
    return named


class SlackState(LatencyKnob):
    def __init__(self, *, print_messages: bool, strict_blocks: bool, out: TextIO | None) -> None:
        self.messages = Recorder()
        self.faults = FaultBook()
        self.print_messages = print_messages
        self.strict_blocks = strict_blocks
        self.out = out
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}  # by hook path
        self._latency_s = 0.0

    def attempt(self, path: str) -> None:
        with self._lock:
            self._attempts[path] = self._attempts.get(path, 0) + 1

    def attempts(self, path: str | None = None) -> int:
        """POSTs to hook `path` (None: to every hook), accepted or not."""
        with self._lock:
            return sum(self._attempts.values()) if path is None else self._attempts.get(path, 0)

    def add_fault(
        self, mode: str, count: int | None = None, seconds: float | None = None, path: str | None = None
    ) -> None:
        if path is not None and (not isinstance(path, str) or not is_hook_path(path)):
            raise ValueError(f"path {path!r} is not a webhook path: use /hook/<name> (or /services/...)")
        scope = {} if path is None else {"path": path}
        fault = Fault(mode=fault_mode(mode), count=parse_count(count), scope=scope, seconds=parse_seconds(seconds))
        self.faults.add(fault)

    def take_fault(self, path: str) -> Fault | None:
        """The next armed fault for a POST to `path`: one scoped to that hook, or one without a path."""
        return self.faults.take(lambda f: f.scope.get("path") in (None, path))

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        """Accepted payloads, oldest first: of hook `path`, or of every hook."""
        return [m["payload"] for m in self.messages.items() if path is None or m["path"] == path]

    def clear_messages(self) -> None:
        self.messages.clear()
        with self._lock:
            self._attempts.clear()

    def reset(self) -> None:
        self.clear_messages()
        self.faults.clear()
        self.set_latency(0)

    def snapshot(self, path: str | None = None) -> dict[str, Any]:
        payloads = self.received(path)
        return {"messages": payloads, "count": len(payloads), "attempts": self.attempts(path)}


def _parse_payload(request: Request) -> dict[str, Any] | None:
    try:
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raw = parse_qs(request.body.decode("utf-8")).get("payload", [""])[-1]
            payload = json.loads(raw)
        else:
            payload = request.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


class SlackHandler(Handler):
    state: ClassVar[SlackState]

    def route(self, request: Request) -> Reply:
        if request.path.startswith("/_slack/"):
            return self._control(request)
        if request.method == "POST" and is_hook_path(request.path):
            return self._hook(request)
        return text_reply(404, "no_service")

    def _hook(self, request: Request) -> Reply:
        state = self.state
        state.attempt(request.path)
        if not self.pause(state.latency_s):
            return hang_reply(0)
        fault = state.take_fault(request.path)
        if fault is not None and fault.mode != "accept_then_reset":
            if fault.mode == "timeout":
                return hang_reply(fault.seconds)
            if fault.mode == "reset":
                return reset_reply()
            status, text = _FAULT_REPLIES[fault.mode]
            return text_reply(status, text, headers={"Retry-After": "1"} if status == 429 else None)
        payload = _parse_payload(request)
        if payload is None:
            return text_reply(400, "invalid_payload")
        if not (payload.get("text") or payload.get("blocks") or payload.get("attachments")):
            return text_reply(400, "no_text")
        if state.strict_blocks and block_problems(payload):
            return text_reply(400, "invalid_blocks")
        state.messages.append({"path": request.path, "at": iso_z(dt.datetime.now(dt.UTC)), "payload": payload})
        if state.print_messages:
            out = state.out or sys.stdout
            out.write(render_terminal(payload) + "\n\n")
            out.flush()
        if fault is not None:  # accept_then_reset: Slack posted it, the answer never arrives
            return reset_reply()
        return text_reply(200, "ok")

    def _control(self, request: Request) -> Reply:
        state = self.state
        route = (request.method, request.path.rstrip("/"))
        try:
            body = request.json() if request.body else {}
            if route == ("POST", "/_slack/faults"):
                state.add_fault(str(body.get("mode")), body.get("count"), body.get("seconds"), body.get("path"))
                return json_reply(200, {"faults": state.faults.list()})
            if route == ("DELETE", "/_slack/faults"):
                state.faults.clear()
                return json_reply(200, {"faults": []})
            if route == ("GET", "/_slack/faults"):
                return json_reply(200, {"faults": state.faults.list()})
            if route == ("POST", "/_slack/latency"):
                state.set_latency(float(body.get("ms", 0)))
                return json_reply(200, {"ms": state.latency_s * 1000})
            if route == ("GET", "/_slack/messages"):
                return json_reply(200, state.snapshot(request.param("path")))
            if route == ("DELETE", "/_slack/messages"):
                state.clear_messages()
                return json_reply(200, state.snapshot())
            if route == ("POST", "/_slack/reset"):
                state.reset()
                return json_reply(200, {"ok": True})
        except (ValueError, TypeError, AttributeError) as exc:
            return json_reply(400, {"error": str(exc)})
        return json_reply(404, {"error": f"no control endpoint {route[0]} {route[1]}"})


def _hook_name(name: str) -> str:
    if not isinstance(name, str) or not name or any(c in name for c in "/?#% "):
        raise ValueError(f"hook name {name!r}: one path segment such as 'search'")
    return name


class HookUrl(str):
    """The receiver's `/hook` URL, a plain string, that also names one channel's webhook when called:
    `slack.hook_url` is `<url>/hook`, `slack.hook_url("search")` is `<url>/hook/search`."""

    __slots__ = ()

    def __call__(self, name: str) -> str:
        return f"{self}/{_hook_name(name)}"


class SlackReceiver(Running):
    """The webhook receiver, started in a background thread. Use as a context manager or call `stop()`."""

    def __init__(self, state: SlackState, server: LocalServer) -> None:
        super().__init__(server)
        self._state = state

    @classmethod
    def start(
        cls, *, port: int = 0, print_messages: bool = False, strict_blocks: bool = True, out: TextIO | None = None
    ) -> SlackReceiver:
        """Listen on 127.0.0.1:`port`; `print_messages` writes each accepted message to `out` (stdout)."""
        state = SlackState(print_messages=print_messages, strict_blocks=strict_blocks, out=out)
        server = LocalServer(port, type("BoundSlackHandler", (SlackHandler,), {"state": state}))
        server.start()
        return cls(state, server)

    @property
    def hook_url(self) -> HookUrl:
        """The incoming-webhook URL to configure (SLACK_WEBHOOK_URL); `hook_url("search")` is channel
        search's own webhook, `<url>/hook/search`."""
        return HookUrl(f"{self.url}/hook")

    @staticmethod
    def hook_path(name: str) -> str:
        """The path of channel `name`'s webhook, `/hook/<name>` (what `messages(path=...)` takes)."""
        return f"/hook/{_hook_name(name)}"

    def messages(self, path: str | None = None) -> list[dict[str, Any]]:
        """Payloads Slack accepted (200 ok), oldest first: of hook `path` (`/hook/search`), or of all."""
        return self._state.received(path)

    def attempts(self, path: str | None = None) -> int:
        """Every POST to a webhook path (or to hook `path`), accepted or not."""
        return self._state.attempts(path)

    def clear_messages(self) -> None:
        self._state.clear_messages()

    def add_fault(
        self, mode: str, count: int | None = None, seconds: float | None = None, path: str | None = None
    ) -> None:
        """Arm a fault `count` times (None: until cleared) for hook `path` only, or for every hook."""
        self._state.add_fault(mode, count, seconds, path)

    def clear_faults(self) -> None:
        self._state.faults.clear()

    def set_latency(self, ms: float) -> None:
        self._state.set_latency(ms)

    def reset(self) -> None:
        self._state.reset()


# --- terminal rendering -----------------------------------------------------------------------------

_EMOJI: Mapping[str, str] = {
    "rotating_light": "🚨",
    "warning": "⚠️",
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "no_entry": "⛔",
    "exclamation": "❗",
    "red_circle": "🔴",
    "large_orange_circle": "🟠",
    "large_yellow_circle": "🟡",
    "large_green_circle": "🟢",
    "chart_with_upwards_trend": "📈",
    "chart_with_downwards_trend": "📉",
    "money_with_wings": "💸",
    "moneybag": "💰",
    "fire": "🔥",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "information_source": "ℹ️",
    "bell": "🔔",
    "zap": "⚡",
    "calendar": "📅",
    "clock3": "🕒",
    "robot_face": "🤖",
    "mag": "🔍",
    "bar_chart": "📊",
}
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_EMOJI_RE = re.compile(r":([a-z0-9_+-]+):")


def _link(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith("!"):
        return label or "@" + target[1:].split("^")[0]
    if target.startswith(("@", "#")):
        return (target[0] + label) if label else target
    return f"{label} ({target})" if label and label != target else target


def mrkdwn_to_text(text: str, *, color: bool = False) -> str:
    """Slack mrkdwn lightly converted: links spelled out, entities decoded, emphasis shown or dropped."""
    out = _LINK.sub(_link, text)
    out = _BOLD.sub(lambda m: f"\x1b[1m{m.group(1)}\x1b[0m" if color else m.group(1), out)
    out = _ITALIC.sub(lambda m: f"\x1b[3m{m.group(1)}\x1b[0m" if color else m.group(1), out)
    out = _EMOJI_RE.sub(lambda m: _EMOJI.get(m.group(1), m.group(0)), out)
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: object, color: bool) -> str:
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, Mapping):
        return ""
    if obj.get("type") == "image":
        return f"[image: {obj.get('alt_text', '')}]"
    text = str(obj.get("text", ""))
    return mrkdwn_to_text(text, color=color) if obj.get("type") == "mrkdwn" else text


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    lines = []
    for raw in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(raw, width, initial_indent=indent, subsequent_indent=indent) or [indent.rstrip()])
    return lines


def _rich_text(element: object) -> str:
    if isinstance(element, Mapping):
        if element.get("type") in ("text", "link"):
            return str(element.get("text") or element.get("url", ""))
        if element.get("type") == "emoji":
            return _EMOJI.get(str(element.get("name")), f":{element.get('name')}:")
        if element.get("type") in ("user", "channel"):
            return "@" + str(element.get("user_id") or element.get("channel_id", ""))
        return "".join(_rich_text(e) for e in element.get("elements", []))
    return ""


def _render_blocks(blocks: list[Any], width: int, color: bool) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "header":
            title = _text_of(block.get("text"), color)
            title = mrkdwn_to_text(title, color=False)
            lines.append(f"\x1b[1m{title}\x1b[0m" if color else title)
            lines.append("═" * min(width, max(len(title), 3)))
        elif kind == "section":
            if block.get("text"):
                lines.extend(_wrap(_text_of(block["text"], color), width))
            fields = [_text_of(f, color) for f in block.get("fields") or []]
            column = max(10, (width - 2) // 2)
            for i in range(0, len(fields), 2):
                left = _wrap(fields[i], column)
                right = _wrap(fields[i + 1], column) if i + 1 < len(fields) else []
                for j in range(max(len(left), len(right))):
                    cell = left[j] if j < len(left) else ""
                    other = right[j] if j < len(right) else ""
                    lines.append(f"{cell:<{column}}  {other}".rstrip())
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping) and accessory.get("type") == "button":
                lines.append(f"[ {_text_of(accessory.get('text'), color)} ]")
        elif kind == "context":
            parts = [_text_of(e, color) for e in block.get("elements") or []]
            context = " · ".join(p for p in parts if p)
            lines.extend(f"\x1b[2m{line}\x1b[0m" if color else line for line in _wrap(context, width, "  "))
        elif kind == "divider":
            lines.append("─" * width)
        elif kind == "actions":
            elements = [e for e in block.get("elements") or [] if isinstance(e, Mapping)]
            buttons = [f"[ {_text_of(e.get('text'), color)} ]" for e in elements]
            lines.append("  ".join(buttons))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "markdown":
            lines.extend(_wrap(str(block.get("text", "")), width))
        elif kind == "rich_text":
            lines.extend(_wrap(_rich_text(block), width))
        else:
            lines.append(f"[{kind} block]")
    return lines


def render_terminal(payload: Mapping[str, Any], *, width: int = 72, color: bool = False) -> str:
    """A Block Kit message as readable terminal text (header, sections, fields, context, dividers).

    Pure: no I/O. The top-level `text` is shown only when there are no blocks (it is the notification
    fallback). Attachments are rendered below, each line prefixed with a bar.
    """
    blocks = payload.get("blocks")
    lines = _render_blocks(blocks, width, color) if isinstance(blocks, list) and blocks else []
    if not lines and payload.get("text"):
        lines = _wrap(mrkdwn_to_text(str(payload["text"]), color=color), width)
    for attachment in payload.get("attachments") or []:
        if not isinstance(attachment, Mapping):
            continue
        inner: list[str] = []
        if attachment.get("title"):
            inner.append(str(attachment["title"]))
        if attachment.get("text"):
            inner.extend(_wrap(mrkdwn_to_text(str(attachment["text"]), color=color), width - 2))
        if isinstance(attachment.get("blocks"), list):
            inner.extend(_render_blocks(attachment["blocks"], width - 2, color))
        for field in attachment.get("fields") or []:
            if isinstance(field, Mapping):
                inner.append(f"{field.get('title', '')}: {mrkdwn_to_text(str(field.get('value', '')), color=color)}")
        lines.extend(f"▌ {line}" for line in inner)
    return "\n".join(lines)
