"""The accepted shape of kyverno.io ClusterPolicy/Policy documents (unknown fields are errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policies._yaml import Document, FieldPath


@dataclass(frozen=True)
class Obj:
    """A mapping with known fields (``free`` allows any extra field)."""

    fields: dict[str, Any]
    free: bool = False


@dataclass(frozen=True)
class ListOf:
    """A list of one element shape."""

    item: Any


@dataclass(frozen=True)
class MapOf:
    """A mapping from strings to one value shape."""

    value: Any


ANY = "any"
STR = "string"
BOOL = "boolean"
INT = "integer"
SCALAR = "scalar"

_LABEL_SELECTOR = Obj(
    {
        "matchLabels": MapOf(SCALAR),
        "matchExpressions": ListOf(Obj({"key": STR, "operator": STR, "values": ListOf(SCALAR)})),
    }
)
_RESOURCES = Obj(
    {
        "kinds": ListOf(STR),
        "name": STR,
        "names": ListOf(STR),
        "namespaces": ListOf(STR),
        "annotations": MapOf(SCALAR),
        "selector": _LABEL_SELECTOR,
        "namespaceSelector": _LABEL_SELECTOR,
        "operations": ListOf(STR),
    }
)
_SUBJECT = Obj({"kind": STR, "name": STR, "namespace": STR, "apiGroup": STR})
_FILTER_FIELDS: dict[str, Any] = {
    "resources": _RESOURCES,
    "subjects": ListOf(_SUBJECT),
    "roles": ListOf(STR),
    "clusterRoles": ListOf(STR),
}
_FILTER = Obj(_FILTER_FIELDS)
_MATCH = Obj({"any": ListOf(_FILTER), "all": ListOf(_FILTER), **_FILTER_FIELDS})
_CONDITION = Obj({"key": ANY, "operator": STR, "value": ANY, "message": STR})
ANY_ALL_CONDITIONS = Obj({"any": ListOf(_CONDITION), "all": ListOf(_CONDITION)})
_CONDITIONS = ("conditions", ListOf(_CONDITION), ANY_ALL_CONDITIONS)
# A PolicyException's match: only any/all blocks of filters.
EXCEPTION_MATCH = Obj({"any": ListOf(_FILTER), "all": ListOf(_FILTER)})
_CONTEXT_ENTRY = Obj(
    {
        "name": STR,
        "variable": Obj({"value": ANY, "jmesPath": STR, "default": ANY}),
        "configMap": Obj({"name": STR, "namespace": STR}),
        "apiCall": Obj(
            {
                "urlPath": STR,
                "method": STR,
                "data": ListOf(Obj({"key": STR, "value": ANY})),
                "service": Obj(
                    {"url": STR, "caBundle": STR, "headers": ListOf(Obj({"key": STR, "value": STR}))}
                ),
                "jmesPath": STR,
                "default": ANY,
            }
        ),
        "imageRegistry": Obj({"reference": STR, "jmesPath": STR, "imageRegistryCredentials": ANY}),
        "globalReference": Obj({"name": STR, "jmesPath": STR}),
    }
)
_DENY = Obj({"conditions": _CONDITIONS})
_OVERRIDE = Obj({"action": STR, "namespaces": ListOf(STR), "namespaceSelector": _LABEL_SELECTOR})
_POD_SECURITY = Obj(
    {
        "level": STR,
        "version": STR,
        "exclude": ListOf(
            Obj({"controlName": STR, "images": ListOf(STR), "restrictedField": STR, "values": ListOf(STR)})
        ),
    }
)


def _foreach() -> Obj:
    fields: dict[str, Any] = {
        "list": STR,
        "context": ListOf(_CONTEXT_ENTRY),
        "preconditions": _CONDITIONS,
        "pattern": ANY,
        "anyPattern": ListOf(ANY),
        "deny": _DENY,
        "elementScope": BOOL,
    }
    shape = Obj(fields)
    fields["foreach"] = ListOf(shape)
    return shape


_VALIDATE = Obj(
    {
        "message": STR,
        "pattern": ANY,
        "anyPattern": ListOf(ANY),
        "deny": _DENY,
        "foreach": ListOf(_foreach()),
        "podSecurity": _POD_SECURITY,
        "cel": ANY,
        "manifests": ANY,
        "assert": ANY,
        "failureAction": STR,
        "failureActionOverrides": ListOf(_OVERRIDE),
        "allowExistingViolations": BOOL,
    }
)
RULE = Obj(
    {
        "name": STR,
        "match": _MATCH,
        "exclude": _MATCH,
        "context": ListOf(_CONTEXT_ENTRY),
        "preconditions": _CONDITIONS,
        "celPreconditions": ANY,
        "validate": _VALIDATE,
        "mutate": ANY,
        "generate": ANY,
        "verifyImages": ANY,
        "imageExtractors": ANY,
        "skipBackgroundRequests": BOOL,
        "reportProperties": MapOf(STR),
    }
)
SPEC = Obj(
    {
        "rules": ListOf(RULE),
        "validationFailureAction": STR,
        "validationFailureActionOverrides": ListOf(_OVERRIDE),
        "background": BOOL,
        "admission": BOOL,
        "failurePolicy": STR,
        "webhookTimeoutSeconds": INT,
        "webhookConfiguration": ANY,
        "mutateExistingOnPolicyUpdate": BOOL,
        "generateExisting": BOOL,
        "generateExistingOnPolicyUpdate": BOOL,
        "applyRules": STR,
        "emitWarning": BOOL,
        "useServerSideApply": BOOL,
        "schemaValidation": BOOL,
        "evaluation": ANY,
    }
)
POLICY = Obj(
    {
        "apiVersion": STR,
        "kind": STR,
        "metadata": Obj(
            {"name": STR, "namespace": STR, "annotations": MapOf(SCALAR), "labels": MapOf(SCALAR)}, True
        ),
        "spec": SPEC,
        "status": ANY,
    }
)


def _type_of(value: Any) -> str:  # noqa: PLR0911  # one exit per JSON type
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "mapping"


def check(document: Document, value: Any, shape: Any, path: FieldPath) -> None:  # noqa: PLR0911, PLR0912  # per shape
    """Raise a load error at the first place ``value`` does not fit ``shape``."""
    if shape == ANY:
        return
    if isinstance(shape, tuple):  # alternatives: ("conditions", list shape, mapping shape)
        alternatives = shape[1:]
        if isinstance(value, list):
            check(document, value, alternatives[0], path)
        elif isinstance(value, dict):
            check(document, value, alternatives[1], path)
        else:
            raise document.error(path, f"expected a list or a mapping of any/all, got {_type_of(value)}")
        return
    if isinstance(shape, Obj):
        if not isinstance(value, dict):
            raise document.error(path, f"expected a mapping, got {_type_of(value)}")
        for key, item in value.items():
            if key not in shape.fields:
                if shape.free:
                    continue
                known = ", ".join(sorted(shape.fields))
                raise document.error((*path, key), f"unknown field (expected one of: {known})")
            check(document, item, shape.fields[key], (*path, key))
        return
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            raise document.error(path, f"expected a list, got {_type_of(value)}")
        for index, item in enumerate(value):
            check(document, item, shape.item, (*path, index))
        return
    if isinstance(shape, MapOf):
        if not isinstance(value, dict):
            raise document.error(path, f"expected a mapping, got {_type_of(value)}")
        for key, item in value.items():
            check(document, item, shape.value, (*path, key))
        return
    actual = _type_of(value)
    if shape == SCALAR:
        if actual in ("list", "mapping"):
            raise document.error(path, f"expected a scalar, got {actual}")
        return
    if shape == INT and actual == "integer":
        return
    if actual != shape:
        raise document.error(path, f"expected {shape}, got {actual}")
