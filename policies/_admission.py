"""The admission answer Kyverno gives for a set of rule responses."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from gate.model import EnforcementAction, RuleOutcome
from policies._model import RuleResponse
from policies._yaml import KubernetesDumper


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request is admitted, the denial message, and audit warnings."""

    allowed: bool
    message: str
    warnings: tuple[str, ...]


def verdict(responses: Sequence[RuleResponse], *, emit_warnings: bool = False) -> Verdict:
    """Deny when an Enforce rule fails, or errors under failurePolicy Fail; warn on audit failures.

    The denial message has Kyverno's shape: the blocked resource, then a YAML map
    ``policy -> rule -> message`` of every blocking rule.
    """
    blocking = [r for r in responses if r.blocks]
    warnings = tuple(
        f"policy {r.policy}.{r.rule}: {r.message}"
        for r in responses
        if emit_warnings and r.outcome is RuleOutcome.FAIL and r.action is EnforcementAction.AUDIT
    )
    if not blocking:
        return Verdict(True, "", warnings)
    table: dict[str, dict[str, str]] = {}
    for response in blocking:
        table.setdefault(response.policy, {})[response.rule] = response.message
    body = _yaml_table(tuple((policy, tuple(rules.items())) for policy, rules in table.items()))
    message = f"\n\nresource {blocking[0].resource} was blocked due to the following policies \n\n{body}"
    return Verdict(False, message, warnings)


@functools.lru_cache(maxsize=512)
def _yaml_table(table: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]) -> str:
    # PyYAML's emitter took ~0.1 ms of every denial, and the same policies tend to deny
    # the same way again (a workload's replicas, a pipeline's retries): a pure function, memoised.
    mapping = {policy: dict(rules) for policy, rules in table}
    # Quoted where go-yaml would quote (a rule named `y` or `1e3`), as Kyverno's table is.
    text = yaml.dump(mapping, Dumper=KubernetesDumper, default_flow_style=False, indent=2, sort_keys=True)
    return str(text)
