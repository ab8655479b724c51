"""verifyImages rules: compiled at load, evaluated through an image verifier port (a small fake here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from gate.model import RuleOutcome
from policies import ContextValues, PolicyLoadError
from policies._verify_images import (
    AttestationOutcome,
    Attestor,
    KeyAttestor,
    KeylessAttestor,
    SignatureOutcome,
)
from tests.unit.policies.conftest import pod, policy

KEY = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
OTHER_KEY = KEY.replace("MFkw", "MFkx")
DIGEST = "sha256:" + "d" * 64


@dataclass
class FakeVerifier:
    """Signatures by key PEM per image; attestations by (image, predicate type)."""

    signed_by: dict[str, set[str]] = field(default_factory=dict)
    identities: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    statements: dict[tuple[str, str], list[Mapping[str, Any]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def _accepts(self, image: str, attestor: Attestor) -> bool:
        if isinstance(attestor, KeyAttestor):
            return attestor.public_keys in self.signed_by.get(image, set())
        if isinstance(attestor, KeylessAttestor):
            return (attestor.issuer, attestor.subject) in self.identities.get(image, set())
        return False

    def verify_signature(
        self, image: str, attestor: Attestor, *, signature_type: str, repository: str
    ) -> SignatureOutcome:
        self.calls.append(f"sig {image}")
        if self._accepts(image, attestor):
            return SignatureOutcome(True, DIGEST)
        return SignatureOutcome(False, reason="no signatures found")

    def verify_attestations(
        self, image: str, predicate_type: str, attestor: Attestor, *, repository: str
    ) -> AttestationOutcome:
        self.calls.append(f"att {image} {predicate_type}")
        found = self.statements.get((image, predicate_type))
        if not found or not self._accepts(image, attestor):
            return AttestationOutcome(False, reason=f"no verified attestations of type {predicate_type}")
        return AttestationOutcome(True, DIGEST, tuple(found))


def _rule(body: str) -> str:
    return f"""
- name: verify
  match:
    any:
    - resources:
        kinds: [Pod]
  verifyImages:
{body}
"""


KEYED = _rule(
    f"""
  - imageReferences: ["registry.example/team/*"]
    mutateDigest: false
    verifyDigest: false
    attestors:
    - entries:
      - keys:
          publicKeys: |-
{chr(10).join("            " + line for line in KEY.splitlines())}
"""
)


def _pod(*images: str) -> dict[str, Any]:
    return pod(containers=[{"name": f"c{i}", "image": image} for i, image in enumerate(images)])


def test_a_signed_image_passes_and_an_unsigned_one_fails_with_the_attestor_path() -> None:
    bundle = policy(KEYED)
    verifier = FakeVerifier(signed_by={"registry.example/team/app:1": {KEY}})
    values = ContextValues(image_verifier=verifier)
    [ok] = bundle.evaluate_resource(_pod("registry.example/team/app:1"), values=values)
    assert ok.outcome is RuleOutcome.PASS
    [bad] = bundle.evaluate_resource(
        _pod("registry.example/team/app:1", "registry.example/team/evil:1"), values=values
    )
    assert bad.outcome is RuleOutcome.FAIL
    assert "failed to verify image registry.example/team/evil:1" in bad.message
    assert ".attestors[0].entries[0].keys: no signatures found" in bad.message


def test_images_outside_the_references_are_not_checked() -> None:
    bundle = policy(KEYED)
    verifier = FakeVerifier()
    responses = bundle.evaluate_resource(
        _pod("docker.io/library/nginx:1"), values=ContextValues(image_verifier=verifier)
    )
    assert responses == []
    assert verifier.calls == []


def test_without_a_verifier_the_rule_is_skipped_with_a_note() -> None:
    [response] = policy(KEYED).evaluate_resource(_pod("registry.example/team/app:1"))
    assert response.outcome is RuleOutcome.SKIP
    assert "image verifier" in response.message


def test_count_lets_one_of_two_attestors_suffice() -> None:
    other = chr(10).join("            " + line for line in OTHER_KEY.splitlines())
    mine = chr(10).join("            " + line for line in KEY.splitlines())
    bundle = policy(
        _rule(
            f"""
  - imageReferences: ["*"]
    verifyDigest: false
    attestors:
    - count: 1
      entries:
      - keys:
          publicKeys: |-
{other}
      - keys:
          publicKeys: |-
{mine}
"""
        )
    )
    verifier = FakeVerifier(signed_by={"reg.example/app:1": {KEY}})
    [response] = bundle.evaluate_resource(
        _pod("reg.example/app:1"), values=ContextValues(image_verifier=verifier)
    )
    assert response.outcome is RuleOutcome.PASS


def test_attestation_conditions_read_the_predicate() -> None:
    bundle = policy(
        _rule(
            """
  - imageReferences: ["ghcr.io/org/*"]
    verifyDigest: false
    attestations:
    - type: https://cosign.sigstore.dev/attestation/vuln/v1
      attestors:
      - entries:
        - keyless:
            subject: https://github.com/org/app/.github/workflows/release.yml@refs/heads/main
            issuer: https://token.actions.githubusercontent.com
      conditions:
      - all:
        - key: "{{ scanner.result.summary.CRITICAL }}"
          operator: Equals
          value: 0
          message: critical vulnerabilities present
"""
        )
    )
    identity = (
        "https://token.actions.githubusercontent.com",
        "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main",
    )
    vuln = "https://cosign.sigstore.dev/attestation/vuln/v1"

    def verifier(criticals: int) -> FakeVerifier:
        statement = {"predicate": {"scanner": {"result": {"summary": {"CRITICAL": criticals}}}}}
        return FakeVerifier(
            identities={"ghcr.io/org/app:1": {identity}},
            statements={("ghcr.io/org/app:1", vuln): [statement]},
        )

    [clean] = bundle.evaluate_resource(
        _pod("ghcr.io/org/app:1"), values=ContextValues(image_verifier=verifier(0))
    )
    assert clean.outcome is RuleOutcome.PASS
    [dirty] = bundle.evaluate_resource(
        _pod("ghcr.io/org/app:1"), values=ContextValues(image_verifier=verifier(3))
    )
    assert dirty.outcome is RuleOutcome.FAIL
    assert "critical vulnerabilities present" in dirty.message


def test_verify_digest_fails_a_tag_unless_mutate_digest_would_pin_it() -> None:
    mine = chr(10).join("            " + line for line in KEY.splitlines())
    template = """
  - imageReferences: ["*"]
    mutateDigest: {mutate}
    attestors:
    - entries:
      - keys:
          publicKeys: |-
{key}
"""
    verifier = FakeVerifier(signed_by={"reg.example/app:1": {KEY}})
    values = ContextValues(image_verifier=verifier)
    strict = policy(_rule(template.format(mutate="false", key=mine)))
    [failed] = strict.evaluate_resource(_pod("reg.example/app:1"), values=values)
    assert failed.outcome is RuleOutcome.FAIL
    assert failed.message == "missing digest for reg.example/app:1"
    pinning = policy(_rule(template.format(mutate="true", key=mine)))
    [passed] = pinning.evaluate_resource(_pod("reg.example/app:1"), values=values)
    assert passed.outcome is RuleOutcome.PASS
    assert f"reg.example/app:1@{DIGEST}" in passed.message


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("  - imageReferences: []\n    attestors: []\n", "imageReferences"),
        ('  - imageReferences: ["*"]\n', "expected attestors or attestations"),
        (
            '  - imageReferences: ["{{ x }}"]\n    attestors: [{entries: [{keys: {publicKeys: k}}]}]\n',
            "variables",
        ),
        ('  - imageReferences: ["*"]\n    attestors: [{entries: [{keys: {publicKeys: nope}}]}]\n', "PEM"),
        (
            '  - imageReferences: ["*"]\n'
            "    attestors: [{count: 3, entries: [{keyless: {subject: s, issuer: i}}]}]\n",
            "at most 1",
        ),
        (
            '  - imageReferences: ["*"]\n    type: Notary\n'
            "    attestors: [{entries: [{keyless: {subject: s, issuer: i}}]}]\n",
            "Cosign",
        ),
        ('  - imageReferences: ["*"]\n    attestors: [{entries: [{keyless: {subject: s}}]}]\n', "issuer"),
    ],
)
def test_malformed_verify_images_entries_are_load_errors_with_the_field(body: str, problem: str) -> None:
    with pytest.raises(PolicyLoadError, match=problem) as caught:
        policy(_rule(body))
    assert "verifyImages" in caught.value.field
