"""Hot-path constructors of frozen dataclasses build the same instances as the classes do."""

from __future__ import annotations

import dataclasses

import pytest

from gate._slots import slot_constructor
from gate.model import EnforcementAction, RuleOutcome, RuleResult
from policies._model import ResourceRef, RuleResponse


def test_a_rule_result_built_by_slots_equals_the_dataclass_one() -> None:
    # The decision builder passes these fields in this order.
    assert [f.name for f in dataclasses.fields(RuleResult)] == [
        "policy", "rule", "outcome", "message", "remediation", "action", "resource",
    ]  # fmt: skip
    values = ("p", "r", RuleOutcome.FAIL, "m", "", EnforcementAction.AUDIT, "Pod/ns/n")
    built = slot_constructor(RuleResult)(*values)
    assert built == RuleResult(*values)
    assert hash(built) == hash(RuleResult(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.message = "changed"  # type: ignore[misc]


def test_a_rule_response_built_by_slots_equals_the_dataclass_one() -> None:
    # The engine passes these fields in this order.
    assert [f.name for f in dataclasses.fields(RuleResponse)] == [
        "policy", "rule", "outcome", "message", "action", "resource", "failure_policy",
        "scored", "category", "severity", "exceptions", "waivers",
    ]  # fmt: skip
    values = (
        "p", "r", RuleOutcome.PASS, "ok", EnforcementAction.ENFORCE, ResourceRef("v1", "Pod", "ns", "n"),
        "Fail", True, "", "", (), ("w1",),
    )  # fmt: skip
    assert slot_constructor(RuleResponse)(*values) == RuleResponse(*values)


def test_a_wrong_number_of_fields_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        slot_constructor(RuleResult)("p", "r")


def test_a_class_without_slots_keeps_its_own_constructor() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int

    assert slot_constructor(Plain) is Plain
