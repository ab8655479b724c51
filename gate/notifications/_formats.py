"""Notification bodies: gate's JSON document and Slack's incoming-webhook message."""

from __future__ import annotations

import json
from collections.abc import Callable

import gate
from gate.notifications._events import Notification

# Slack refuses a header over 150 characters and a section text over 3000.
_SLACK_HEADER = 150
_SLACK_SECTION = 3000


def json_body(notification: Notification) -> bytes:
    """gate's own document: ``event``, ``title``, ``time``, ``facts``, ``items`` and ``details``."""
    document = {
        "source": "gate",
        "version": gate.__version__,
        "event": notification.event,
        "title": notification.title,
        "time": notification.time.isoformat(),
        "facts": dict(notification.facts),
        "items": list(notification.items),
        "details": dict(notification.details),
    }
    return json.dumps(document, sort_keys=True).encode()


def slack_body(notification: Notification) -> bytes:
    """A Slack incoming-webhook message: ``text`` (the fallback) and ``blocks``."""
    facts = "\n".join(f"*{_escape(name)}:* {_escape(value)}" for name, value in notification.facts)
    lines = "\n".join(f"• {_escape(item)}" for item in notification.items)
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(notification.title, _SLACK_HEADER)}},
    ]
    if facts:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(facts, _SLACK_SECTION)}})
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(lines, _SLACK_SECTION)}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"gate {gate.__version__} · {notification.event} · "
                    f"{notification.time.isoformat()}",
                }
            ],
        }
    )
    return json.dumps({"text": _escape(notification.title), "blocks": blocks}).encode()


FORMATS: dict[str, Callable[[Notification], bytes]] = {"json": json_body, "slack": slack_body}


def _escape(text: str) -> str:
    # Slack's mrkdwn reads these three as markup (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
