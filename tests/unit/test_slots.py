"""Hot-path constructors of frozen dataclasses build the same instances as the classes do."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from gate._slots import slot_constructor, slot_replacer
from gate.model import Decision, DecisionTimings, EnforcementAction, RuleOutcome, RuleResult
from policies._model import ResourceRef, RuleResponse


def test_a_rule_result_built_by_slots_equals_the_dataclass_one() -> None:
    # The decision builder passes these fields in this order.
    assert [f.name for f in dataclasses.fields(RuleResult)] == [
        "policy", "rule", "outcome", "message", "remediation", "action", "resource",
    ]  # fmt: skip
    values = ("p", "r", RuleOutcome.FAIL, "m", "", EnforcementAction.AUDIT, "Pod/ns/n")
    built = slot_constructor(RuleResult)(*values)
    assert type(built) is RuleResult
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Record:
    name: str
    size: int = 0
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = dataclasses.field(default_factory=dict)


def test_a_constructor_takes_keywords_and_the_class_defaults() -> None:
    build = slot_constructor(_Record)
    assert build(name="a", size=2) == _Record(name="a", size=2)
    assert build("a") == _Record("a")
    assert build("a", 1, ("t",), {"k": 1}) == _Record("a", 1, ("t",), {"k": 1})


def test_a_default_factory_gives_each_instance_its_own_value() -> None:
    build = slot_constructor(_Record)
    first, second = build("a"), build("b")
    assert first.extra == {}
    assert first.extra is not second.extra


def test_a_missing_or_unknown_field_is_a_type_error() -> None:
    build = slot_constructor(_Record)
    with pytest.raises(TypeError):
        build(size=1)
    with pytest.raises(TypeError):
        build("a", colour="red")


def test_a_replacer_gives_what_dataclasses_replace_gives() -> None:
    replace = slot_replacer(_Record)
    original = _Record("a", 1, ("t",), {"k": 1})
    assert replace(original, size=5) == dataclasses.replace(original, size=5)
    assert replace(original) == original
    changed = replace(original, name="b", tags=())
    assert (changed.name, changed.size, changed.tags, changed.extra) == ("b", 1, (), {"k": 1})
    assert original == _Record("a", 1, ("t",), {"k": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.name = "c"  # type: ignore[misc]


def test_a_replacer_refuses_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="colour"):
        slot_replacer(_Record)(_Record("a"), colour="red")


def test_a_decision_built_and_replaced_by_slots_equals_the_dataclass_one() -> None:
    fields: dict[str, Any] = {
        "id": "d1",
        "allowed": False,
        "message": "denied",
        "stage": "deploy",
        "decided_at": datetime(2026, 11, 29, tzinfo=UTC),
        "results": (RuleResult("p", "r", RuleOutcome.FAIL),),
        "evidence_ids": ("e1",),
        "timings": DecisionTimings(total=0.5),
        "request": {"kind": "Decide"},
    }
    decision = Decision(**fields)
    assert slot_constructor(Decision)(**fields) == decision
    replace = slot_replacer(Decision)
    assert replace(decision, request_digest="sha256:00", signature=b"s") == dataclasses.replace(
        decision, request_digest="sha256:00", signature=b"s"
    )


def test_classes_the_generated_code_cannot_serve_keep_the_dataclass_functions() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class KeywordOnly:
        a: int
        b: int = dataclasses.field(default=0, kw_only=True)

    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int

    assert slot_constructor(KeywordOnly) is KeywordOnly
    assert slot_replacer(Plain)(Plain(1), a=2) == Plain(2)
    assert slot_replacer(KeywordOnly)(KeywordOnly(1, b=2), a=3) == KeywordOnly(3, b=2)


@dataclasses.dataclass(frozen=True, slots=True)
class _Sized(_Record):
    unit: str = "B"


def test_a_subclass_whose_slots_span_two_classes_is_built_through_its_descriptors() -> None:
    # No twin can stand in for a class whose slots are split over its bases: the generated
    # code then sets each slot through its descriptor, and gives the same instance.
    build = slot_constructor(_Sized)
    built = build("a", 1, unit="KiB")
    assert type(built) is _Sized
    assert built == _Sized("a", 1, unit="KiB")
    assert slot_replacer(_Sized)(built, size=2) == _Sized("a", 2, unit="KiB")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.size = 3  # type: ignore[misc]


def test_built_instances_copy_and_pickle_as_the_class_own_do() -> None:
    built = slot_constructor(_Record)("a", 1, ("t",), {"k": 1})
    replaced = slot_replacer(_Record)(built, size=2)
    for instance in (built, replaced):
        assert type(instance) is _Record
        assert copy.copy(instance) == instance
        assert copy.deepcopy(instance) == instance
        assert pickle.loads(pickle.dumps(instance)) == instance


def test_a_class_with_its_own_new_keeps_its_constructor() -> None:
    # object.__new__ may not build such a class (a mypyc native class refuses it).
    @dataclasses.dataclass(frozen=True, slots=True)
    class Counted:
        a: int

        def __new__(cls, *args: Any, **kwargs: Any) -> Counted:
            return object.__new__(cls)

    assert slot_constructor(Counted) is Counted
    assert slot_replacer(Counted)(Counted(1), a=2) == Counted(2)
