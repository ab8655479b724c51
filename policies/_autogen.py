"""Pod-controller rules generated from Pod rules, the way Kyverno rewrites them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

ANNOTATION = "pod-policies.kyverno.io/autogen-controllers"
_DEFAULT_CONTROLLERS = (
    "DaemonSet",
    "Deployment",
    "Job",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
    "CronJob",
)
_QUALIFIED = {
    "DaemonSet": "apps/v1/DaemonSet",
    "Deployment": "apps/v1/Deployment",
    "Job": "batch/v1/Job",
    "StatefulSet": "apps/v1/StatefulSet",
    "ReplicaSet": "apps/v1/ReplicaSet",
    "ReplicationController": "v1/ReplicationController",
    "CronJob": "batch/v1/CronJob",
}
_REQUEST_PATH = re.compile(r"request\.(object|oldObject)\.(spec|metadata)")
# CEL rules name the object directly; Kyverno rewrites their JSON by plain text replacement.
_CEL_PATH = re.compile(r"(?<![\w.])(object|oldObject)\.(spec|metadata)")
_MAX_NAME = 63


def controllers(annotations: Mapping[str, Any]) -> tuple[str, ...]:
    """The controllers named by the autogen annotation (default: all of them)."""
    value = annotations.get(ANNOTATION)
    if value is None:
        return _DEFAULT_CONTROLLERS
    text = str(value).strip()
    if text == "none":
        return ()
    if text == "all":
        return _DEFAULT_CONTROLLERS
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _filters(block: Any) -> list[dict[str, Any]]:
    if not isinstance(block, dict):
        return []
    found = [f for key in ("any", "all") for f in block.get(key) or () if isinstance(f, dict)]
    if "resources" in block:
        found.append(block)
    return found


def _kinds(filt: Mapping[str, Any]) -> list[str]:
    resources = filt.get("resources") or {}
    return [str(k) for k in resources.get("kinds") or ()]


def _is_pod(kind: str) -> bool:
    return kind in ("Pod", "v1/Pod", "*/Pod")


def _eligible(rules: Sequence[Mapping[str, Any]]) -> bool:
    """Autogen is decided per policy (Kyverno's CanAutoGen)."""
    mentions_pod = False
    for rule in rules:
        if rule.get("generate") or (
            isinstance(rule.get("mutate"), dict) and rule["mutate"].get("patchesJson6902")
        ):
            return False
        for block in (rule.get("match"), rule.get("exclude")):
            for filt in _filters(block):
                resources = filt.get("resources") or {}
                if any(resources.get(k) for k in ("name", "names", "selector", "annotations")):
                    return False
                kinds = _kinds(filt)
                if any(_is_pod(k) for k in kinds):
                    mentions_pod = True
                    if len(kinds) > 1:
                        return False
    return mentions_pod


def _rewrite_kinds(block: Any, kinds: list[str]) -> Any:
    if not isinstance(block, dict):
        return block
    result = dict(block)
    for key in ("any", "all"):
        if key in result and isinstance(result[key], list):
            result[key] = [_rewrite_filter(f, kinds) for f in result[key]]
    if "resources" in result:
        result = _rewrite_filter(result, kinds)
    return result


def _rewrite_filter(filt: Any, kinds: list[str]) -> Any:
    if not isinstance(filt, dict):
        return filt
    resources = filt.get("resources")
    if not isinstance(resources, dict) or not any(_is_pod(k) for k in resources.get("kinds") or ()):
        return filt
    return {**filt, "resources": {**resources, "kinds": list(kinds)}}


def _wrap(pattern: Any, cronjob: bool) -> Any:
    wrapped = {"spec": {"template": pattern}}
    return {"spec": {"jobTemplate": wrapped}} if cronjob else wrapped


def _generated(rule: Mapping[str, Any], kinds: list[str], *, cronjob: bool) -> dict[str, Any]:
    prefix = "autogen-cronjob-" if cronjob else "autogen-"
    copy: dict[str, Any] = json.loads(json.dumps(rule))
    copy["name"] = (prefix + str(rule.get("name", "")))[:_MAX_NAME]
    copy["match"] = _rewrite_kinds(copy.get("match"), kinds)
    if "exclude" in copy:
        copy["exclude"] = _rewrite_kinds(copy["exclude"], kinds)
    validate = copy.get("validate")
    if isinstance(validate, dict):
        if "pattern" in validate:
            validate["pattern"] = _wrap(validate["pattern"], cronjob)
        if isinstance(validate.get("anyPattern"), list):
            validate["anyPattern"] = [_wrap(p, cronjob) for p in validate["anyPattern"]]
    inserted = "spec.jobTemplate.spec.template" if cronjob else "spec.template"
    text = _REQUEST_PATH.sub(lambda m: f"request.{m.group(1)}.{inserted}.{m.group(2)}", json.dumps(copy))
    if isinstance(validate, dict) and "cel" in validate:
        text = _CEL_PATH.sub(lambda m: f"{m.group(1)}.{inserted}.{m.group(2)}", text)
    result: dict[str, Any] = json.loads(text)
    return result


def expand(
    rules: Sequence[Mapping[str, Any]], annotations: Mapping[str, Any]
) -> list[tuple[dict[str, Any], str]]:
    """The generated rules of a policy, each with the name of the rule it came from."""
    names = controllers(annotations)
    if not names or not _eligible(rules):
        return []
    plain = [_QUALIFIED.get(n, n) for n in names if n != "CronJob"]
    with_cronjob = "CronJob" in names
    generated: list[tuple[dict[str, Any], str]] = []
    for rule in rules:
        match_kinds = [k for f in _filters(rule.get("match")) for k in _kinds(f)]
        exclude_kinds = [k for f in _filters(rule.get("exclude")) for k in _kinds(f)]
        if not any(_is_pod(k) for k in match_kinds):
            continue
        if exclude_kinds and not any(_is_pod(k) for k in exclude_kinds):
            continue
        if plain:
            generated.append((_generated(rule, plain, cronjob=False), str(rule.get("name", ""))))
        if with_cronjob:
            generated.append(
                (_generated(rule, [_QUALIFIED["CronJob"]], cronjob=True), str(rule.get("name", "")))
            )
    return generated
