"""The Kyverno-compatible policy engine (pure: policies and resources in, results out).

Typical use::

    bundle = load_policies(["policies/"])
    responses = bundle.evaluate(AdmissionRequest(operation="CREATE", object=pod))
    answer = verdict(responses)  # allowed, Kyverno's denial message, audit warnings

Policies are checked and compiled once at load (schema, operators, JMESPath, validate patterns);
:attr:`PolicyBundle.digest` identifies the bundle in the audit trail.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.errors import InvalidArgument
from policies import _engine, _exceptions, _loader
from policies._admission import Verdict, verdict
from policies._engine import UNANSWERED, ApiCall, ApiCallResolver, ContextValues
from policies._errors import EvaluationError, PolicyLoadError, ResourceLimitError
from policies._exceptions import PolicyException, Waiver
from policies._match import UserInfo
from policies._model import AdmissionRequest, Policy, ResourceRef, RuleResponse
from policies._native import compiled as engine_compiled
from policies._verify_images import (
    AttestationOutcome,
    Attestor,
    CertificateAttestor,
    ImageVerifier,
    KeyAttestor,
    KeylessAttestor,
    Rekor,
    SignatureOutcome,
)
from policies._yaml import MAX_DEPTH, MAX_NODES, Document, check_depth, parse_documents

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "UNANSWERED",
    "AdmissionRequest",
    "ApiCall",
    "ApiCallResolver",
    "AttestationOutcome",
    "Attestor",
    "CertificateAttestor",
    "ContextValues",
    "EvaluationError",
    "ImageVerifier",
    "KeyAttestor",
    "KeylessAttestor",
    "Policy",
    "PolicyBundle",
    "PolicyException",
    "PolicyLoadError",
    "Rekor",
    "ResourceLimitError",
    "ResourceRef",
    "RuleResponse",
    "SignatureOutcome",
    "UserInfo",
    "Verdict",
    "Waiver",
    "check_depth",
    "engine_compiled",
    "load_policies",
    "parse_policies",
    "verdict",
]


@dataclass(frozen=True)
class PolicyBundle:
    """A set of compiled policies.

    Attributes:
        policies: the policies, in load order.
        diagnostics: load-time notes (rule types this engine does not evaluate; they give ``skip``).
        digest: ``sha256:<hex>`` of the normalised policies, stable across file order and formatting.
        uses_images: whether some policy mentions ``images`` (else the variable is not computed).
        exceptions: the PolicyExceptions loaded with the policies (part of the digest).
    """

    policies: tuple[Policy, ...]
    diagnostics: tuple[str, ...] = ()
    digest: str = field(default="")
    uses_images: bool = True
    exceptions: tuple[PolicyException, ...] = ()

    def documents(self) -> list[dict[str, Any]]:
        """The bundle's documents (policies, then PolicyExceptions), as kept for replays."""
        return [*(dict(p.raw) for p in self.policies), *(dict(e.raw) for e in self.exceptions)]

    def policy(self, key: str) -> Policy | None:
        """The policy named ``key`` (``name`` or ``namespace/name``), if loaded."""
        for policy in self.policies:
            if policy.key == key:
                return policy
        return None

    def evaluate(
        self,
        request: AdmissionRequest,
        *,
        values: ContextValues | None = None,
        policies: Sequence[str] | None = None,
        depth_checked: bool = False,
    ) -> list[RuleResponse]:
        """Evaluate every policy (or those named) against one request.

        ``depth_checked`` says the caller has already bounded the objects' depth
        and size (the admission webhook does so on the raw body, more cheaply).
        The bundle's PolicyExceptions apply, and with them the exceptions and waivers
        of ``values``.

        Raises:
            ResourceLimitError: the object is nested too deeply or is too large.
            InvalidArgument: ``apiVersion``, ``kind`` or ``metadata`` fields have the wrong types.
        """
        for field_name, obj in (("object", request.object), ("oldObject", request.old_object)):
            if obj:
                if not depth_checked:
                    check_depth(obj, field_name, MAX_DEPTH, MAX_NODES)
                _check_envelope(obj, field_name)
        values = values or ContextValues()
        if self.exceptions:
            values = dataclasses.replace(values, exceptions=(*self.exceptions, *values.exceptions))
        state = _engine.prepare(request, values, with_images=self.uses_images)
        responses: list[RuleResponse] = []
        for policy in self.policies:
            if policies is not None and policy.key not in policies:
                continue
            responses.extend(_engine.evaluate_policy(policy, state))
        return responses

    def evaluate_resource(
        self, resource: Mapping[str, Any], *, operation: str = "CREATE", values: ContextValues | None = None
    ) -> list[RuleResponse]:
        """Evaluate a plain resource the way ``kyverno apply`` does (no user info)."""
        if operation == "DELETE":
            request = AdmissionRequest(operation=operation, object=None, old_object=resource)
        elif operation == "UPDATE":
            request = AdmissionRequest(operation=operation, object=resource, old_object=resource)
        else:
            request = AdmissionRequest(operation=operation, object=resource)
        return self.evaluate(request, values=values)


def _check_envelope(obj: Mapping[str, Any], field_name: str) -> None:
    """The fields every Kubernetes object has must have their types (else a clear error, never a crash)."""
    # ``type(...) is dict`` first: parsed JSON is plain dicts, and the ABC check costs more.
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise InvalidArgument(field_name, f"expected a mapping, got {type(obj).__name__}")
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key, ""), str):
            raise InvalidArgument(f"{field_name}.{key}", f"expected a string, got {type(obj[key]).__name__}")
    metadata = obj.get("metadata", {})
    if metadata is None:
        return
    if type(metadata) is not dict and not isinstance(metadata, Mapping):
        raise InvalidArgument(f"{field_name}.metadata", f"expected a mapping, got {type(metadata).__name__}")
    for key in ("name", "generateName", "namespace"):
        value = metadata.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidArgument(
                f"{field_name}.metadata.{key}", f"expected a string, got {type(value).__name__}"
            )
    for key in ("labels", "annotations"):
        value = metadata.get(key)
        if value is not None and type(value) is not dict and not isinstance(value, Mapping):
            raise InvalidArgument(
                f"{field_name}.metadata.{key}", f"expected a mapping, got {type(value).__name__}"
            )


def bundle_of(documents: Iterable[Document]) -> PolicyBundle:
    """Compile already-parsed policy and PolicyException documents."""
    policy_documents: list[Document] = []
    exception_documents: list[Document] = []
    for document in documents:
        is_exception = _loader.is_exception(document.data)
        (exception_documents if is_exception else policy_documents).append(document)
    compiled, diagnostics = _loader.compile_policies(policy_documents)
    _loader.policies_by_key(compiled)
    exceptions = _exceptions.compile_exceptions(exception_documents)
    uses_images = any("images" in json.dumps(p.raw.get("spec"), default=str) for p in compiled)
    digest = _loader.digest(compiled, _exceptions.normalised(exceptions))
    return PolicyBundle(tuple(compiled), tuple(diagnostics), digest, uses_images, tuple(exceptions))


def parse_policies(text: str, source: str = "<string>") -> PolicyBundle:
    """Compile the policy and PolicyException documents of a YAML string (other documents are errors).

    Raises:
        PolicyLoadError: the text is malformed; the message names ``source``, the line and field path.
    """
    documents = list(parse_documents(text, source))
    for document in documents:
        if not (_loader.is_policy(document.data) or _loader.is_exception(document.data)):
            raise document.error(
                (),
                "not a Kyverno ClusterPolicy, Policy, PolicyException or ValidatingPolicy, "
                "nor a ValidatingAdmissionPolicy(Binding)",
            )
    return bundle_of(documents)


def load_policies(paths: Iterable[str | Path]) -> PolicyBundle:
    """Load policy and PolicyException documents from YAML files and directories.

    Raises:
        PolicyLoadError: a file is malformed; the message names the file, line and field path.
    """
    return bundle_of(_loader.load_documents(paths))
