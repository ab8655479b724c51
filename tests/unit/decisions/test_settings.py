"""The webhook settings: budget and failure mode reach the core; bad values are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.config import load_config
from gate.core import Gate
from gate.decisions import FailureMode
from gate.errors import ConfigError
from tests.unit.decisions.test_webhook_validate import DecisionStore


def test_budget_and_failure_mode_reach_the_core(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("webhook:\n  budget: 0.5\n  failure_mode: fail-open\n")
    config = load_config(path, {"GATE_DATA_DIR": str(tmp_path)})
    gate = Gate.from_config(config, DecisionStore(), None)  # type: ignore[arg-type]
    assert gate.admission_settings.budget == 0.5
    assert gate.admission_settings.failure_mode is FailureMode.FAIL_OPEN


def test_defaults_are_two_seconds_and_fail_closed(tmp_path: Path) -> None:
    gate = Gate.from_config(load_config(None, {"GATE_DATA_DIR": str(tmp_path)}), DecisionStore(), None)  # type: ignore[arg-type]
    assert gate.admission_settings.budget == 2.0
    assert gate.admission_settings.failure_mode is FailureMode.FAIL_CLOSED


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("webhook:\n  failure_mode: ignore\n", "webhook.failure_mode"),
        ("webhook:\n  budget: 0\n", "webhook.budget"),
        ("webhook:\n  budget: 60\n", "webhook.budget"),
    ],
)
def test_bad_webhook_settings_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert f"gate.yaml: {key}: " in caught.value.message
