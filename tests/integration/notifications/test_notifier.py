"""Webhook delivery: retries with backoff, hung receivers, a full queue, formats and event filters."""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.errors import ConfigError
from gate.notifications import (
    CRITICAL_FINDING,
    DENY,
    Notification,
    Notifier,
    RetryPolicy,
    Webhook,
)
from tests.integration.notifications.receiver import receiver

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def notification(
    event: str = DENY, title: str = "gate denied Pod/default/app at stage admission"
) -> Notification:
    return Notification(
        event=event,
        title=title,
        time=NOW,
        facts=(("stage", "admission"), ("subject", "Pod/default/app")),
        items=("image-tags/forbidden-tag: the :latest tag is not allowed",),
        details={"decision_id": "d-1", "stage": "admission"},
    )


class Counted:
    """A NotifierObserver that remembers what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def counted(self, event: str, result: str) -> None:
        self.seen.append((event, result))


def wait_until(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.02)


def test_server_errors_are_retried_with_growing_jittered_waits_until_delivered() -> None:
    observer = Counted()
    with receiver([500, 503]) as hook:
        notifier = Notifier(
            [Webhook(hook.url)],
            retry=RetryPolicy(max_attempts=5, backoff=0.2, max_backoff=5),
            observer=observer,
            rng=random.Random(7),
        )
        notifier.start()
        notifier.submit(notification())
        first, second, third = hook.wait_for(3)
        notifier.close()
    assert hook.answered == [500, 503, 200]
    assert first.body == second.body == third.body
    assert first.body["event"] == "deny"
    assert first.content_type == "application/json"
    # Waits double from the backoff, each between half and all of its ceiling.
    # (The upper bounds allow for a busy machine.)
    assert 0.1 <= second.at - first.at <= 0.2 + 1.0
    assert 0.2 <= third.at - second.at <= 0.4 + 1.0
    assert notifier.totals == {"sent": 1, "failed": 0, "dropped": 0}
    assert observer.seen == [("deny", "sent")]


def test_a_delivery_gives_up_after_its_attempts_and_client_errors_are_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with receiver([500, 500, 500, 400]) as hook:
        notifier = Notifier(
            [Webhook(hook.url)], retry=RetryPolicy(max_attempts=3, backoff=0.05, max_backoff=0.1)
        )
        notifier.start()
        with caplog.at_level(logging.WARNING, logger="gate.notifications"):
            notifier.submit(notification())
            hook.wait_for(3)
            wait_until(lambda: notifier.totals["failed"] == 1)
            notifier.submit(notification())
            hook.wait_for(4)
            wait_until(lambda: notifier.totals["failed"] == 2)
            time.sleep(0.3)
        notifier.close()
    # Three attempts for the first; a 400 is the receiver refusing the message: one attempt.
    assert hook.answered == [500, 500, 500, 400]
    assert notifier.totals == {"sent": 0, "failed": 2, "dropped": 0}
    # Named by index and origin: a webhook's path and query may hold its token (Slack's do).
    shown = "notifications.webhooks[0] (" + hook.url.removesuffix("/hook") + "/…)"
    assert f"deny notification to {shown} not delivered after 3 attempt(s): HTTP 500" in caplog.text
    assert "not delivered after 1 attempt(s): HTTP 400" in caplog.text


def test_a_hung_receiver_times_out_is_retried_and_never_blocks_submitters() -> None:
    with receiver(["hang"]) as hook:
        notifier = Notifier(
            [Webhook(hook.url, timeout=0.5)], retry=RetryPolicy(max_attempts=3, backoff=0.05, max_backoff=0.1)
        )
        notifier.start()
        notifier.submit(notification(title="first"))
        hook.wait_for(1)
        # The worker is stuck on the hung request: submitting still returns at once.
        started = time.perf_counter()
        for index in range(50):
            notifier.submit(notification(title=f"queued {index}"))
        assert time.perf_counter() - started < 0.05
        received = hook.wait_for(52, seconds=15)
        wait_until(lambda: notifier.totals["sent"] == 51)
        notifier.close()
    titles = [r.body["title"] for r in received]
    assert titles[0] == "first"
    assert titles.count("first") == 2  # the timed-out attempt, then the retry
    assert set(titles) == {"first", *(f"queued {i}" for i in range(50))}
    # The retry came after the 0.5 s timeout, not at once (the receiver stamps arrivals a little
    # after the client starts its clock, so allow for that skew).
    assert received[1].at - received[0].at >= 0.4
    assert notifier.totals == {"sent": 51, "failed": 0, "dropped": 0}


def test_a_full_queue_drops_counts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    observer = Counted()
    with receiver(["hang"]) as hook:
        notifier = Notifier(
            [Webhook(hook.url, timeout=1.0)],
            queue_size=3,
            retry=RetryPolicy(max_attempts=1),
            observer=observer,
        )
        notifier.start()
        notifier.submit(notification(title="stuck"))
        hook.wait_for(1)
        with caplog.at_level(logging.WARNING, logger="gate.notifications"):
            for index in range(10):
                notifier.submit(notification(title=f"n{index}"))
        assert notifier.totals["dropped"] == 7
        assert "notification queue full (3 waiting): dropped a deny notification" in caplog.text
        received = hook.wait_for(4)
        wait_until(lambda: notifier.totals["sent"] == 3)
        notifier.close()
    assert [r.body["title"] for r in received[1:]] == ["n0", "n1", "n2"]
    assert observer.seen.count(("deny", "dropped")) == 7
    assert notifier.totals == {"sent": 3, "failed": 1, "dropped": 7}


def test_each_webhook_gets_its_events_in_its_format() -> None:
    with receiver() as plain, receiver() as slack:
        notifier = Notifier(
            [Webhook(plain.url, events=frozenset({CRITICAL_FINDING})), Webhook(slack.url, format="slack")]
        )
        notifier.start()
        notifier.submit(notification(title="denied <@here> & more"))
        notifier.submit(notification(CRITICAL_FINDING, title="2 new critical findings in sha256:ab"))
        (found,) = plain.wait_for(1)
        first, second = slack.wait_for(2)
        notifier.close()
    assert len(plain.received) == 1
    assert found.body["event"] == "critical_finding"
    assert found.body["title"] == "2 new critical findings in sha256:ab"
    assert found.body["facts"] == {"stage": "admission", "subject": "Pod/default/app"}
    assert found.body["details"] == {"decision_id": "d-1", "stage": "admission"}
    assert found.body["time"] == "2026-11-27T12:00:00+00:00"
    # Slack: a fallback text (markup escaped) and blocks: header, facts, items, context.
    assert first.body["text"] == "denied &lt;@here&gt; &amp; more"
    header, facts, items, context = first.body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "denied <@here> & more"}}
    assert facts["text"] == {"type": "mrkdwn", "text": "*stage:* admission\n*subject:* Pod/default/app"}
    assert items["text"]["text"] == "• image-tags/forbidden-tag: the :latest tag is not allowed"
    assert context["type"] == "context"
    assert "deny" in context["elements"][0]["text"]
    assert second.body["text"] == "2 new critical findings in sha256:ab"


def test_unknown_formats_and_unreadable_ca_files_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"notifications\.webhooks\[0\]\.format: unknown: 'xml'"):
        Notifier([Webhook("http://127.0.0.1:9/x", format="xml")])
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(ConfigError, match=r"notifications\.webhooks\[0\]\.ca_file: cannot load"):
        Notifier([Webhook("https://127.0.0.1:9/x", ca_file=missing)])
