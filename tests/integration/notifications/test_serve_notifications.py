"""``gate serve`` announces denials to its configured webhooks without slowing the decisions down."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gate.config import NotificationSettings, NotificationWebhook
from gate.v1 import decision_pb2
from tests.conftest import RunningGate, loopback_config
from tests.integration.notifications.receiver import receiver
from tests.integration.notifications.test_hub import POLICIES, review


def test_denials_reach_a_slack_webhook_while_a_hung_receiver_blocks_nothing(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    with receiver(["hang"]) as hook:
        config = loopback_config(tmp_path / "data")
        config = config.model_copy(
            update={
                "policies": config.policies.model_copy(update={"sources": (POLICIES,)}),
                "notifications": NotificationSettings(
                    webhooks=(
                        NotificationWebhook(url=hook.url, format="slack", events=("deny",), timeout=2.0),
                    ),
                    backoff=0.1,
                ),
            }
        )
        gate = serve_gate(config)

        def decide(image: str, name: str) -> tuple[bool, float]:
            started = time.perf_counter()
            reply: Any = gate.call(
                "gate.v1.DecisionService/Review",
                decision_pb2.ReviewRequest(admission_review=review(image, name)),
                decision_pb2.ReviewResponse,
            )
            return bool(reply.decision.allowed), time.perf_counter() - started

        assert decide("r/app:latest", "first")[0] is False
        hook.wait_for(1)
        # The receiver holds the first delivery for its 2 s timeout; reviews answer meanwhile.
        answers = [decide("r/app:latest", f"pod-{index}") for index in range(5)]
        assert [allowed for allowed, _ in answers] == [False] * 5
        assert max(seconds for _, seconds in answers) < 0.5
        received = hook.wait_for(7, seconds=20)
    subjects = sorted(
        r.body["blocks"][1]["text"]["text"].split("*subject:* ")[1].split("\n")[0] for r in received
    )
    assert subjects == sorted(["Pod/shop/first", "Pod/shop/first"] + [f"Pod/shop/pod-{i}" for i in range(5)])
    assert all(r.body["text"].startswith("gate denied Pod/shop/") for r in received)
