"""The Kyverno-compatible policy engine (pure: policies and resources in, results out).

Typical use::

    bundle = load_policies(["policies/"])
    responses = bundle.evaluate(AdmissionRequest(operation="CREATE", object=pod))
    answer = verdict(responses)  # allowed, Kyverno's denial message, audit warnings

Policies are checked and compiled once at load (schema, operators, JMESPath, validate patterns);
:attr:`PolicyBundle.digest` identifies the bundle in the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.errors import InvalidArgument
from policies import _engine, _loader
from policies._admission import Verdict, verdict
from policies._engine import UNANSWERED, ApiCall, ApiCallResolver, ContextValues
from policies._errors import EvaluationError, PolicyLoadError, ResourceLimitError
from policies._match import UserInfo
from policies._model import AdmissionRequest, Policy, ResourceRef, RuleResponse
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
    "PolicyLoadError",
    "Rekor",
    "ResourceLimitError",
    "ResourceRef",
    "RuleResponse",
    "SignatureOutcome",
    "UserInfo",
    "Verdict",
    "check_depth",
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
    """

    policies: tuple[Policy, ...]
    diagnostics: tuple[str, ...] = ()
    digest: str = field(default="")
    uses_images: bool = True

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

        Raises:
            ResourceLimitError: the object is nested too deeply or is too large.
            InvalidArgument: ``apiVersion``, ``kind`` or ``metadata`` fields have the wrong types.
        """
        for field_name, obj in (("object", request.object), ("oldObject", request.old_object)):
            if obj:
                if not depth_checked:
                    check_depth(obj, field_name, MAX_DEPTH, MAX_NODES)
                _check_envelope(obj, field_name)
        state = _engine.prepare(request, values or ContextValues(), with_images=self.uses_images)
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
    """Compile already-parsed policy documents."""
    compiled, diagnostics = _loader.compile_policies(documents)
    _loader.policies_by_key(compiled)
    uses_images = any("images" in json.dumps(p.raw.get("spec"), default=str) for p in compiled)
    return PolicyBundle(tuple(compiled), tuple(diagnostics), _loader.digest(compiled), uses_images)


def parse_policies(text: str, source: str = "<string>") -> PolicyBundle:
    """Compile the ClusterPolicy/Policy documents of a YAML string (other documents are errors).

    Raises:
        PolicyLoadError: the text is malformed; the message names ``source``, the line and field path.
    """
    documents = list(parse_documents(text, source))
    for document in documents:
        if not _loader.is_policy(document.data):
            raise document.error(
                (),
                "not a Kyverno ClusterPolicy, Policy or ValidatingPolicy, "
                "nor a ValidatingAdmissionPolicy(Binding)",
            )
    return bundle_of(documents)


def load_policies(paths: Iterable[str | Path]) -> PolicyBundle:
    """Load ClusterPolicy/Policy documents from YAML files and directories.

    Raises:
        PolicyLoadError: a file is malformed; the message names the file, line and field path.
    """
    return bundle_of(_loader.load_documents(paths))
