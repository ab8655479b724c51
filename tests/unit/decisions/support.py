"""Shared inputs of the decisions tests: the sample Pod review and a small policy bundle."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "decisions"
POLICIES = ASSETS / "policies.yaml"
REVIEW: dict[str, Any] = json.loads((ASSETS / "pod_review.json").read_text())


def review(**changes: Any) -> dict[str, Any]:
    """A copy of the sample review with ``request`` fields replaced."""
    document = copy.deepcopy(REVIEW)
    document["request"].update(changes)
    return document


def latest_review() -> dict[str, Any]:
    """The sample with its second container on ``:latest`` (denied by the Enforce policy)."""
    document = copy.deepcopy(REVIEW)
    document["request"]["object"]["spec"]["containers"][1]["image"] = "docker.io/envoyproxy/envoy:latest"
    return document


def body(document: dict[str, Any]) -> bytes:
    """As the API server sends it."""
    return json.dumps(document).encode()
