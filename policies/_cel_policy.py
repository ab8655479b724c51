"""CEL policies: ``validate.cel`` rules, Kyverno ``ValidatingPolicy`` and Kubernetes
``ValidatingAdmissionPolicy`` (+ bindings), compiled at load and evaluated per request.

Two engines sit behind the word CEL in Kyverno and both are mirrored here:

* ``validate.cel`` rules and ValidatingAdmissionPolicies run through the Kubernetes admission
  validator: an expression that errors counts as a failure, a false ``celPreconditions`` /
  ``matchConditions`` entry skips the rule, and the Kubernetes environment has no Kyverno functions.
* ValidatingPolicies run on Kyverno's own evaluator: an expression that errors gives ``error``,
  the first failing validation stops evaluation, and Kyverno's functions are available.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gate.model import EnforcementAction, RuleOutcome
from policies import _cel_env, _cel_libs, _schema
from policies._cel_env import Activation, Budget, CelCompileError, Environment, EvalError, Program
from policies._match import Selector, Target, UserInfo
from policies._schema import ANY, BOOL, SCALAR, STR, ListOf, MapOf, Obj
from policies._yaml import Document, FieldPath, format_path

VPOL_GROUP = "policies.kyverno.io/"
VPOL_KINDS = ("ValidatingPolicy", "NamespacedValidatingPolicy")
VAP_GROUP = "admissionregistration.k8s.io/"
VAP_KIND = "ValidatingAdmissionPolicy"
BINDING_KIND = "ValidatingAdmissionPolicyBinding"
_MAX_MESSAGE_BYTES = 5 * 1024

_NAMED_EXPRESSION = Obj({"name": STR, "expression": STR})
_VALIDATION = Obj({"expression": STR, "message": STR, "messageExpression": STR, "reason": STR})
_AUDIT_ANNOTATION = Obj({"key": STR, "valueExpression": STR})
_LABEL_SELECTOR = Obj({"matchLabels": MapOf(ANY), "matchExpressions": ListOf(ANY)})
_RULE_WITH_OPERATIONS = Obj(
    {
        "apiGroups": ListOf(STR),
        "apiVersions": ListOf(STR),
        "operations": ListOf(STR),
        "resources": ListOf(STR),
        "resourceNames": ListOf(STR),
        "scope": STR,
    }
)
_MATCH_RESOURCES = Obj(
    {
        "resourceRules": ListOf(_RULE_WITH_OPERATIONS),
        "excludeResourceRules": ListOf(_RULE_WITH_OPERATIONS),
        "namespaceSelector": _LABEL_SELECTOR,
        "objectSelector": _LABEL_SELECTOR,
        "matchPolicy": STR,
    }
)
_PARAM_KIND = Obj({"apiVersion": STR, "kind": STR})
_PARAM_REF = Obj({"name": STR, "namespace": STR, "selector": _LABEL_SELECTOR, "parameterNotFoundAction": STR})
CEL_BLOCK = Obj(
    {
        "expressions": ListOf(_VALIDATION),
        "variables": ListOf(_NAMED_EXPRESSION),
        "auditAnnotations": ListOf(_AUDIT_ANNOTATION),
        "paramKind": _PARAM_KIND,
        "paramRef": _PARAM_REF,
        "generate": BOOL,
    }
)
_VPOL_SPEC = Obj(
    {
        "matchConstraints": _MATCH_RESOURCES,
        "matchConditions": ListOf(_NAMED_EXPRESSION),
        "variables": ListOf(_NAMED_EXPRESSION),
        "validations": ListOf(_VALIDATION),
        "auditAnnotations": ListOf(_AUDIT_ANNOTATION),
        "validationActions": ListOf(STR),
        "failurePolicy": STR,
        "evaluation": Obj(
            {
                "background": Obj({"enabled": BOOL}, True),
                "admission": Obj({"enabled": BOOL}, True),
                "mode": STR,
            },
            True,
        ),
        "autogen": Obj({"podControllers": Obj({"controllers": ListOf(STR)}, True)}, True),
        "webhookConfiguration": ANY,
        "paramKind": _PARAM_KIND,
        "admission": ANY,
        "background": ANY,
    }
)
_VAP_SPEC = Obj(
    {
        "matchConstraints": _MATCH_RESOURCES,
        "matchConditions": ListOf(_NAMED_EXPRESSION),
        "variables": ListOf(_NAMED_EXPRESSION),
        "validations": ListOf(_VALIDATION),
        "auditAnnotations": ListOf(_AUDIT_ANNOTATION),
        "failurePolicy": STR,
        "paramKind": _PARAM_KIND,
    }
)
_BINDING_SPEC = Obj(
    {
        "policyName": STR,
        "paramRef": _PARAM_REF,
        "matchResources": _MATCH_RESOURCES,
        "validationActions": ListOf(STR),
    }
)
_METADATA = Obj({"name": STR, "namespace": STR, "annotations": MapOf(SCALAR), "labels": MapOf(SCALAR)}, True)
_TOP = {"apiVersion": STR, "kind": STR, "metadata": _METADATA, "status": ANY}
VPOL_SHAPE = Obj({**_TOP, "spec": _VPOL_SPEC})
VAP_SHAPE = Obj({**_TOP, "spec": _VAP_SPEC})
BINDING_SHAPE = Obj({**_TOP, "spec": _BINDING_SPEC})
_ACTIONS = ("Deny", "Warn", "Audit")
_OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT", "*")


def is_cel_document(data: Any) -> bool:
    """Whether a document is a ValidatingPolicy, a ValidatingAdmissionPolicy or its binding."""
    if not isinstance(data, dict):
        return False
    version, kind = str(data.get("apiVersion", "")), data.get("kind")
    if version.startswith(VPOL_GROUP):
        return kind in VPOL_KINDS
    return version.startswith(VAP_GROUP) and kind in (VAP_KIND, BINDING_KIND)


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CelInputs:
    """What CEL policies read beyond the request.

    Attributes:
        data: offline answers for Kyverno's ``image.GetMetadata`` and ``resource.Get/List``.
        namespaces: Namespace objects by name, as ``kyverno test`` supplies them; None builds
            ``namespaceObject`` from the request's namespace and labels (admission).
        params: parameter objects for ``paramKind``/``paramRef`` (``kyverno test`` paramResources).
        offline_cli: ``validate.cel`` then sees ``{metadata: {name}}`` as ``namespaceObject``,
            as Kyverno's CLI gives it.
    """

    data: _cel_libs.RequestData = field(default_factory=_cel_libs.RequestData)
    namespaces: Mapping[str, Mapping[str, Any]] | None = None
    params: Sequence[Mapping[str, Any]] = ()
    offline_cli: bool = False


_NO_INPUTS = CelInputs()
# CEL PolicyExceptions are not loaded: no exception ever allows an image or value.
_NO_EXCEPTIONS: Mapping[str, Any] = {"allowedImages": [], "allowedValues": []}


@dataclass
class RequestState:
    """Per-request CEL state: converted inputs (once), activations per environment, the budget."""

    request: Any
    target: Target
    inputs: CelInputs
    budget: Budget = field(default_factory=Budget)
    converted: dict[str, Any] | None = None
    activations: dict[tuple[str, str, int], Activation] = field(default_factory=dict)


def new_state(
    request: Any,
    target: Target,
    inputs: CelInputs | None,
    http: Callable[[str, str, Mapping[str, Any]], Any] | None = None,
) -> RequestState:
    """The CEL state of one request (``request`` is a :class:`policies._model.AdmissionRequest`);
    ``http`` answers ``http.Get``/``http.Post`` unless the inputs carry their own answers."""
    chosen = inputs or _NO_INPUTS
    if http is not None and chosen.data.http is None:
        chosen = dataclasses.replace(chosen, data=dataclasses.replace(chosen.data, http=http))
    return RequestState(request, target, chosen)


def _request_json(request: Any, target: Target) -> dict[str, Any]:
    user: UserInfo | None = request.user_info
    gvk = {"group": target.group, "version": target.version, "kind": target.kind}
    gvr = {"group": target.group, "version": target.version, "resource": _resource_of(target.kind)}
    return {
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "subResource": request.sub_resource,
        "name": target.name,
        "namespace": target.namespace,
        "operation": request.operation,
        "userInfo": {
            "username": user.username if user else "",
            "uid": "",
            "groups": list(user.groups) if user else [],
            "extra": {},
        },
        "dryRun": False,
        "options": {},
    }


def _namespace_object(state: RequestState, engine: str) -> Any:
    target = state.target
    if not target.namespace or target.kind == "Namespace":
        return None
    if state.inputs.namespaces is not None:
        if engine == "admission" and state.inputs.offline_cli:
            return {"metadata": {"name": target.namespace}}
        return state.inputs.namespaces.get(target.namespace)
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": target.namespace, "labels": dict(target.namespace_labels or {})},
    }


def _activation(state: RequestState, environment: Environment, params: Any = None) -> Activation:
    """The activation for ``environment`` (and one param object), made once per request.

    Raises:
        EvalError: an input is larger than the CEL input bound.
    """
    key = (environment.name, "params" if params is not None else "", id(params))
    found = state.activations.get(key)
    if found is not None:
        return found
    if state.converted is None:
        request = state.request
        state.converted = {
            "object": _cel_env.to_cel_input(request.object or None),
            "oldObject": _cel_env.to_cel_input(request.old_object or None),
            "request": _request_json(request, state.target),
        }
    inputs = dict(state.converted)
    inputs["namespaceObject"] = _cel_env.to_cel_input(_namespace_object(state, environment.name))
    inputs["params"] = _cel_env.to_cel_input(params)
    inputs["exceptions"] = _NO_EXCEPTIONS
    bound = _cel_env.activation(environment, inputs, state.inputs.data)
    state.activations[key] = bound
    return bound


# --- compiled shapes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Validation:
    """One validation: the condition and its messages."""

    program: Program
    message: str
    message_expression: Program | None


@dataclass(frozen=True, slots=True)
class CelBody:
    """What both engines evaluate: conditions, validations, annotations, params."""

    conditions: tuple[tuple[str, Program], ...]
    validations: tuple[Validation, ...]
    annotations: tuple[tuple[str, Program], ...]
    param_kind: Mapping[str, str] | None = None
    param_ref: Mapping[str, Any] | None = None


_NEEDS_CLUSTER = (
    ("authorizer", " (authorizer checks need a live cluster; gate evaluates offline)"),
    ("globalContext.", " (globalContext entries are not available in gate)"),
    ("resource.Post", " (resource.Post needs a live cluster)"),
)


class _Compiler:
    """Compiles the expressions of one document, naming the field path in every error."""

    def __init__(self, document: Document, environment: Environment, name: str) -> None:
        self.document = document
        self.environment = environment
        self.name = name
        self.variables: dict[str, str] = {}

    def program(self, text: Any, path: FieldPath) -> Program:
        if not isinstance(text, str) or not text.strip():
            raise self.document.error(path, "expected a non-empty CEL expression")
        try:
            return _cel_env.compile_expression(self.environment, text, format_path(path), self.variables)
        except CelCompileError as exc:
            hint = next((h for marker, h in _NEEDS_CLUSTER if marker in text), "")
            raise self.document.error(path, f"policy {self.name}: CEL compile error: {exc}{hint}") from None

    def declare_variables(self, raw: Any, path: FieldPath) -> None:
        for index, entry in enumerate(raw or ()):
            here = (*path, index)
            name = entry.get("name")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise self.document.error((*here, "name"), f"expected a CEL identifier, got {name!r}")
            if name in self.variables:
                raise self.document.error((*here, "name"), f"duplicate variable {name!r}")
            self.program(entry.get("expression"), (*here, "expression"))
            self.variables[name] = str(entry["expression"])

    def body(
        self,
        conditions: Any,
        conditions_path: FieldPath,
        validations: Any,
        validations_path: FieldPath,
        annotations: Any,
        annotations_path: FieldPath,
        *,
        default_message: str = "",
    ) -> CelBody:
        compiled_conditions = tuple(
            (str(c.get("name", "")), self.program(c.get("expression"), (*conditions_path, i, "expression")))
            for i, c in enumerate(conditions or ())
        )
        compiled: list[Validation] = []
        for index, raw in enumerate(validations or ()):
            here = (*validations_path, index)
            message_expression = raw.get("messageExpression")
            compiled.append(
                Validation(
                    self.program(raw.get("expression"), (*here, "expression")),
                    str(raw.get("message") or default_message),
                    self.program(message_expression, (*here, "messageExpression"))
                    if message_expression
                    else None,
                )
            )
        compiled_annotations = tuple(
            (
                str(a.get("key", "")),
                self.program(a.get("valueExpression"), (*annotations_path, i, "valueExpression")),
            )
            for i, a in enumerate(annotations or ())
        )
        return CelBody(compiled_conditions, tuple(compiled), compiled_annotations)


# --- validate.cel rules ------------------------------------------------------------------------


_AUTHORIZER = re.compile(r"(?<![\w.])authorizer\b")


def check_rule_shape(document: Document, raw_rule: Mapping[str, Any], path: FieldPath) -> None:
    """Raise a load error where a ``validate.cel`` rule's block or ``celPreconditions`` is misshapen."""
    validate = raw_rule.get("validate") or {}
    _schema.check(document, validate.get("cel") or {}, CEL_BLOCK, (*path, "validate", "cel"))
    _schema.check(
        document,
        raw_rule.get("celPreconditions") or [],
        ListOf(_NAMED_EXPRESSION),
        (*path, "celPreconditions"),
    )


def unsupported_reason(raw_rule: Mapping[str, Any]) -> str:
    """Why a ``validate.cel`` rule cannot run here ("" when it can): authorizer checks ask the
    cluster's authorizer, which an offline engine does not have.

    The rule's shape is checked first (:func:`check_rule_shape`).
    """
    block = ((raw_rule.get("validate") or {}).get("cel")) or {}
    if not isinstance(block, Mapping):
        return ""
    texts = [str(e.get("expression", "")) for e in block.get("expressions") or () if isinstance(e, Mapping)]
    texts += [str(v.get("expression", "")) for v in block.get("variables") or () if isinstance(v, Mapping)]
    texts += [
        str(c.get("expression", "")) for c in raw_rule.get("celPreconditions") or () if isinstance(c, Mapping)
    ]
    for text in texts:
        code = "".join(text[a:b] for a, b, is_code in _cel_env.code_spans(text) if is_code)
        if _AUTHORIZER.search(code):
            return "validate.cel rules using authorizer need the cluster's authorizer; gate evaluates offline"
    return ""


def compile_rule(
    document: Document, policy_name: str, raw_rule: Mapping[str, Any], path: FieldPath
) -> CelBody:
    """Compile a ``validate.cel`` rule (with its ``celPreconditions``).

    Raises:
        PolicyLoadError: a field has the wrong shape or an expression does not compile.
    """
    check_rule_shape(document, raw_rule, path)
    validate = raw_rule.get("validate") or {}
    block: dict[str, Any] = validate.get("cel") or {}
    cel_path = (*path, "validate", "cel")
    if not block.get("expressions"):
        raise document.error((*cel_path, "expressions"), "validate.cel needs at least one expression")
    compiler = _Compiler(document, _cel_env.admission_environment(), policy_name)
    compiler.declare_variables(block.get("variables"), (*cel_path, "variables"))
    body = compiler.body(
        raw_rule.get("celPreconditions"),
        (*path, "celPreconditions"),
        block.get("expressions"),
        (*cel_path, "expressions"),
        block.get("auditAnnotations"),
        (*cel_path, "auditAnnotations"),
        default_message=str(validate.get("message") or ""),
    )
    return CelBody(
        body.conditions,
        body.validations,
        body.annotations,
        block.get("paramKind"),
        block.get("paramRef"),
    )


def _admission_message(validation: Validation, bound: Activation, budget: Budget) -> str:
    """Kubernetes' precedence: messageExpression (if usable), message, the expression itself."""
    if validation.message_expression is not None:
        try:
            text = _cel_env.evaluate(validation.message_expression, bound, budget)
        except EvalError:
            text = None
        if (
            isinstance(text, str)
            and text.strip()
            and "\n" not in text.strip()
            and len(text.encode()) <= _MAX_MESSAGE_BYTES
        ):
            return text.strip()
    if validation.message.strip():
        return validation.message.strip()
    return f"failed expression: {validation.program.source.strip()}"


def _params(state: RequestState, body: CelBody) -> list[Any] | None:
    """Parameter objects the rule runs once for; None when it has no paramKind."""
    if not body.param_kind:
        return None
    want_version = str(body.param_kind.get("apiVersion", ""))
    want_kind = str(body.param_kind.get("kind", ""))
    ref = body.param_ref or {}
    found = []
    for param in state.inputs.params:
        if str(param.get("apiVersion", "")) != want_version or str(param.get("kind", "")) != want_kind:
            continue
        metadata = param.get("metadata") or {}
        if ref.get("name") and metadata.get("name") != ref["name"]:
            continue
        namespace = ref.get("namespace") or (
            state.target.namespace if ref.get("name") or ref.get("selector") else ""
        )
        if namespace and metadata.get("namespace", "") not in ("", namespace):
            continue
        selector = ref.get("selector")
        if isinstance(selector, Mapping) and not Selector.parse(selector).matches(
            metadata.get("labels") or {}
        ):
            continue
        found.append(param)
    return found


def evaluate_rule(  # noqa: PLR0911  # one exit per admission-validator stage
    rule_name: str, body: CelBody, state: RequestState
) -> tuple[RuleOutcome, str]:
    """A ``validate.cel`` rule through the admission validator's semantics."""
    environment = _cel_env.admission_environment()
    params = _params(state, body)
    if params is not None and not params:
        if str((body.param_ref or {}).get("parameterNotFoundAction", "Deny")) == "Allow":
            return RuleOutcome.PASS, f"Validation rule '{rule_name}' passed."
        return RuleOutcome.FAIL, f"no params found for policy rule {rule_name}"
    for param in params if params is not None else [None]:
        try:
            bound = _activation(state, environment, param)
        except EvalError as exc:
            return RuleOutcome.FAIL, str(exc)
        for _name, program in body.conditions:
            try:
                held = _cel_env.evaluate(program, bound, state.budget)
            except EvalError as exc:
                return RuleOutcome.FAIL, f"cel precondition error: {exc}"
            if held is not True:
                if held is False:
                    return RuleOutcome.SKIP, "cel preconditions not met"
                return RuleOutcome.FAIL, "cel precondition error: expression did not return a bool"
        for validation in body.validations:
            try:
                held = _cel_env.evaluate(validation.program, bound, state.budget)
            except EvalError as exc:
                return (
                    RuleOutcome.FAIL,
                    f"expression '{validation.program.source.strip()}' resulted in error: {exc}",
                )
            if held is True:
                continue
            if held is False:
                return RuleOutcome.FAIL, _admission_message(validation, bound, state.budget)
            return (
                RuleOutcome.FAIL,
                f"validation expression '{validation.program.source.strip()}' must return a bool",
            )
    return RuleOutcome.PASS, f"Validation rule '{rule_name}' passed."


# --- matchConstraints ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceRule:
    """One ``resourceRules`` entry."""

    groups: tuple[str, ...]
    versions: tuple[str, ...]
    operations: tuple[str, ...]
    resources: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ResourceRule:
        """From the policy's mapping."""
        return cls(
            tuple(raw.get("apiGroups") or ()),
            tuple(raw.get("apiVersions") or ()),
            tuple(raw.get("operations") or ()),
            tuple(raw.get("resources") or ()),
            tuple(raw.get("resourceNames") or ()),
        )

    def matches(self, target: Target, operation: str) -> bool:
        """Whether the request's group, version, resource(/subresource), operation and name match."""
        if not _any(self.groups, target.group) or not _any(self.versions, target.version):
            return False
        if operation and not _any(self.operations, operation):
            return False
        resource = _resource_of(target.kind)
        wanted = f"{resource}/{target.subresource}" if target.subresource else resource
        if not any(_resource_matches(pattern, wanted, resource) for pattern in self.resources):
            return False
        return not self.names or target.name in self.names


@functools.lru_cache(maxsize=1024)
def _resource_of(kind: str) -> str:
    return _cel_libs.resource_name(kind)


def _any(allowed: Sequence[str], value: str) -> bool:
    return "*" in allowed or value in allowed


def _resource_matches(pattern: str, wanted: str, resource: str) -> bool:
    if pattern in ("*", "*/*") or pattern == wanted:
        return True
    head, _, sub = pattern.partition("/")
    if head == "*" and sub:
        return wanted.endswith("/" + sub)
    return sub == "*" and head == resource and "/" in wanted


@dataclass(frozen=True, slots=True)
class MatchConstraints:
    """``matchConstraints`` / ``matchResources``."""

    rules: tuple[ResourceRule, ...]
    excludes: tuple[ResourceRule, ...]
    namespace_selector: Selector | None
    object_selector: Selector | None
    simple: bool
    # The resources named without wildcards (a quick reject); None when a rule has a wildcard.
    quick: frozenset[str] | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> MatchConstraints:
        """From the policy's mapping (absent: matches nothing but a binding can narrow it)."""
        raw = raw or {}
        rules = tuple(ResourceRule.parse(r) for r in raw.get("resourceRules") or ())
        excludes = tuple(ResourceRule.parse(r) for r in raw.get("excludeResourceRules") or ())
        ns = raw.get("namespaceSelector")
        obj = raw.get("objectSelector")
        simple = len(rules) == 1 and not rules[0].names and not excludes and not ns and not obj
        names = [r.partition("/")[0] for rule in rules for r in rule.resources]
        return cls(
            rules,
            excludes,
            Selector.parse(ns) if ns else None,
            Selector.parse(obj) if obj else None,
            simple,
            None if any("*" in n for n in names) else frozenset(names),
        )

    def matches(self, target: Target, operation: str) -> bool:
        """Whether the request is selected."""
        if self.quick is not None and _resource_of(target.kind) not in self.quick:
            return False
        if not any(r.matches(target, operation) for r in self.rules):
            return False
        if any(r.matches(target, operation) for r in self.excludes):
            return False
        if self.object_selector is not None and not self.object_selector.matches(target.labels):
            return False
        if self.namespace_selector is not None and target.namespace and target.kind != "Namespace":
            return self.namespace_selector.matches(target.namespace_labels or {})
        return True


# --- ValidatingPolicy ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """The policy as compiled for one set of resources (the Pod original or an autogen variant)."""

    match: MatchConstraints
    body: CelBody
    autogen: str = ""


@dataclass(frozen=True, slots=True)
class CelPolicy:
    """A compiled ValidatingPolicy or ValidatingAdmissionPolicy (with its bindings)."""

    kind: str
    variants: tuple[Variant, ...]
    actions: tuple[str, ...]
    failure_policy: str
    simple_match: bool
    bindings: tuple[Binding, ...] = ()

    @property
    def enforcement(self) -> EnforcementAction:
        """Deny blocks admission; Warn and Audit only report."""
        return EnforcementAction.ENFORCE if "Deny" in self.actions else EnforcementAction.AUDIT


@dataclass(frozen=True, slots=True)
class Binding:
    """A ValidatingAdmissionPolicyBinding."""

    name: str
    match: MatchConstraints | None
    actions: tuple[str, ...]
    param_ref: Mapping[str, Any] | None


_POD_CONTROLLERS = ("daemonsets", "deployments", "jobs", "replicasets", "statefulsets")
_CONTROLLER_GROUPS = {
    "daemonsets": "apps",
    "deployments": "apps",
    "replicasets": "apps",
    "statefulsets": "apps",
    "jobs": "batch",
}
# Kyverno rewrites the policy's text: ``object.spec``/``object.metadata`` (and ``oldObject.``)
# become the pod template's, except ``….metadata.namespace``, which stays the controller's.
# Like Kyverno, ``object.?spec`` is not rewritten.
_OBJECT_PART = re.compile(r"(object|oldObject)\.(spec|metadata)(?!\.namespace(?![A-Za-z0-9_]))")


def _autogen_text(text: str, cronjob: bool) -> str:
    template = "spec.jobTemplate.spec.template" if cronjob else "spec.template"
    return _OBJECT_PART.sub(lambda m: f"{m.group(1)}.{template}.{m.group(2)}", text)


def _autogen_document(spec: Mapping[str, Any], cronjob: bool) -> dict[str, Any]:
    """The spec's expressions and messages rewritten for pod templates."""

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            return _autogen_text(value, cronjob)
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        return value

    return {
        key: rewrite(spec.get(key))
        for key in ("matchConditions", "variables", "validations", "auditAnnotations")
        if key in spec
    }


def _autogen_controllers(spec: Mapping[str, Any]) -> list[str]:
    """Which controllers get variants (Kyverno's rules for ValidatingPolicy autogen)."""
    match = spec.get("matchConstraints") or {}
    rules = match.get("resourceRules") or []
    if len(rules) != 1 or match.get("excludeResourceRules") or match.get("objectSelector"):
        return []
    rule = rules[0]
    if (
        list(rule.get("apiGroups") or []) != [""]
        or list(rule.get("apiVersions") or []) != ["v1"]
        or list(rule.get("resources") or []) != ["pods"]
        or rule.get("resourceNames")
    ):
        return []
    controllers = [*_POD_CONTROLLERS, "cronjobs"]
    configured = ((spec.get("autogen") or {}).get("podControllers") or {}).get("controllers")
    if configured is not None:
        wanted = {str(c) for c in configured}
        controllers = [c for c in controllers if c in wanted] if wanted else []
        if wanted and not controllers:
            # Kyverno ignores spellings other than the lowercase plurals and keeps its default.
            controllers = [*_POD_CONTROLLERS, "cronjobs"]
    return controllers


def _variant_rules(base: Mapping[str, Any], controllers: Sequence[str]) -> dict[str, Any]:
    rule = dict((base.get("resourceRules") or [{}])[0])
    groups = sorted({_CONTROLLER_GROUPS.get(c, "batch") for c in controllers})
    rule.update({"apiGroups": groups, "apiVersions": ["v1"], "resources": list(controllers)})
    result = dict(base)
    result["resourceRules"] = [rule]
    return result


def compile_validating_policy(document: Document) -> tuple[str, CelPolicy, Mapping[str, Any]]:
    """Compile a ValidatingPolicy: its name, the compiled policy, its annotations.

    Raises:
        PolicyLoadError: a field has the wrong shape or an expression does not compile.
    """
    data = document.data
    _schema.check(document, data, VPOL_SHAPE, ())
    name = _name(document)
    spec = data.get("spec") or {}
    actions = _actions(document, spec.get("validationActions"), ("spec", "validationActions"))
    failure_policy = _failure_policy(document, spec)
    _check_operations(document, spec.get("matchConstraints"), ("spec", "matchConstraints"))
    if not spec.get("validations"):
        raise document.error(("spec", "validations"), "a ValidatingPolicy needs at least one validation")
    variants = [
        Variant(MatchConstraints.parse(spec.get("matchConstraints")), _vpol_body(document, name, spec))
    ]
    controllers = _autogen_controllers(spec)
    plain = [c for c in controllers if c != "cronjobs"]
    for group, cronjob in ((plain, False), (["cronjobs"] if "cronjobs" in controllers else [], True)):
        if not group:
            continue
        rewritten = _autogen_document(spec, cronjob)
        match = MatchConstraints.parse(_variant_rules(spec.get("matchConstraints") or {}, group))
        variants.append(
            Variant(
                match,
                _vpol_body(document, name, {**spec, **rewritten}),
                "cronjobs" if cronjob else "controllers",
            )
        )
    simple = MatchConstraints.parse(spec.get("matchConstraints")).simple
    policy = CelPolicy("ValidatingPolicy", tuple(variants), actions, failure_policy, simple)
    return name, policy, (data.get("metadata") or {}).get("annotations") or {}


def _vpol_body(document: Document, name: str, spec: Mapping[str, Any]) -> CelBody:
    compiler = _Compiler(document, _cel_env.kyverno_environment(), name)
    compiler.declare_variables(spec.get("variables"), ("spec", "variables"))
    return compiler.body(
        spec.get("matchConditions"),
        ("spec", "matchConditions"),
        spec.get("validations"),
        ("spec", "validations"),
        spec.get("auditAnnotations"),
        ("spec", "auditAnnotations"),
    )


def _name(document: Document) -> str:
    name = (document.data.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
        raise document.error(("metadata", "name"), f"expected a DNS-1123 name, got {name!r}")
    return name


def _actions(document: Document, raw: Any, path: FieldPath) -> tuple[str, ...]:
    actions = tuple(str(a) for a in raw or ("Deny",))
    for index, action in enumerate(actions):
        if action not in _ACTIONS:
            raise document.error((*path, index), f"expected one of {', '.join(_ACTIONS)}, got {action!r}")
    if "Deny" in actions and "Warn" in actions:
        raise document.error(path, "Deny and Warn cannot be used together")
    return actions


def _failure_policy(document: Document, spec: Mapping[str, Any]) -> str:
    value = str(spec.get("failurePolicy") or "Fail")
    if value not in ("Fail", "Ignore"):
        raise document.error(("spec", "failurePolicy"), f"expected Fail or Ignore, got {value!r}")
    return value


def _check_operations(document: Document, match: Any, path: FieldPath) -> None:
    for key in ("resourceRules", "excludeResourceRules"):
        for index, rule in enumerate((match or {}).get(key) or ()):
            for position, operation in enumerate(rule.get("operations") or ()):
                if operation not in _OPERATIONS:
                    raise document.error(
                        (*path, key, index, "operations", position),
                        f"expected one of {', '.join(_OPERATIONS)}, got {operation!r}",
                    )


def _vpol_message(validation: Validation, index: int, bound: Activation, budget: Budget) -> str:
    if validation.message_expression is not None:
        try:
            text = _cel_env.evaluate(validation.message_expression, bound, budget)
        except EvalError as exc:
            return f"failed to evaluate message expression: {exc}"
        if isinstance(text, str):
            return text
        return "failed to evaluate message expression: expression did not return a string"
    if validation.message:
        return validation.message
    return f"CEL expression validation failed at index {index}"


Responder = Callable[[str, RuleOutcome, str, EnforcementAction], None]


def evaluate_validating_policy(policy: CelPolicy, state: RequestState, respond: Responder) -> None:
    """Kyverno's ValidatingPolicy engine: one response per matching variant."""
    operation = state.request.operation
    environment = _cel_env.kyverno_environment()
    for variant in policy.variants:
        if not variant.match.matches(state.target, operation):
            continue
        try:
            bound = _activation(state, environment)
        except EvalError as exc:
            respond("", RuleOutcome.ERROR, str(exc), policy.enforcement)
            continue
        with _cel_libs.bound_data(state.inputs.data):
            outcome, message = _vpol_variant(policy, variant, bound, state.budget)
        if outcome is not None:
            respond("", outcome, message, policy.enforcement)


def _vpol_variant(  # noqa: PLR0911  # one exit per Kyverno stage
    policy: CelPolicy, variant: Variant, bound: Activation, budget: Budget
) -> tuple[RuleOutcome | None, str]:
    for name, program in variant.body.conditions:
        try:
            held = _cel_env.evaluate(program, bound, budget)
        except EvalError as exc:
            if policy.failure_policy == "Ignore":
                return RuleOutcome.SKIP, f"match condition {name!r} failed (failurePolicy Ignore): {exc}"
            return RuleOutcome.ERROR, f"failed to evaluate match condition {name!r}: {exc}"
        if held is not True:
            return RuleOutcome.SKIP, f"match condition {name!r} not met"
    outcome, message = RuleOutcome.PASS, "success"
    for index, validation in enumerate(variant.body.validations):
        try:
            held = _cel_env.evaluate(validation.program, bound, budget)
        except EvalError as exc:
            return RuleOutcome.ERROR, str(exc)
        if held is True:
            continue
        if held is not False:
            return RuleOutcome.ERROR, f"validation expression at index {index} did not return a bool"
        outcome, message = RuleOutcome.FAIL, _vpol_message(validation, index, bound, budget)
        break
    for key, program in variant.body.annotations:
        try:
            value = _cel_env.evaluate(program, bound, budget)
        except EvalError as exc:
            return RuleOutcome.ERROR, f"failed to evaluate audit annotation {key!r}: {exc}"
        if value is not None and not isinstance(value, str):
            return RuleOutcome.ERROR, f"audit annotation {key!r} must evaluate to a string or null"
    return outcome, message


# --- ValidatingAdmissionPolicy -----------------------------------------------------------------


def compile_admission_policy(document: Document) -> tuple[str, CelPolicy]:
    """Compile a ValidatingAdmissionPolicy (bindings attach later, see :func:`bind`).

    Raises:
        PolicyLoadError: a field has the wrong shape or an expression does not compile.
    """
    data = document.data
    _schema.check(document, data, VAP_SHAPE, ())
    name = _name(document)
    spec = data.get("spec") or {}
    failure_policy = _failure_policy(document, spec)
    _check_operations(document, spec.get("matchConstraints"), ("spec", "matchConstraints"))
    compiler = _Compiler(document, _cel_env.admission_environment(), name)
    compiler.declare_variables(spec.get("variables"), ("spec", "variables"))
    body = compiler.body(
        spec.get("matchConditions"),
        ("spec", "matchConditions"),
        spec.get("validations"),
        ("spec", "validations"),
        spec.get("auditAnnotations"),
        ("spec", "auditAnnotations"),
    )
    body = CelBody(body.conditions, body.validations, body.annotations, spec.get("paramKind"), None)
    match = MatchConstraints.parse(spec.get("matchConstraints"))
    return name, CelPolicy(VAP_KIND, (Variant(match, body),), ("Deny",), failure_policy, match.simple)


def compile_binding(document: Document) -> tuple[str, Binding]:
    """A binding and the name of the policy it binds.

    Raises:
        PolicyLoadError: a field has the wrong shape.
    """
    data = document.data
    _schema.check(document, data, BINDING_SHAPE, ())
    name = _name(document)
    spec = data.get("spec") or {}
    policy_name = spec.get("policyName")
    if not isinstance(policy_name, str) or not policy_name:
        raise document.error(("spec", "policyName"), "missing policyName")
    actions = _actions(document, spec.get("validationActions"), ("spec", "validationActions"))
    match = MatchConstraints.parse(spec["matchResources"]) if spec.get("matchResources") else None
    return policy_name, Binding(name, match, actions, spec.get("paramRef"))


def bind(policy: CelPolicy, bindings: Sequence[Binding]) -> CelPolicy:
    """The policy with its bindings (its actions: those of any binding)."""
    actions = tuple(dict.fromkeys(a for b in bindings for a in b.actions)) or policy.actions
    return CelPolicy(
        policy.kind,
        policy.variants,
        actions,
        policy.failure_policy,
        policy.simple_match,
        tuple(bindings),
    )


def evaluate_admission_policy(policy: CelPolicy, state: RequestState, respond: Responder) -> None:
    """API-server semantics: one response per binding (or one for an unbound policy, as the CLI does)."""
    variant = policy.variants[0]
    operation = state.request.operation
    if not variant.match.matches(state.target, operation) and variant.match.rules:
        return
    bindings = policy.bindings or (Binding("", None, ("Deny",), None),)
    environment = _cel_env.admission_environment()
    for binding in bindings:
        if binding.match is not None and not binding.match.matches(state.target, operation):
            continue
        body = variant.body
        if binding.param_ref is not None:
            body = CelBody(
                body.conditions, body.validations, body.annotations, body.param_kind, binding.param_ref
            )
        action = EnforcementAction.ENFORCE if "Deny" in binding.actions else EnforcementAction.AUDIT
        outcome, message = _vap_binding(policy, body, state, environment)
        if outcome is not None:
            respond(binding.name, outcome, message, action)


def _vap_binding(  # noqa: PLR0911, PLR0912  # one exit per API-server stage
    policy: CelPolicy, body: CelBody, state: RequestState, environment: Environment
) -> tuple[RuleOutcome | None, str]:
    params = _params(state, body)
    if params is not None and not params:
        if str((body.param_ref or {}).get("parameterNotFoundAction", "Deny")) == "Allow":
            return RuleOutcome.PASS, "no params found; parameterNotFoundAction is Allow"
        return RuleOutcome.FAIL, "failed to configure binding: no params found"
    failures: list[str] = []
    for param in params if params is not None else [None]:
        try:
            bound = _activation(state, environment, param)
        except EvalError as exc:
            return RuleOutcome.ERROR, str(exc)
        for name, program in body.conditions:
            try:
                held = _cel_env.evaluate(program, bound, state.budget)
            except EvalError as exc:
                if policy.failure_policy == "Ignore":
                    return None, ""
                return RuleOutcome.ERROR, f"failed to evaluate match condition {name!r}: {exc}"
            if held is not True:
                return RuleOutcome.SKIP, f"match condition {name!r} not met"
        for validation in body.validations:
            try:
                held = _cel_env.evaluate(validation.program, bound, state.budget)
            except EvalError as exc:
                if policy.failure_policy == "Ignore":
                    continue
                failures.append(f"expression '{validation.program.source.strip()}' resulted in error: {exc}")
                continue
            if held is False:
                failures.append(_admission_message(validation, bound, state.budget))
            elif held is not True:
                failures.append(
                    f"validation expression '{validation.program.source.strip()}' must return a bool"
                )
    if failures:
        return RuleOutcome.FAIL, "; ".join(failures)
    return RuleOutcome.PASS, "success"
