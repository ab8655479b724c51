"""Rule evaluation: match, context, preconditions and the validate kinds (pattern, deny, foreach, PSS)."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gate._slots import slot_constructor
from gate.errors import EvidenceError
from gate.model import EnforcementAction, RuleOutcome
from policies import (
    _budget,
    _cel_policy,
    _exceptions,
    _images,
    _jmes,
    _operators,
    _pattern,
    _verify_images,
    _wildcard,
)
from policies._errors import EvaluationError
from policies._match import Target, UserInfo
from policies._model import AdmissionRequest, Policy, ResourceRef, Rule, RuleResponse

_NO_VALUES: Mapping[str, Any] = {}
_PSS_MISSING = "podSecurity checks are not available (policies._pss has not landed)"


@dataclass(frozen=True, slots=True)
class ApiCall:
    """A context ``apiCall`` entry with its variables substituted.

    Attributes:
        method: ``GET`` or ``POST``.
        url: ``service.url`` when set, else ``urlPath`` (a Kubernetes API path).
        data: the ``data`` entries as a mapping (the JSON body Kyverno would POST).
    """

    method: str
    url: str
    data: Mapping[str, Any]


class _Unanswered:
    def __repr__(self) -> str:
        return "UNANSWERED"


UNANSWERED: Any = _Unanswered()
"""What an :data:`ApiCallResolver` returns for a call it does not serve."""

ApiCallResolver = Callable[[ApiCall], Any]
"""Answers ``apiCall`` context entries from data the caller already holds (never a network call
inside the engine): returns the JSON response, or :data:`UNANSWERED`; raises
:class:`~policies._errors.EvaluationError` for a call it serves but cannot answer."""


@dataclass(frozen=True)
class ContextValues:
    """Context values supplied from outside (a ``kyverno test`` Values file, or a caller).

    Keys are dotted paths (``request.operation``, ``cm.data.key``).

    Attributes:
        global_values: set for every rule.
        rule_values: ``{(policy, rule): {path: value}}``.
        foreach_values: ``{(policy, rule): {name: [value per element]}}``.
        api_calls: answers ``apiCall`` context entries (gate answers calls to its own evidence
            endpoint this way); without one, such entries stay unset as in ``kyverno test``.
        image_verifier: checks signatures and attestations for ``verifyImages`` rules; without
            one those rules are skipped with a note, as ``kyverno test`` does without a registry.
    """

    global_values: Mapping[str, Any] = field(default_factory=dict)
    rule_values: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    foreach_values: Mapping[tuple[str, str], Mapping[str, Sequence[Any]]] = field(default_factory=dict)
    api_calls: ApiCallResolver | None = None
    image_verifier: _verify_images.ImageVerifier | None = None
    # Offline data for CEL policies (namespace objects, resource.Get/List and image.GetMetadata
    # answers, paramResources); None builds namespaceObject from the request.
    cel: _cel_policy.CelInputs | None = None
    # PolicyExceptions and waivers (policies._exceptions) in force for this evaluation, beyond
    # the bundle's own PolicyExceptions; the caller has already dropped expired or revoked
    # waivers (the engine has no clock).
    exceptions: Sequence[_exceptions.PolicyException | _exceptions.Waiver] = ()
    # Digests of image references the caller knows (a waiver's digest selector matches them).
    image_digests: Mapping[str, str] = field(default_factory=dict)


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in ``data``, copying the dictionaries on the way (they may be shared)."""
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        child = dict(child) if isinstance(child, dict) else {}
        node[part] = child
        node = child
    node[parts[-1]] = value


class _Scope:
    """The JSON context of one rule evaluation.

    The request-wide scope memoises query results (every rule of a bundle tends to ask the
    same ``request.operation || 'BACKGROUND'``); derived scopes hold rule data and do not.
    """

    __slots__ = ("api_calls", "cache", "data", "delete")

    def __init__(
        self,
        data: dict[str, Any],
        delete: bool,
        cache: dict[str, Any] | None = None,
        api_calls: ApiCallResolver | None = None,
    ) -> None:
        self.data = data
        self.delete = delete
        self.cache = cache
        self.api_calls = api_calls

    def child(self) -> _Scope:
        return _Scope(dict(self.data), self.delete, None, self.api_calls)

    def query(self, expression: str) -> Any:
        if self.cache is not None and expression in self.cache:
            return self.cache[expression]
        text = expression
        if self.delete and "request.object" in text:
            text = text.replace("request.object", "request.oldObject")
        result = self.data if text == "@" else _jmes.search(text, self.data)
        if self.cache is not None and len(self.cache) < 1024:
            self.cache[expression] = result
        return result

    def substitute(self, value: Any) -> Any:
        if not _jmes.has_variables(value):
            return value
        result = _jmes.substitute(value, self.query)
        # A list or object naming a variable more than once (["{{ v }}", "{{ v }}"]) holds its value
        # once per mention; a chain of context variables built so doubles at every step. A lone
        # variable's value comes from an evaluation, which bounds it already.
        if not isinstance(value, str) and not _budget.within(result):
            raise _budget.too_large("substituting variables")
        return result


@dataclass
class _Request:
    """Everything shared by the rules evaluated for one request."""

    request: AdmissionRequest
    resource: Mapping[str, Any]
    target: Target
    ref: ResourceRef
    base: dict[str, Any]
    values: ContextValues
    cache: dict[str, Any] = field(default_factory=dict)
    cel: _cel_policy.RequestState | None = None
    # The resource's images and digests, computed when a waiver first needs them.
    subject: tuple[list[str], set[str]] | None = None
    # policies._pss.PodChecks: podSecurity checks shared by the request's rules (made on first use).
    pss: Any = None

    def images_and_digests(self) -> tuple[list[str], set[str]]:
        """The resource's container images and the digests it refers to (for waivers)."""
        if self.subject is None:
            images = _images.container_images(self.resource)
            digests = _exceptions.resource_digests(self.resource, images, self.values.image_digests)
            self.subject = (images, digests)
        return self.subject

    def cel_state(self) -> _cel_policy.RequestState:
        """The request's CEL state, made on first use (inputs converted once per request)."""
        if self.cel is None:
            resolver = self.values.api_calls
            http = _http_through(resolver) if resolver is not None else None
            self.cel = _cel_policy.new_state(self.request, self.target, self.values.cel, http)
        return self.cel


def _http_through(resolve: ApiCallResolver) -> Callable[[str, str, Mapping[str, Any]], Any]:
    """CEL ``http.Get``/``http.Post`` answered by the same resolver as ``apiCall`` context entries."""

    def call(method: str, url: str, body: Mapping[str, Any]) -> Any:
        try:
            answer = resolve(ApiCall(method, url, body))
        except EvaluationError as exc:
            raise ValueError(f"http.{method.title()} {url}: {exc}") from None
        if answer is UNANSWERED:
            raise ValueError(f"http.{method.title()} {url}: no resolver answers this URL")
        return answer

    return call


def _split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


# Every request builds one ResourceRef, every rule evaluated one RuleResponse (see gate._slots);
# fields in the classes' order.
_new_ref = slot_constructor(ResourceRef)
_new_response = slot_constructor(RuleResponse)


def prepare(request: AdmissionRequest, values: ContextValues, *, with_images: bool = True) -> _Request:
    """Compute the match target and the base JSON context of a request.

    ``with_images`` False skips parsing container images when no policy reads ``images``.
    """
    resource = request.resource
    metadata = resource.get("metadata") or {}
    api_version = str(resource.get("apiVersion", ""))
    group, version = _split_api_version(api_version)
    kind = str(resource.get("kind", ""))
    name = str(metadata.get("name") or metadata.get("generateName") or "")
    namespace = str(metadata.get("namespace") or request.namespace or "")
    user = request.user_info
    target = Target(
        group=group,
        version=version,
        kind=kind,
        subresource=request.sub_resource,
        name=name,
        namespace=namespace,
        labels=metadata.get("labels") or {},
        annotations=metadata.get("annotations") or {},
        operation=request.operation,
        namespace_labels=request.namespace_labels,
        user=user,
    )
    req: dict[str, Any] = {
        "operation": request.operation,
        "object": dict(request.object) if request.object else ({} if request.operation == "DELETE" else None),
        "oldObject": dict(request.old_object) if request.old_object else None,
        "userInfo": user.as_json() if user is not None else {"username": "", "groups": None},
        "roles": list(user.roles) if user is not None else None,
        "clusterRoles": list(user.cluster_roles) if user is not None else None,
        "namespace": namespace,
        "name": name,
        "kind": {"group": group, "version": version, "kind": kind},
        "subResource": request.sub_resource,
    }
    base: dict[str, Any] = {"request": req}
    if user is not None and user.username.startswith("system:serviceaccount:"):
        parts = user.username.split(":")
        if len(parts) == 4:
            base["serviceAccountNamespace"] = parts[2]
            base["serviceAccountName"] = parts[3]
    else:
        base["serviceAccountName"] = ""
        base["serviceAccountNamespace"] = ""
    found = _images.images(resource) if with_images else None
    if found is not None:
        base["images"] = found
    for key, value in values.global_values.items():
        set_path(base, key, value)
    ref = _new_ref(api_version, kind, namespace, name)
    return _Request(request, resource, target, ref, base, values)


def _effective_action(policy: Policy, rule: Rule, namespace: str) -> EnforcementAction:
    if not rule.overrides and not policy.overrides:
        return rule.action or policy.action
    for override in (*rule.overrides, *policy.overrides):
        if any(_wildcard.match(n, namespace) for n in override.namespaces):
            return override.action
    return rule.action or policy.action


class _Outcome:
    """An intermediate rule result."""

    __slots__ = ("exceptions", "message", "status", "waivers")

    def __init__(
        self,
        status: RuleOutcome | None,
        message: str = "",
        exceptions: tuple[str, ...] = (),
        waivers: tuple[str, ...] = (),
    ) -> None:
        self.status = status
        self.message = message
        self.exceptions = exceptions
        self.waivers = waivers


def evaluate_policy(policy: Policy, state: _Request) -> list[RuleResponse]:
    """The responses of every matching rule of ``policy``."""
    if policy.namespace and state.target.namespace != policy.namespace:
        return []
    if policy.cel is not None:
        return _evaluate_cel_policy(policy, state)
    responses: list[RuleResponse] = []
    kind = state.target.kind
    for rule in policy.rules:
        quick = rule.match.quick_kinds
        if quick is not None and kind not in quick:
            continue
        outcome = _evaluate_rule(policy, rule, state)
        if outcome is None or outcome.status is None:
            continue
        responses.append(
            _new_response(
                policy.key,
                rule.name,
                outcome.status,
                outcome.message,
                _effective_action(policy, rule, state.target.namespace),
                state.ref,
                policy.failure_policy,
                policy.scored,
                policy.category,
                policy.severity,
                outcome.exceptions,
                outcome.waivers,
            )
        )
        if policy.apply_one and outcome.status in (RuleOutcome.PASS, RuleOutcome.FAIL):
            break
    return responses


def _evaluate_cel_policy(policy: Policy, state: _Request) -> list[RuleResponse]:
    """A ValidatingPolicy or ValidatingAdmissionPolicy: unnamed responses (one per binding for VAPs)."""
    responses: list[RuleResponse] = []

    def respond(rule: str, outcome: RuleOutcome, message: str, action: EnforcementAction) -> None:
        responses.append(
            RuleResponse(
                policy=policy.key,
                rule=rule,
                outcome=outcome,
                message=message,
                action=action,
                resource=state.ref,
                failure_policy=policy.failure_policy,
                scored=policy.scored,
                category=policy.category,
                severity=policy.severity,
            )
        )

    compiled = policy.cel
    if compiled.kind == _cel_policy.VAP_KIND:
        _cel_policy.evaluate_admission_policy(compiled, state.cel_state(), respond)
    else:
        _cel_policy.evaluate_validating_policy(compiled, state.cel_state(), respond)
    waivers = [w for w in state.values.exceptions if isinstance(w, _exceptions.Waiver)]
    if waivers and responses:
        # Kyverno's kyverno.io PolicyExceptions do not reach CEL policies; gate's waivers do.
        responses = [_waived(response, waivers, state) for response in responses]
    return responses


def _waived(response: RuleResponse, waivers: Sequence[_exceptions.Waiver], state: _Request) -> RuleResponse:
    """``response`` turned into a skip when waivers cover its policy and rule for this resource."""
    found = [
        w
        for w in waivers
        if w.covers(response.policy, response.rule) and w.applies(state.target, *state.images_and_digests())
    ]
    if not found:
        return response
    message = "; ".join(w.message for w in found)
    return dataclasses.replace(
        response, outcome=RuleOutcome.SKIP, message=message, waivers=tuple(w.id for w in found)
    )


def _evaluate_rule(policy: Policy, rule: Rule, state: _Request) -> _Outcome | None:  # noqa: PLR0911, PLR0912  # one exit per Kyverno stage
    if not rule.match.matches(state.target) or rule.exclude.excludes(state.target):
        return None
    delete = state.request.operation == "DELETE"
    validate = rule.validate
    if delete and ("pattern" in validate or "anyPattern" in validate or "podSecurity" in validate):
        return None
    pss_exceptions: tuple[_exceptions.PolicyException, ...] = ()
    if state.values.exceptions:
        exempted, pss_exceptions = _exempted(policy, rule, state)
        if exempted is not None:
            return exempted
    if rule.unsupported:
        return _Outcome(RuleOutcome.SKIP, rule.unsupported)
    scope = _Scope(state.base, delete, state.cache, state.values.api_calls)
    rule_values = state.values.rule_values
    supplied = (rule_values.get((policy.key, rule.name)) if rule_values else None) or _NO_VALUES
    if supplied or rule.context:
        scope = scope.child()
        for path, value in supplied.items():
            set_path(scope.data, path, value)
    try:
        _load_context(scope, rule.context, supplied, state.values.global_values)
    except EvaluationError as exc:
        return _Outcome(RuleOutcome.ERROR, f"failed to load context: {exc}")
    if rule.preconditions is not None:
        try:
            held, message = _conditions(scope, rule.preconditions)
        except EvaluationError as exc:
            return _Outcome(RuleOutcome.ERROR, f"failed to evaluate preconditions: {exc}")
        if not held:
            return _Outcome(RuleOutcome.SKIP, f"preconditions not met; {message}".rstrip("; "))
    if rule.verify_images:
        return _verify(rule, scope, state)
    result = _validate(policy, rule, scope, state, state.resource)
    if pss_exceptions and result is not None and result.status is RuleOutcome.FAIL:
        result = _pss_exempted(rule, state.resource, pss_exceptions) or result
    if (
        result is not None
        and result.status is RuleOutcome.FAIL
        and state.request.operation == "UPDATE"
        and rule.allow_existing_violations
        and state.request.old_object
        and _effective_action(policy, rule, state.target.namespace) is EnforcementAction.ENFORCE
    ):
        # Kyverno re-validates the old object as if it were being created.
        old_scope = scope.child()
        set_path(old_scope.data, "request.object", dict(state.request.old_object))
        set_path(old_scope.data, "request.oldObject", None)
        set_path(old_scope.data, "request.operation", "CREATE")
        previous = _validate(policy, rule, old_scope, state, state.request.old_object)
        if previous is not None and previous.status is RuleOutcome.FAIL:
            return _Outcome(RuleOutcome.SKIP, "skipped: pre-existing violations are allowed")
    return result


def _exempted(
    policy: Policy, rule: Rule, state: _Request
) -> tuple[_Outcome | None, tuple[_exceptions.PolicyException, ...]]:
    """A skip when a PolicyException or waiver exempts the resource from the rule.

    For podSecurity rules, exceptions that only exempt some controls are returned
    instead: they apply to the check's violations (the rule is skipped when none is left).
    PolicyExceptions come first, as in Kyverno; a waiver is used when none applies.
    """
    scope: _Scope | None = None

    def hold(conditions: Any) -> bool:
        nonlocal scope
        if scope is None:
            scope = _Scope(
                state.base, state.request.operation == "DELETE", state.cache, state.values.api_calls
            )
        try:
            return _conditions(scope, conditions)[0]
        except EvaluationError:
            return False  # Kyverno drops an exception whose conditions cannot be evaluated

    matched: list[_exceptions.PolicyException] = []
    waivers: list[_exceptions.Waiver] = []
    for item in state.values.exceptions:
        if not item.covers(policy.key, rule.name):
            continue
        if isinstance(item, _exceptions.PolicyException):
            if item.applies(state.target, hold):
                matched.append(item)
        elif item.applies(state.target, *state.images_and_digests()):
            waivers.append(item)
    if rule.validate_kind == "podSecurity":
        whole = next((e for e in matched if not e.pod_security), None)
        if whole is not None:
            return _Outcome(
                RuleOutcome.SKIP, f"rule is skipped due to policy exception {whole.key}", (whole.key,)
            ), ()
    elif matched:
        keys = tuple(e.key for e in matched)
        # Kyverno's message, without a space before the first key.
        return _Outcome(
            RuleOutcome.SKIP, "rule is skipped due to policy exceptions" + ", ".join(keys), keys
        ), ()
    if waivers:
        message = "; ".join(w.message for w in waivers)
        return _Outcome(RuleOutcome.SKIP, message, waivers=tuple(w.id for w in waivers)), ()
    return None, tuple(matched)


def _pss_exempted(
    rule: Rule, resource: Mapping[str, Any], exceptions: Sequence[_exceptions.PolicyException]
) -> _Outcome | None:
    """A skip when the exceptions' podSecurity controls exempt every violation of a failed check."""
    block = rule.validate["podSecurity"]
    pod = _images.pod_object(resource)
    if pod is None:
        return None
    pss: Any = importlib.import_module("policies._pss")
    excludes = [*(block.get("exclude") or []), *(c for e in exceptions for c in e.pod_security)]
    level = str(block.get("level", "baseline"))
    version = str(block.get("version", "latest"))
    try:
        violations = pss.check_pod(pod, level=level, version=version)
        left = pss.apply_exclusions(violations, excludes, pod)
    except (EvidenceError, ValueError, TypeError, KeyError):
        return None
    if left:
        checks = "; ".join(f"{v.control}: {v.message}" for v in left)
        where = f'PodSecurity "{level}:{version}"'
        return _Outcome(
            RuleOutcome.FAIL, f"Validation rule '{rule.name}' failed. It violates {where}: ({checks})"
        )
    keys = tuple(e.key for e in exceptions)
    return _Outcome(RuleOutcome.SKIP, "rule is skipped due to policy exceptions " + ", ".join(keys), keys)


_NO_VERIFIER = "verifyImages rules need an image verifier (registry access); none was given"


def _verify(rule: Rule, scope: _Scope, state: _Request) -> _Outcome | None:  # noqa: PLR0911  # one exit per Kyverno result
    """A ``verifyImages`` rule: every selected image of the resource must pass every entry."""
    if state.request.operation == "DELETE":
        return None
    verifier = state.values.image_verifier
    if verifier is None:
        return _Outcome(RuleOutcome.SKIP, _NO_VERIFIER)

    def conditions(variables: Mapping[str, Any], blocks: Sequence[Mapping[str, Any]]) -> tuple[bool, str]:
        inner = scope.child()
        inner.data.update(variables)
        for block in blocks:
            held, message = _conditions(inner, block)
            if not held:
                return False, message
        return True, ""

    checked = 0
    patches: list[str] = []
    for image, parsed in _verify_images.resource_images(state.resource):
        for entry in rule.verify_images:
            if not entry.applies_to(image, parsed["reference"]):
                continue
            checked += 1
            try:
                result = _verify_images.verify_image(entry, image, verifier, conditions)
            except EvaluationError as exc:
                # The verifier could not decide (registry unreachable): failurePolicy applies.
                return _Outcome(RuleOutcome.ERROR, f"failed to verify image {image}: {exc}")
            if result.error:
                return _Outcome(RuleOutcome.ERROR, result.message)
            if not result.passed:
                return _Outcome(RuleOutcome.FAIL, result.message)
            if result.patched:
                patches.append(result.patched)
    if not checked:
        return None
    message = "verified image signatures and attestations"
    if patches:
        message += "; mutateDigest would set " + ", ".join(patches)
    return _Outcome(RuleOutcome.PASS, message)


def _load_context(
    scope: _Scope,
    entries: Sequence[Mapping[str, Any]],
    supplied: Mapping[str, Any],
    global_values: Mapping[str, Any],
) -> None:
    if not entries:
        return
    given = {k.split(".", 1)[0] for k in (*supplied, *global_values)}
    for entry in entries:
        name = str(entry.get("name", ""))
        if name in given:
            continue
        variable = entry.get("variable")
        if isinstance(variable, Mapping):
            scope.data[name] = _variable(scope, name, variable)
            continue
        call = entry.get("apiCall")
        if isinstance(call, Mapping) and scope.api_calls is not None:
            answer = _api_call(scope, call, scope.api_calls)
            if answer is not UNANSWERED:
                scope.data[name] = answer
        # configMap/imageRegistry/globalReference (and apiCalls nobody answers) need a cluster or
        # registry client: the engine is pure, so they come from supplied values or stay unset.


def _api_call(scope: _Scope, call: Mapping[str, Any], resolve: ApiCallResolver) -> Any:
    """Kyverno's apiCall: substitute, call, ``jmesPath`` on the response, ``default`` on null or error."""
    service = call.get("service") or {}
    url = str(scope.substitute(service.get("url") or call.get("urlPath") or ""))
    data = {str(item.get("key", "")): scope.substitute(item.get("value")) for item in call.get("data") or ()}
    has_default = "default" in call
    try:
        response = resolve(ApiCall(str(call.get("method") or "GET").upper(), url, data))
        if response is UNANSWERED:
            return UNANSWERED
        path = call.get("jmesPath")
        output = _jmes.search(str(scope.substitute(path)), response) if path else response
    except EvaluationError:
        if not has_default:
            raise
        output = None
    if output is None and has_default:
        output = scope.substitute(call["default"])
    return output


def _variable(scope: _Scope, name: str, variable: Mapping[str, Any]) -> Any:
    has_default = "default" in variable
    output: Any = None
    try:
        value = scope.substitute(variable.get("value")) if "value" in variable else None
        path = variable.get("jmesPath")
        if path:
            path = scope.substitute(path)
            output = _jmes.search(str(path), value) if "value" in variable else scope.query(str(path))
        else:
            output = value
    except EvaluationError:
        if not has_default:
            raise
        output = None
    if output is None and has_default:
        output = scope.substitute(variable["default"])
    return output


def _conditions(scope: _Scope, raw: Any) -> tuple[bool, str]:
    """Evaluate an any/all (or legacy list = all) block; returns (held, first failing message)."""
    if isinstance(raw, list):
        for condition in raw:
            if not _condition(scope, condition):
                return False, str(condition.get("message", ""))
        return True, ""
    if type(raw) is not dict and not isinstance(raw, Mapping):  # the ABC check is the slow one
        return True, ""
    any_block = raw.get("any") or []
    all_block = raw.get("all") or []
    message = ""
    if any_block:
        held = False
        for condition in any_block:
            if _condition(scope, condition):
                held = True
                break
            message = message or str(condition.get("message", ""))
        if not held:
            return False, message
    for condition in all_block:
        if not _condition(scope, condition):
            return False, str(condition.get("message", ""))
    return True, ""


def _condition(scope: _Scope, condition: Mapping[str, Any]) -> bool:
    key = scope.substitute(condition.get("key"))
    value = scope.substitute(condition.get("value"))
    return _operators.evaluate(str(condition.get("operator", "")), key, value)


def _message(scope: _Scope, rule: Rule) -> str:
    raw = rule.validate.get("message", "")
    try:
        text = scope.substitute(raw)
    except EvaluationError:
        return str(raw)
    return text if isinstance(text, str) else _jmes.to_text(text)


def _validate(  # noqa: PLR0911  # one exit per validate kind
    policy: Policy, rule: Rule, scope: _Scope, state: _Request, resource: Mapping[str, Any]
) -> _Outcome | None:
    validate = rule.validate
    kind = rule.validate_kind
    if kind == "pattern":
        return _patterns(rule, scope, validate, resource)
    if kind == "deny":
        return _deny(rule, scope, validate["deny"])
    if kind == "foreach":
        values = state.values.foreach_values.get((policy.key, rule.name), {})
        return _foreach_rule(rule, scope, validate["foreach"], resource, values)
    if kind == "podSecurity":
        return _pod_security(rule, validate["podSecurity"], resource, state)
    if kind == "cel":
        if resource is not state.resource:
            return None  # Kyverno's re-validation of the old object applies to pattern rules only
        status, message = _cel_policy.evaluate_rule(rule.name, rule.cel, state.cel_state())
        return _Outcome(status, message)
    return _Outcome(RuleOutcome.ERROR, "rule has nothing to validate")


def _apply_pattern(scope: _Scope, raw: Any, resource: Any) -> _pattern.PatternResult:
    """Check ``resource`` against a policy pattern, substituting its variables first if it has any.

    A pattern without variables is the same for every request: its compiled check is reused.

    Raises:
        EvaluationError: a variable cannot be substituted.
    """
    if _jmes.has_variables(raw):
        return _pattern.validate(resource, scope.substitute(raw))
    try:
        check = _pattern.compiled(raw)
    except RecursionError:
        return _pattern.PatternResult("error", "", "pattern or resource nested too deeply")
    return _pattern.run(check, resource)


def _patterns(  # noqa: PLR0911, PLR0912  # one exit per Kyverno result kind
    rule: Rule, scope: _Scope, block: Mapping[str, Any], resource: Any
) -> _Outcome:
    if "pattern" in block:
        try:
            result = _apply_pattern(scope, block["pattern"], resource)
        except EvaluationError as exc:
            return _Outcome(RuleOutcome.ERROR, f"variable substitution failed for rule {rule.name}: {exc}")
        if result.status == "pass":
            return _Outcome(RuleOutcome.PASS, f"validation rule '{rule.name}' passed.")
        if result.status == "skip":
            return _Outcome(RuleOutcome.SKIP, result.message)
        message = _message(scope, rule)
        if result.status == "error":
            prefix = f"validation error: {message}. " if message else "validation error: "
            return _Outcome(RuleOutcome.ERROR, f"{prefix}rule {rule.name} execution error: {result.message}")
        if not message:
            return _Outcome(
                RuleOutcome.FAIL, f"validation error: rule {rule.name} failed at path {result.path}"
            )
        if not message.endswith("."):
            message += "."
        return _Outcome(
            RuleOutcome.FAIL, f"validation error: {message} rule {rule.name} failed at path {result.path}"
        )
    failures: list[str] = []
    skipped = 0
    for index, raw in enumerate(block["anyPattern"]):
        try:
            result = _apply_pattern(scope, raw, resource)
        except EvaluationError as exc:
            return _Outcome(RuleOutcome.ERROR, f"variable substitution failed for rule {rule.name}: {exc}")
        if result.status == "pass":
            return _Outcome(RuleOutcome.PASS, f"validation rule '{rule.name}' anyPattern[{index}] passed.")
        if result.status == "skip":
            skipped += 1
        elif result.status == "fail":
            failures.append(f"rule {rule.name}[{index}] failed at path {result.path}")
        else:
            failures.append(f"rule {rule.name}[{index}] execution error: {result.message}")
    if not failures and skipped:
        return _Outcome(RuleOutcome.SKIP, f"all anyPatterns of rule {rule.name} were skipped")
    message = _message(scope, rule)
    return _Outcome(RuleOutcome.FAIL, f"validation error: {message} {' '.join(failures)}".replace("  ", " "))


def _held_messages(scope: _Scope, raw: Any) -> tuple[bool, list[str]]:
    """Whether deny conditions hold, and the messages of the conditions that made them hold.

    Kyverno appends those messages to the deny message (``<message>; <condition message>``).
    """
    if isinstance(raw, list):
        raw = {"all": raw}
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return True, []
    messages: list[str] = []
    any_block = raw.get("any") or []
    if any_block:
        for condition in any_block:
            if _condition(scope, condition):
                messages.append(str(condition.get("message", "")))
                break
        else:
            return False, []
    for condition in raw.get("all") or []:
        if not _condition(scope, condition):
            return False, []
        messages.append(str(condition.get("message", "")))
    return True, [scope.substitute(m) if "{{" in m else m for m in messages if m]


def _deny(rule: Rule, scope: _Scope, deny: Mapping[str, Any] | None) -> _Outcome:
    conditions = (deny or {}).get("conditions")
    try:
        denied, reasons = (True, []) if conditions is None else _held_messages(scope, conditions)
    except EvaluationError as exc:
        return _Outcome(RuleOutcome.ERROR, f"failed to evaluate deny conditions: {exc}")
    if denied:
        message = _message(scope, rule) or f"validation error: rule {rule.name} failed"
        if reasons:
            message = "; ".join([message, *(str(r).strip() for r in reasons)])
        return _Outcome(RuleOutcome.FAIL, message)
    return _Outcome(RuleOutcome.PASS, f"validation rule '{rule.name}' passed.")


def _foreach_rule(
    rule: Rule,
    scope: _Scope,
    entries: Sequence[Mapping[str, Any]],
    resource: Any,
    foreach_values: Mapping[str, Sequence[Any]],
) -> _Outcome | None:
    outcome, applied = _foreach(rule, scope, entries, resource, 0, foreach_values)
    if outcome is not None:
        return outcome
    if applied == 0:
        return None
    return _Outcome(RuleOutcome.PASS, f"validation rule '{rule.name}' passed.")


def _foreach(  # noqa: PLR0912  # mirrors Kyverno's per-element decision table
    rule: Rule,
    scope: _Scope,
    entries: Sequence[Mapping[str, Any]],
    resource: Any,
    depth: int,
    foreach_values: Mapping[str, Sequence[Any]],
) -> tuple[_Outcome | None, int]:
    applied = 0
    for entry in entries:
        list_expression = str(entry.get("list", ""))
        try:
            elements = scope.query(scope.substitute(list_expression))
        except EvaluationError as exc:
            if "Unknown key" in str(exc):
                continue
            return _Outcome(RuleOutcome.ERROR, f"failed to evaluate list {list_expression}: {exc}"), applied
        if elements is None:
            continue
        if isinstance(elements, dict):
            elements = [elements]
        if not isinstance(elements, list):
            return _Outcome(
                RuleOutcome.ERROR, f"failed to evaluate list {list_expression}: not an array"
            ), applied
        for index, element in enumerate(elements):
            if element is None:
                continue
            inner = scope.child()
            data = inner.data
            data["element"] = element
            data["elementIndex"] = index
            data[f"element{depth}"] = element
            data[f"elementIndex{depth}"] = index
            for name, per_element in foreach_values.items():
                if index < len(per_element):
                    data[name] = per_element[index]
            try:
                _load_context(inner, entry.get("context") or (), _NO_VALUES, _NO_VALUES)
                if entry.get("preconditions") is not None:
                    held, _ = _conditions(inner, entry["preconditions"])
                    if not held:
                        continue
            except EvaluationError:
                continue
            scoped = entry.get("elementScope")
            target = element if (scoped if scoped is not None else isinstance(element, dict)) else resource
            if "foreach" in entry:
                nested, count = _foreach(rule, inner, entry["foreach"], target, depth + 1, foreach_values)
                if nested is not None:
                    return nested, applied
                applied += 1 if count else 0
                continue
            if "deny" in entry:
                result = _deny(rule, inner, entry["deny"])
            else:
                result = _patterns(rule, inner, entry, target)
            if result.status is RuleOutcome.SKIP:
                continue
            if result.status is not RuleOutcome.PASS:
                return _Outcome(result.status, f"validation failure: {result.message}"), applied
            applied += 1
    return None, applied


def _pod_security(
    rule: Rule, block: Mapping[str, Any], resource: Mapping[str, Any], state: _Request
) -> _Outcome:
    try:
        pss: Any = importlib.import_module("policies._pss")
    except ModuleNotFoundError:
        return _Outcome(RuleOutcome.ERROR, _PSS_MISSING)
    pod = _images.pod_object(resource)
    if pod is None:
        return _Outcome(RuleOutcome.ERROR, f"rule {rule.name}: the resource has no pod spec")
    level = str(block.get("level", "baseline"))
    version = str(block.get("version", "latest"))
    if state.pss is None:
        state.pss = pss.PodChecks()
    try:
        violations = state.pss.check(pod, level=level, version=version)
        violations = pss.apply_exclusions(violations, block.get("exclude") or [], pod)
    except EvidenceError as bad:
        return _Outcome(RuleOutcome.ERROR, f"rule {rule.name}: podSecurity check failed: {bad.message}")
    except (ValueError, TypeError, KeyError) as exc:
        return _Outcome(RuleOutcome.ERROR, f"rule {rule.name}: podSecurity check failed: {exc}")
    if not violations:
        return _Outcome(RuleOutcome.PASS, f"Validation rule '{rule.name}' passed.")
    checks = "; ".join(f"{v.control}: {v.message}" for v in violations)
    return _Outcome(
        RuleOutcome.FAIL,
        f"Validation rule '{rule.name}' failed. It violates PodSecurity \"{level}:{version}\": ({checks})",
    )


def user_info(
    username: str = "",
    groups: Sequence[str] = (),
    roles: Sequence[str] = (),
    cluster_roles: Sequence[str] = (),
) -> UserInfo:
    """A :class:`UserInfo` from plain sequences."""
    return UserInfo(username, tuple(groups), tuple(roles), tuple(cluster_roles))
