"""Exemptions from rules: Kyverno PolicyExceptions and gate's time-bounded waivers.

Both reach the engine as data. A PolicyException is a document of the policy
sources (``kyverno.io/v2`` or ``v2beta1``) and part of the bundle; a
:class:`Waiver` is a record gate keeps in its store, handed to the engine by the
caller already filtered to those in force (the engine has no clock).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gate.errors import EvidenceError
from policies import _loader, _pss, _schema, _wildcard
from policies._match import Selection, Target
from policies._yaml import Document

API_VERSIONS = ("kyverno.io/v2", "kyverno.io/v2beta1")
KIND = "PolicyException"
is_exception = _loader.is_exception
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_SPEC_FIELDS = frozenset({"background", "match", "conditions", "exceptions", "podSecurity"})


@dataclass(frozen=True, slots=True)
class PolicyException:
    """One compiled PolicyException.

    Attributes:
        name: ``metadata.name``.
        namespace: ``metadata.namespace`` (empty when the document has none).
        entries: ``(policyName, ruleNames)`` pairs; both may hold ``*``/``?`` wildcards. A
            namespaced Policy is named ``namespace/name``, a ClusterPolicy by its name.
        match: the resources it applies to (``any``/``all`` filters, like a rule's match).
        conditions: the optional ``any``/``all`` conditions, evaluated on the request context.
        pod_security: ``podSecurity`` control exemptions (for podSecurity rules only).
        source: the file it was loaded from.
        raw: the document.
    """

    name: str
    namespace: str
    entries: tuple[tuple[str, tuple[str, ...]], ...]
    match: Selection
    conditions: Any = None
    pod_security: tuple[Mapping[str, Any], ...] = ()
    source: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def key(self) -> str:
        """``namespace/name``, or ``name`` without a namespace (Kyverno's object key)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def covers(self, policy: str, rule: str) -> bool:
        """Whether the exception names this policy and rule (wildcards allowed in both)."""
        return any(
            _wildcard.match(name, policy) and any(_wildcard.match(r, rule) for r in rules)
            for name, rules in self.entries
        )

    def applies(self, target: Target, conditions_hold: Callable[[Any], bool]) -> bool:
        """Whether the resource is selected by ``match`` and the conditions hold."""
        if not (self.match.any or self.match.all) or not self.match.matches(target):
            return False
        return self.conditions is None or conditions_hold(self.conditions)


@dataclass(frozen=True, slots=True)
class Waiver:
    """A time-bounded exemption kept by gate, as the engine applies it.

    Attributes:
        id: the waiver's id (listed in the evidence of every decision it changes).
        policy: the policy key it waives (wildcards allowed).
        rule: the rule (wildcards allowed); empty for every rule of the policy.
        namespace: a namespace pattern the resource must be in; empty for any.
        image: an image pattern one of the resource's images must match; empty for any.
        digest: an artifact digest one of the resource's images (or the source tree) must have.
        owner: who answers for it.
        expires: when it ends (ISO 8601, for the message; the caller drops expired waivers).
        reason: why it was granted.
    """

    id: str
    policy: str
    rule: str = ""
    namespace: str = ""
    image: str = ""
    digest: str = ""
    owner: str = ""
    expires: str = ""
    reason: str = ""

    def covers(self, policy: str, rule: str) -> bool:
        """Whether the waiver is for this policy and rule."""
        return _wildcard.match(self.policy, policy) and (not self.rule or _wildcard.match(self.rule, rule))

    def applies(self, target: Target, images: Sequence[str], digests: Iterable[str]) -> bool:
        """Whether the resource is the waiver's subject (every selector given must hold)."""
        if self.namespace and not _wildcard.match(self.namespace, target.namespace):
            return False
        if self.image and not any(_wildcard.match(self.image, i) for i in images):
            return False
        return not self.digest or self.digest in digests

    @property
    def message(self) -> str:
        """The skip message: the waiver, who owns it, until when, and why."""
        text = f"rule is skipped due to waiver {self.id} (owner {self.owner}, expires {self.expires})"
        return f"{text}: {self.reason}" if self.reason else text


def resource_digests(
    resource: Mapping[str, Any], images: Sequence[str], known: Mapping[str, str]
) -> set[str]:
    """Digests the resource refers to: pinned images, images the caller resolved, a source tree's artifact."""
    digests = {i.rsplit("@", 1)[1] for i in images if "@" in i}
    digests.update(known[i] for i in images if i in known)
    if resource.get("kind") == "SourceTree":
        artifact = (resource.get("spec") or {}).get("artifact")
        if isinstance(artifact, str) and artifact:
            digests.add(artifact)
    return digests


def compile_exception(document: Document) -> PolicyException:  # noqa: PLR0912, PLR0915  # one check per field
    """Check and compile a PolicyException document.

    Raises:
        PolicyLoadError: a malformed document (the file, line and field path are named).
    """
    data = document.data
    version = str(data.get("apiVersion"))
    if version not in API_VERSIONS:
        raise document.error(("apiVersion",), f"expected one of {', '.join(API_VERSIONS)}, got {version!r}")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise document.error(("metadata",), "expected a mapping")
    name = metadata.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise document.error(("metadata", "name"), f"expected a DNS-1123 name, got {name!r}")
    namespace = metadata.get("namespace") or ""
    if not isinstance(namespace, str):
        raise document.error(("metadata", "namespace"), f"expected a string, got {namespace!r}")
    spec = data.get("spec")
    if not isinstance(spec, dict):
        raise document.error(("spec",), "missing spec")
    unknown = sorted(set(spec) - _SPEC_FIELDS)
    if unknown:
        raise document.error(
            ("spec", unknown[0]), f"unknown field (expected {', '.join(sorted(_SPEC_FIELDS))})"
        )
    raw_entries = spec.get("exceptions")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise document.error(("spec", "exceptions"), "expected a non-empty list of {policyName, ruleNames}")
    entries: list[tuple[str, tuple[str, ...]]] = []
    for index, entry in enumerate(raw_entries):
        here = ("spec", "exceptions", index)
        if not isinstance(entry, dict):
            raise document.error(here, "expected a mapping with policyName and ruleNames")
        policy = entry.get("policyName")
        if not isinstance(policy, str) or not policy:
            raise document.error((*here, "policyName"), "an exception requires a policy name")
        rules = entry.get("ruleNames")
        if not isinstance(rules, list) or not all(isinstance(r, str) and r for r in rules):
            raise document.error((*here, "ruleNames"), f"expected a list of rule names, got {rules!r}")
        entries.append((policy, tuple(rules)))
    match = spec.get("match")
    if not isinstance(match, dict) or not (match.get("any") or match.get("all")):
        raise document.error(
            ("spec", "match"), "expected a mapping with an any or all list of resource filters"
        )
    extra = sorted(set(match) - {"any", "all"})
    if extra:
        raise document.error(("spec", "match", extra[0]), "unknown field (expected any or all)")
    for block in ("any", "all"):
        filters = match.get(block) or []
        if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
            raise document.error(("spec", "match", block), "expected a list of resource filters")
    # The fields inside each filter and condition have the types a policy's have.
    _schema.check(document, match, _schema.EXCEPTION_MATCH, ("spec", "match"))
    selection = Selection.parse(match)
    conditions = spec.get("conditions")
    if conditions is not None:
        if not isinstance(conditions, dict):
            raise document.error(("spec", "conditions"), "expected a mapping with any or all")
        _schema.check(document, conditions, _schema.ANY_ALL_CONDITIONS, ("spec", "conditions"))
        _loader._check_conditions(document, conditions, ("spec", "conditions"))
        _loader._check_expressions(document, conditions, ("spec", "conditions"))
    pod_security = spec.get("podSecurity") or []
    if not isinstance(pod_security, list):
        raise document.error(("spec", "podSecurity"), "expected a list of control exemptions")
    for index, control in enumerate(pod_security):
        try:
            _pss._parse_exclusion(control, index)
        except EvidenceError as error:
            raise document.error(("spec", "podSecurity", index), error.message) from None
    return PolicyException(
        name=name,
        namespace=namespace,
        entries=tuple(entries),
        match=selection,
        conditions=conditions,
        pod_security=tuple(pod_security),
        source=document.source,
        raw=data,
    )


def compile_exceptions(documents: Iterable[Document]) -> list[PolicyException]:
    """Compile PolicyException documents; two with the same key are a load error."""
    compiled: list[PolicyException] = []
    seen: set[str] = set()
    for document in documents:
        exception = compile_exception(document)
        if exception.key in seen:
            raise document.error(("metadata", "name"), f"duplicate PolicyException {exception.key!r}")
        seen.add(exception.key)
        compiled.append(exception)
    return compiled


def normalised(exceptions: Iterable[PolicyException]) -> list[dict[str, Any]]:
    """The exceptions as they enter the bundle digest (key order, no status)."""
    ordered = sorted(exceptions, key=lambda e: (e.namespace, e.name))
    return [
        {
            "apiVersion": str(e.raw.get("apiVersion", "")),
            "kind": KIND,
            "metadata": {"name": e.name, "namespace": e.namespace},
            "spec": e.raw.get("spec"),
        }
        for e in ordered
    ]
