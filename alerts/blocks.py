"""Slack Block Kit, the four blocks a message uses, as the JSON Slack takes (typed, within its limits).

Built here rather than with `slack_sdk.models.blocks`: importing anything from slack_sdk runs
`slack_sdk/__init__.py`, which loads the Web API client and asyncio (~40 ms of a cold start), and a
dry run or a check with nothing to post needs no Slack client at all. The shapes are the ones
slack_sdk's `to_dict()` produces (tests/test_slack_render.py parses every rendered block back with
slack_sdk and compares), and the limits are Slack's documented ones (api.slack.com/reference/block-kit/blocks):
header text 150 characters, section text 3000, context element text 2000 and 10 elements.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "MAX_CONTEXT_ELEMENTS",
    "MAX_CONTEXT_TEXT",
    "MAX_HEADER_TEXT",
    "MAX_SECTION_TEXT",
    "Block",
    "context",
    "divider",
    "header",
    "section",
]

MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10


class PlainText(TypedDict):
    type: Literal["plain_text"]
    text: str
    emoji: bool


class Mrkdwn(TypedDict):
    type: Literal["mrkdwn"]
    text: str


class HeaderBlock(TypedDict):
    type: Literal["header"]
    text: PlainText


class SectionBlock(TypedDict):
    type: Literal["section"]
    text: Mrkdwn


class DividerBlock(TypedDict):
    type: Literal["divider"]


class ContextBlock(TypedDict):
    type: Literal["context"]
    elements: list[Mrkdwn]


Block = HeaderBlock | SectionBlock | DividerBlock | ContextBlock


def _within(text: str, limit: int, what: str) -> str:
    if not text or len(text) > limit:
        raise ValueError(f"{what} text must be 1-{limit} characters, got {len(text)}")
    return text


# Keys in the order slack_sdk's `to_dict()` writes them, so a rendered message is byte for byte what it was.
def header(text: str) -> HeaderBlock:
    return {
        "text": {"emoji": True, "text": _within(text, MAX_HEADER_TEXT, "header"), "type": "plain_text"},
        "type": "header",
    }


def section(mrkdwn: str) -> SectionBlock:
    return {"text": {"text": _within(mrkdwn, MAX_SECTION_TEXT, "section"), "type": "mrkdwn"}, "type": "section"}


def divider() -> DividerBlock:
    return {"type": "divider"}


def context(*mrkdwn: str) -> ContextBlock:
    if not 1 <= len(mrkdwn) <= MAX_CONTEXT_ELEMENTS:
        raise ValueError(f"a context block holds 1-{MAX_CONTEXT_ELEMENTS} elements, got {len(mrkdwn)}")
    elements: list[Mrkdwn] = [{"text": _within(t, MAX_CONTEXT_TEXT, "context"), "type": "mrkdwn"} for t in mrkdwn]
    return {"elements": elements, "type": "context"}
