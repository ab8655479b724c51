"""Kyverno ``verifyImages`` rules: compiled at load, evaluated through an image verifier port.

The engine stays pure: fetching signatures from a registry and checking them is
the job of an :class:`ImageVerifier` the caller passes in (gate's adapter uses
its registry client, verifier and verification cache). Without one, the rule
is skipped with a note, as ``kyverno test`` does without ``--registry``.

Semantics follow Kyverno: images of the resource (containers, init and
ephemeral containers) that match ``imageReferences`` and no
``skipImageReferences`` are checked; an attestor set passes when ``count``
entries verify (all entries when ``count`` is unset); each attestation's
statements must verify and satisfy its conditions, evaluated with the
predicate's fields as variables; ``verifyDigest`` requires a digest reference,
which ``mutateDigest`` supplies (gate does not mutate: the patch it would
apply is reported in the message).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from policies import _wildcard
from policies._errors import EvaluationError
from policies._images import container_images, parse_image
from policies._yaml import FieldPath as Path

LoadError = Callable[[Path, str], Exception]

SIGNATURE_TYPES = ("Cosign", "SigstoreBundle")


@dataclass(frozen=True, slots=True)
class Rekor:
    """Transparency-log settings of an attestor entry."""

    url: str = ""
    public_key: str = ""
    ignore_tlog: bool = False


@dataclass(frozen=True, slots=True)
class KeyAttestor:
    """``keys``: one or more PEM public keys (any may have signed)."""

    public_keys: str
    signature_algorithm: str = "sha256"
    rekor: Rekor = Rekor()
    ctlog_public_key: str = ""
    ignore_sct: bool = False


@dataclass(frozen=True, slots=True)
class KeylessAttestor:
    """``keyless``: a Fulcio certificate identity (exact values may use ``*`` wildcards)."""

    subject: str = ""
    subject_regexp: str = ""
    issuer: str = ""
    issuer_regexp: str = ""
    roots: str = ""
    additional_extensions: Mapping[str, str] = field(default_factory=dict)
    rekor: Rekor = Rekor()
    ctlog_public_key: str = ""
    ignore_sct: bool = False


@dataclass(frozen=True, slots=True)
class CertificateAttestor:
    """``certificates``: a given signing certificate and chain."""

    cert: str = ""
    cert_chain: str = ""
    rekor: Rekor = Rekor()
    ctlog_public_key: str = ""
    ignore_sct: bool = False


Attestor = KeyAttestor | KeylessAttestor | CertificateAttestor


@dataclass(frozen=True, slots=True)
class AttestorSet:
    """Entries of which ``count`` must verify (all when ``count`` is None)."""

    entries: tuple[Attestor | AttestorSet, ...]
    count: int | None = None

    @property
    def needed(self) -> int:
        """How many entries must verify."""
        return self.count if self.count is not None else len(self.entries)


@dataclass(frozen=True, slots=True)
class AttestationCheck:
    """One ``attestations`` entry: a predicate type, who must have signed it, and conditions."""

    predicate_type: str
    attestors: tuple[AttestorSet, ...]
    conditions: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ImageRule:
    """One compiled ``verifyImages`` entry."""

    image_references: tuple[str, ...]
    skip_image_references: tuple[str, ...]
    signature_type: str
    attestors: tuple[AttestorSet, ...]
    attestations: tuple[AttestationCheck, ...]
    repository: str
    required: bool
    verify_digest: bool
    mutate_digest: bool

    def applies_to(self, image: str, normalised: str) -> bool:
        """Whether ``image`` (as written or normalised) is selected by the references."""

        def hit(patterns: Sequence[str]) -> bool:
            return any(_wildcard.match(p, image) or _wildcard.match(p, normalised) for p in patterns)

        return hit(self.image_references) and not hit(self.skip_image_references)


@dataclass(frozen=True, slots=True)
class SignatureOutcome:
    """What an :class:`ImageVerifier` found for one attestor entry."""

    verified: bool
    digest: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AttestationOutcome:
    """Verified in-toto statements of one predicate type, or why there are none."""

    verified: bool
    digest: str = ""
    statements: tuple[Mapping[str, Any], ...] = ()
    reason: str = ""


class ImageVerifier(Protocol):
    """The port ``verifyImages`` rules are evaluated through."""

    def verify_signature(
        self, image: str, attestor: Attestor, *, signature_type: str, repository: str
    ) -> SignatureOutcome:
        """Whether ``image`` carries a signature that ``attestor`` accepts."""
        ...

    def verify_attestations(
        self, image: str, predicate_type: str, attestor: Attestor, *, repository: str
    ) -> AttestationOutcome:
        """The statements of ``predicate_type`` about ``image`` that ``attestor`` signed."""
        ...


# --- compiling --------------------------------------------------------------------------


def _str(raw: Mapping[str, Any], key: str, path: Path, error: LoadError) -> str:
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise error((*path, key), f"expected a string, got {type(value).__name__}")
    return value


def _bool(raw: Mapping[str, Any], key: str, default: bool, path: Path, error: LoadError) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise error((*path, key), f"expected true or false, got {value!r}")
    return value


def _rekor(raw: Mapping[str, Any], path: Path, error: LoadError) -> Rekor:
    block = raw.get("rekor") or {}
    if not isinstance(block, Mapping):
        raise error((*path, "rekor"), f"expected a mapping, got {type(block).__name__}")
    where = (*path, "rekor")
    return Rekor(
        _str(block, "url", where, error),
        _str(block, "pubkey", where, error),
        _bool(block, "ignoreTlog", False, where, error),
    )


def _ctlog(raw: Mapping[str, Any], path: Path, error: LoadError) -> tuple[str, bool]:
    block = raw.get("ctlog") or {}
    if not isinstance(block, Mapping):
        raise error((*path, "ctlog"), f"expected a mapping, got {type(block).__name__}")
    where = (*path, "ctlog")
    return _str(block, "pubkey", where, error), _bool(block, "ignoreSCT", False, where, error)


def _entry(raw: Any, path: Path, error: LoadError) -> Attestor | AttestorSet:
    if not isinstance(raw, Mapping):
        raise error(path, f"expected a mapping, got {type(raw).__name__}")
    kinds = [k for k in ("keys", "keyless", "certificates", "attestor") if raw.get(k) is not None]
    if len(kinds) != 1:
        got = ", ".join(kinds) or "none"
        raise error(path, f"expected exactly one of keys, keyless, certificates, attestor; got {got}")
    kind = kinds[0]
    block = raw[kind]
    where = (*path, kind)
    if kind == "attestor":
        return _attestor_set(block, where, error)
    if not isinstance(block, Mapping):
        raise error(where, f"expected a mapping, got {type(block).__name__}")
    rekor = _rekor(block, where, error)
    ctlog, ignore_sct = _ctlog(block, where, error)
    if kind == "keys":
        keys = _str(block, "publicKeys", where, error)
        if block.get("kms") or block.get("secret"):
            raise error(where, "KMS and Secret key references need a cluster; give publicKeys as PEM")
        if "BEGIN PUBLIC KEY" not in keys:
            raise error((*where, "publicKeys"), "expected one or more PEM public keys")
        algorithm = _str(block, "signatureAlgorithm", where, error) or "sha256"
        if algorithm not in ("sha224", "sha256", "sha384", "sha512"):
            raise error((*where, "signatureAlgorithm"), f"expected sha224/256/384/512, got {algorithm!r}")
        return KeyAttestor(keys, algorithm, rekor, ctlog, ignore_sct)
    if kind == "keyless":
        extensions = block.get("additionalExtensions") or {}
        if not isinstance(extensions, Mapping):
            raise error((*where, "additionalExtensions"), "expected a mapping of extension to value")
        attestor = KeylessAttestor(
            subject=_str(block, "subject", where, error),
            subject_regexp=_str(block, "subjectRegExp", where, error),
            issuer=_str(block, "issuer", where, error),
            issuer_regexp=_str(block, "issuerRegExp", where, error),
            roots=_str(block, "roots", where, error),
            additional_extensions={str(k): str(v) for k, v in extensions.items()},
            rekor=rekor,
            ctlog_public_key=ctlog,
            ignore_sct=ignore_sct,
        )
        if not (attestor.subject or attestor.subject_regexp) or not (
            attestor.issuer or attestor.issuer_regexp
        ):
            raise error(where, "keyless needs a subject (or subjectRegExp) and an issuer (or issuerRegExp)")
        return attestor
    return CertificateAttestor(
        _str(block, "cert", where, error), _str(block, "certChain", where, error), rekor, ctlog, ignore_sct
    )


def _attestor_set(raw: Any, path: Path, error: LoadError) -> AttestorSet:
    if not isinstance(raw, Mapping):
        raise error(path, f"expected a mapping, got {type(raw).__name__}")
    entries = raw.get("entries")
    if not isinstance(entries, list) or not entries:
        raise error((*path, "entries"), "expected at least one attestor entry")
    compiled = tuple(_entry(item, (*path, "entries", i), error) for i, item in enumerate(entries))
    count = raw.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise error((*path, "count"), f"expected a positive integer, got {count!r}")
    if count is not None and count > len(compiled):
        raise error(
            (*path, "count"), f"expected at most {len(compiled)} (the number of entries), got {count}"
        )
    return AttestorSet(compiled, count)


def _attestor_sets(raw: Any, path: Path, error: LoadError) -> tuple[AttestorSet, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise error(path, f"expected a list, got {type(raw).__name__}")
    return tuple(_attestor_set(item, (*path, i), error) for i, item in enumerate(raw))


def _patterns(raw: Any, path: Path, error: LoadError) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise error(path, "expected a list of image reference patterns")
    for index, pattern in enumerate(raw):
        if "{{" in pattern:
            raise error((*path, index), "variables are not allowed in image references")
    return tuple(raw)


def compile_rules(raw: Any, path: Path, error: LoadError) -> tuple[ImageRule, ...]:
    """Compile a rule's ``verifyImages`` list, raising ``error(path, problem)`` on bad fields."""
    if not isinstance(raw, list) or not raw:
        raise error(path, "expected a non-empty list")
    rules = []
    for index, item in enumerate(raw):
        where = (*path, index)
        if not isinstance(item, Mapping):
            raise error(where, f"expected a mapping, got {type(item).__name__}")
        signature_type = _str(item, "type", where, error) or "Cosign"
        if signature_type not in SIGNATURE_TYPES:
            raise error(
                (*where, "type"), f"expected one of {', '.join(SIGNATURE_TYPES)}, got {signature_type!r}"
            )
        references = _patterns(
            item.get("imageReferences") or item.get("image"), (*where, "imageReferences"), error
        )
        if not references:
            raise error((*where, "imageReferences"), "expected at least one image reference pattern")
        attestations = []
        for a_index, entry in enumerate(item.get("attestations") or ()):
            a_where = (*where, "attestations", a_index)
            if not isinstance(entry, Mapping):
                raise error(a_where, f"expected a mapping, got {type(entry).__name__}")
            predicate = _str(entry, "type", a_where, error) or _str(entry, "predicateType", a_where, error)
            if not predicate:
                raise error((*a_where, "type"), "expected the predicate type URI")
            conditions = entry.get("conditions") or []
            if not isinstance(conditions, list):
                raise error((*a_where, "conditions"), "expected a list of any/all condition blocks")
            attestations.append(
                AttestationCheck(
                    predicate,
                    _attestor_sets(entry.get("attestors"), (*a_where, "attestors"), error),
                    tuple(conditions),
                )
            )
        attestors = _attestor_sets(item.get("attestors"), (*where, "attestors"), error)
        if not attestors and not attestations:
            raise error(where, "expected attestors or attestations to verify")
        for a_index, check in enumerate(attestations):
            if not check.attestors and not attestors:
                raise error(
                    (*where, "attestations", a_index, "attestors"), "expected attestors for the attestation"
                )
        rules.append(
            ImageRule(
                image_references=references,
                skip_image_references=_patterns(
                    item.get("skipImageReferences"), (*where, "skipImageReferences"), error
                ),
                signature_type=signature_type,
                attestors=attestors,
                attestations=tuple(attestations),
                repository=_str(item, "repository", where, error),
                required=_bool(item, "required", True, where, error),
                verify_digest=_bool(item, "verifyDigest", True, where, error),
                mutate_digest=_bool(item, "mutateDigest", True, where, error),
            )
        )
    return tuple(rules)


# --- evaluating --------------------------------------------------------------------------

ConditionCheck = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], tuple[bool, str]]
"""Evaluates any/all condition blocks with extra variables; returns (held, failing message)."""


@dataclass(frozen=True, slots=True)
class ImageResult:
    """The outcome of one image against one rule entry."""

    image: str
    passed: bool
    message: str
    error: bool = False
    # ``image@digest`` when mutateDigest would rewrite a tag reference (gate does not mutate).
    patched: str = ""


def resource_images(resource: Mapping[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """``(image as written, parsed image)`` for every container of the resource's pod spec."""
    return [(image, parse_image(image)) for image in container_images(resource)]


def _set_passes(
    attestor_set: AttestorSet, check: Callable[[Attestor], tuple[bool, str]], where: str
) -> tuple[bool, str]:
    verified = 0
    reasons = []
    for index, entry in enumerate(attestor_set.entries):
        entry_where = f"{where}.entries[{index}]"
        if isinstance(entry, AttestorSet):
            ok, reason = _set_passes(entry, check, f"{entry_where}.attestor")
        else:
            ok, reason = check(entry)
            reason = f"{entry_where}.{_kind_name(entry)}: {reason}"
        if ok:
            verified += 1
            if verified >= attestor_set.needed:
                return True, ""
        else:
            reasons.append(reason)
    return False, "; ".join(
        reasons
    ) or f"{where}: {verified} of {attestor_set.needed} required entries verified"


def _kind_name(attestor: Attestor) -> str:
    if isinstance(attestor, KeyAttestor):
        return "keys"
    if isinstance(attestor, KeylessAttestor):
        return "keyless"
    return "certificates"


def _signatures(rule: ImageRule, image: str, verifier: ImageVerifier, resolved: list[str]) -> str:
    """Why the image's signatures do not satisfy the rule's attestor sets ("" when they do)."""
    for index, attestor_set in enumerate(rule.attestors):

        def signed(attestor: Attestor) -> tuple[bool, str]:
            outcome = verifier.verify_signature(
                image, attestor, signature_type=rule.signature_type, repository=rule.repository
            )
            if outcome.verified and outcome.digest:
                resolved.append(outcome.digest)
            return outcome.verified, outcome.reason or "no matching signatures"

        ok, reason = _set_passes(attestor_set, signed, f".attestors[{index}]")
        if not ok:
            return reason
    return ""


def _attestation(
    rule: ImageRule,
    a_index: int,
    check: AttestationCheck,
    image: str,
    verifier: ImageVerifier,
    conditions: ConditionCheck,
    resolved: list[str],
) -> ImageResult | None:
    """The failure of one ``attestations`` entry, or None when it holds."""
    for s_index, attestor_set in enumerate(check.attestors or rule.attestors):
        statements: list[Mapping[str, Any]] = []

        def attested(attestor: Attestor, found: list[Mapping[str, Any]] = statements) -> tuple[bool, str]:
            outcome = verifier.verify_attestations(
                image, check.predicate_type, attestor, repository=rule.repository
            )
            if outcome.verified:
                found.extend(outcome.statements)
                if outcome.digest:
                    resolved.append(outcome.digest)
            return (
                outcome.verified,
                outcome.reason or f"no verified attestation of type {check.predicate_type}",
            )

        ok, reason = _set_passes(attestor_set, attested, f".attestations[{a_index}].attestors[{s_index}]")
        if not ok:
            return ImageResult(image, False, f"failed to verify image {image}: {reason}")
        for statement in statements:
            predicate = statement.get("predicate")
            variables = predicate if isinstance(predicate, Mapping) else {}
            try:
                held, failed = conditions(variables, check.conditions)
            except EvaluationError as exc:
                problem = f"failed to evaluate conditions of {check.predicate_type}: {exc}"
                return ImageResult(image, False, problem, error=True)
            if not held:
                detail = f": {failed}" if failed else ""
                return ImageResult(
                    image,
                    False,
                    f"image attestations verification failed for {image}, "
                    f"predicate {check.predicate_type}{detail}",
                )
    return None


def verify_image(
    rule: ImageRule, image: str, verifier: ImageVerifier, conditions: ConditionCheck
) -> ImageResult:
    """Check one image against one compiled ``verifyImages`` entry."""
    resolved: list[str] = []
    reason = _signatures(rule, image, verifier, resolved)
    if reason:
        return ImageResult(image, False, f"failed to verify image {image}: {reason}")
    for a_index, check in enumerate(rule.attestations):
        failure = _attestation(rule, a_index, check, image, verifier, conditions, resolved)
        if failure is not None:
            return failure
    if rule.verify_digest and not parse_image(image)["digest"]:
        if not rule.mutate_digest or not resolved:
            return ImageResult(image, False, f"missing digest for {image}")
        return ImageResult(image, True, "", patched=f"{image}@{resolved[0]}")
    return ImageResult(image, True, "")
