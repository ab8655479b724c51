"""Hostile trusted roots, bundles, statements and certificates found by fuzzing the real corpus.

Each input is a real conformance bundle or trusted root (or gate-signed material) with one
mutation; each must come out as a failed verification or an ``InvalidArgument`` with its
reason, in bounded time, never as a library exception, a traceback or a verified result.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from gate.cli import main
from gate.errors import InvalidArgument
from gate.signatures import (
    Identity,
    SignaturePolicy,
    TrustRoot,
    certificate_issuer,
    certificate_subjects,
    key_hint,
    load_public_key,
    pae,
    verify_bundle,
    verify_statement,
)
from gate.signatures._certs import has_code_signing, verify_embedded_sct
from tests.unit.signatures.support import (
    DIGEST,
    Rekor,
    dsse_body_and_envelope,
    key_bundle,
    make_ca,
    make_leaf,
    signing_key,
    trusted_root_json,
)

SIGSTORE = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "sigstore"
CASES = SIGSTORE / "test" / "assets" / "bundle-verify"
PRODUCTION = SIGSTORE / "trust" / "production-trusted_root.json"
ARTIFACT = (CASES / "a.txt").read_bytes()
BEACON = Identity(
    subject="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
    issuer="https://token.actions.githubusercontent.com",
)
KEYLESS = SignaturePolicy(identities=(BEACON,))
INTOTO = "application/vnd.in-toto+json"


def _root() -> dict[str, Any]:
    return json.loads(PRODUCTION.read_bytes())


def _trust(document: dict[str, Any]) -> TrustRoot:
    return TrustRoot.from_trusted_root_json(json.dumps(document).encode())


def _bundle(case: str) -> dict[str, Any]:
    return json.loads((CASES / case / "bundle.sigstore.json").read_bytes())


def _managed_key() -> SignaturePolicy:
    return SignaturePolicy(
        keys=(load_public_key((CASES / "managed-key-happy-path" / "key.pub").read_bytes()),)
    )


# --- trusted roots ---------------------------------------------------------------------------


def _without_fulcio(root: dict[str, Any]) -> None:
    root["certificateAuthorities"] = []


def _fulcio_not_yet_valid(root: dict[str, Any]) -> None:
    for authority in root["certificateAuthorities"]:
        authority["validFor"] = {"start": "9999-01-01T00:00:00Z"}


def _without_logs(root: dict[str, Any]) -> None:
    root["tlogs"] = []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (_without_fulcio, "MetadataError: Fulcio certificates not found in trusted root"),
        (_fulcio_not_yet_valid, "MetadataError: Fulcio certificates not found in trusted root"),
        (_without_logs, "VerificationError: trusted root contains no transparency log instances"),
    ],
    ids=["no-certificate-authority", "authorities-valid-from-9999", "no-transparency-log"],
)
def test_a_trust_root_that_cannot_verify_keyless_bundles_fails_them_with_the_reason(
    mutate: Any, problem: str
) -> None:
    root = _root()
    mutate(root)
    trust = _trust(root)
    bundle = json.dumps(_bundle("happy-path-v0.3")).encode()
    result = verify_bundle(bundle, policy=KEYLESS, trust=trust, artifact=ARTIFACT)
    assert not result.verified
    assert result.reason == (
        f"trust: got a trusted_root.json that cannot verify keyless bundles ({problem}), "
        "expected one with a certificate authority valid by now and a transparency log"
    )


def test_a_timestamp_authority_chain_naming_a_certificate_twice_fails_the_timestamp() -> None:
    root = _root()
    chain = root["timestampAuthorities"][0]["certChain"]["certificates"]
    leaf, anchor = chain[0], chain[-1]
    root["timestampAuthorities"][0]["certChain"]["certificates"] = [leaf, anchor, anchor, anchor]
    bundle = (CASES / "managed-key-happy-path" / "bundle.sigstore.json").read_bytes()
    result = verify_bundle(bundle, policy=_managed_key(), trust=_trust(root), artifact=ARTIFACT)
    assert not result.verified
    assert result.reason.startswith(
        "bundle.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0]: got a timestamp "
        "no timestamp authority of the trust root vouches for"
    )
    assert result.reason.endswith(
        "(https://timestamp.sigstore.dev/api/v1/timestamp: intermediate certificate is already present)"
    )


def test_a_trusted_root_naming_a_key_twice_is_refused_not_read_by_its_last_value() -> None:
    # Python's reader keeps the last "tlogs" (none here); Go's protojson refuses the document.
    text = PRODUCTION.read_bytes().replace(b'"ctlogs":', b'"tlogs": [], "ctlogs":', 1)
    with pytest.raises(InvalidArgument) as caught:
        TrustRoot.from_trusted_root_json(text)
    assert (
        caught.value.message == "trusted_root: got duplicate key 'tlogs' in one object, expected unique keys"
    )


def test_a_trusted_root_with_a_million_empty_logs_is_refused_by_count_in_bounded_time() -> None:
    root = _root()
    root["tlogs"] = [{}] * 1_000_000
    data = json.dumps(root, separators=(",", ":")).encode()
    start = time.thread_time()
    with pytest.raises(InvalidArgument) as caught:
        TrustRoot.from_trusted_root_json(data)
    # Every item used to become a validation error, all of them formatted: 856 MB of text.
    assert time.thread_time() - start < 3.0
    assert caught.value.message == "trusted_root.tlogs: got 1000000 items, expected at most 256"


# --- bundles -----------------------------------------------------------------------------


def test_a_bundle_with_a_million_empty_log_entries_is_refused_by_count_in_bounded_time() -> None:
    cases = (("happy-path-v0.3", KEYLESS), ("managed-key-happy-path", _managed_key()))
    for case, policy in cases:
        document = _bundle(case)
        document["verificationMaterial"]["tlogEntries"] = [{}] * 1_000_000
        data = json.dumps(document, separators=(",", ":")).encode()
        trust = TrustRoot.from_trusted_root_json(PRODUCTION.read_bytes())
        start = time.thread_time()
        result = verify_bundle(data, policy=policy, trust=trust, artifact=ARTIFACT)
        # The library used to build (and format) five million validation errors: minutes, gigabytes.
        assert time.thread_time() - start < 3.0, case
        assert not result.verified
        assert (
            result.reason == "bundle.verificationMaterial.tlogEntries: got 1000000 items, expected at most 64"
        )


def test_a_bundle_field_holding_a_large_tree_is_refused_by_count_in_bounded_time() -> None:
    # The library renders the unknown tree into its error, at a cost that grows with it (about
    # ten seconds for an 8 MB bundle of this shape); the count refuses it before.
    document = _bundle("managed-key-happy-path")
    tree = {f"k{i}": [{}] * 60 for i in range(64)}
    document["verificationMaterial"]["tlogEntries"][0]["x"] = [tree] * 60
    data = json.dumps(document, separators=(",", ":")).encode()
    trust = TrustRoot.from_trusted_root_json(PRODUCTION.read_bytes())
    for policy in (_managed_key(), KEYLESS):
        start = time.thread_time()
        result = verify_bundle(data, policy=policy, trust=trust, artifact=ARTIFACT)
        assert time.thread_time() - start < 1.0
        assert not result.verified
        assert result.reason == "bundle: got more than 1024 lists and objects, expected at most 1024"


def test_a_bundle_with_too_many_timestamps_names_the_list() -> None:
    document = _bundle("managed-key-happy-path")
    document["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"] = [{}] * 65
    trust = TrustRoot.from_trusted_root_json(PRODUCTION.read_bytes())
    result = verify_bundle(
        json.dumps(document).encode(), policy=_managed_key(), trust=trust, artifact=ARTIFACT
    )
    assert result.reason == (
        "bundle.verificationMaterial.timestampVerificationData.rfc3161Timestamps: "
        "got 65 items, expected at most 64"
    )


@pytest.mark.parametrize(
    ("case", "key", "decoy"),
    [
        ("happy-path-v0.3", "messageSignature", {"signature": "AAAA"}),
        ("managed-key-happy-path", "messageSignature", {"signature": "AAAA"}),
        (
            "happy-path-intoto-in-dsse-v3",
            "dsseEnvelope",
            {"payload": "", "payloadType": INTOTO, "signatures": []},
        ),
    ],
)
def test_a_bundle_naming_a_key_twice_is_refused_not_read_by_its_last_value(
    case: str, key: str, decoy: dict[str, Any]
) -> None:
    # A reader keeping the first value would see the decoy; Go's protojson refuses the bundle.
    text = json.dumps(_bundle(case))
    twice = text.replace("{", "{" + json.dumps(key) + ": " + json.dumps(decoy) + ", ", 1).encode()
    artifact = (CASES / case / "artifact").read_bytes() if (CASES / case / "artifact").exists() else ARTIFACT
    policy = _managed_key() if case.startswith("managed-key") else KEYLESS
    trust = TrustRoot.from_trusted_root_json(PRODUCTION.read_bytes())
    assert verify_bundle(text.encode(), policy=policy, trust=trust, artifact=artifact).verified
    result = verify_bundle(twice, policy=policy, trust=trust, artifact=artifact)
    assert not result.verified
    assert result.reason == f"bundle: got duplicate key {key!r} in one object, expected unique keys"


# --- in-toto statements ------------------------------------------------------------------


def _statement(predicate_type: str, number: str = "1") -> bytes:
    subject = DIGEST.partition(":")[2]
    return (
        '{"_type": "https://in-toto.io/Statement/v1", '
        f'"subject": [{{"name": "app", "digest": {{"sha256": "{subject}"}}}}], '
        f'"predicateType": "{predicate_type}", "predicate": {{"n": {number}}}}}'
    ).encode()


def test_a_statement_whose_predicate_type_holds_a_lone_surrogate_is_refused() -> None:
    result = verify_statement(_statement("https://example.com/\\ud800"), digest=DIGEST, predicate_type=None)
    assert not result.verified
    assert result.reason == (
        "statement.predicateType: got a lone surrogate at character 20, expected text that encodes as UTF-8"
    )


def test_the_cli_reports_a_bundle_whose_predicate_type_holds_a_lone_surrogate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The verified predicate type used to be printed: UnicodeEncodeError, a traceback.
    key, rekor = signing_key(), Rekor.create()
    artifact = b"the artifact"
    payload = _statement("https://example.com/\\ud800").replace(
        DIGEST.partition(":")[2].encode(), hashlib.sha256(artifact).hexdigest().encode()
    )
    body, content = dsse_body_and_envelope(payload, INTOTO, key.sign(pae(INTOTO, payload)), key.public.pem())
    files = {
        "artifact": artifact,
        "bundle.json": key_bundle(rekor, body, content, key_hint(key.public)),
        "key.pub": key.public.pem(),
        "trusted_root.json": trusted_root_json(rekor),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    code = main(
        [
            "verify",
            "blob",
            str(tmp_path / "artifact"),
            "--bundle",
            str(tmp_path / "bundle.json"),
            "--key",
            str(tmp_path / "key.pub"),
            "--trusted-root",
            str(tmp_path / "trusted_root.json"),
        ]
    )
    captured = capsys.readouterr()
    assert (code, captured.out) == (1, "")
    assert captured.err.endswith(
        "verification failed: statement.predicateType: got a lone surrogate at character 20, "
        "expected text that encodes as UTF-8\n"
    )


def test_a_statement_with_an_integer_too_long_to_read_says_so() -> None:
    result = verify_statement(
        _statement("https://example.com/p", "9" * 5000), digest=DIGEST, predicate_type=None
    )
    assert not result.verified
    assert result.reason == "statement: got an integer of 5000 digits, expected at most 4300"


# --- certificates --------------------------------------------------------------------------


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _resigned(cert: x509.Certificate, issuer: ec.EllipticCurvePrivateKey, tbs: bytes) -> x509.Certificate:
    """``cert`` with its TBS replaced by ``tbs``, signed again by ``issuer`` (ECDSA SHA-256)."""
    algorithm = bytes.fromhex("300a06082a8648ce3d040302")
    signature = issuer.sign(tbs, ec.ECDSA(hashes.SHA256()))
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bit_string
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(body)) + body)


def _oid(dotted: str) -> bytes:
    """The DER encoding of an OBJECT IDENTIFIER (tag, length, arcs)."""
    first, second, *rest = (int(arc) for arc in dotted.split("."))
    body = bytearray([40 * first + second])
    for arc in rest:
        chunk, remaining = [arc & 0x7F], arc >> 7
        while remaining:
            chunk.append(0x80 | (remaining & 0x7F))
            remaining >>= 7
        body.extend(reversed(chunk))
    return b"\x06" + _der_length(len(body)) + bytes(body)


@pytest.mark.parametrize(
    ("renamed", "twice"),
    [
        ("2.5.29.37", "2.5.29.15"),  # extended key usage renamed: key usage twice
        ("2.5.29.35", "2.5.29.17"),  # authority key id renamed: subject alternative name twice
        ("1.3.6.1.4.1.57264.1.1", "1.3.6.1.4.1.57264.1.8"),  # legacy OIDC issuer renamed: issuer twice
    ],
)
def test_a_certificate_naming_an_extension_twice_reads_as_having_none(renamed: str, twice: str) -> None:
    ca = make_ca()
    _, leaf = make_leaf(ca, legacy_issuer="https://legacy.example")
    tbs = leaf.tbs_certificate_bytes
    assert tbs.count(_oid(renamed)) == 1
    hostile = _resigned(leaf, ca.key, tbs.replace(_oid(renamed), _oid(twice)))
    hostile.verify_directly_issued_by(ca.cert)
    # cryptography raises DuplicateExtension (not a ValueError) for every extension lookup.
    assert certificate_subjects(hostile) == []
    assert certificate_issuer(hostile) is None
    assert has_code_signing(hostile) is False
    assert verify_embedded_sct(hostile, ca.cert, TrustRoot()) == f"certificate has extension {twice} twice"


def test_a_resigned_certificate_keeps_its_tbs_and_verifies_under_its_issuer() -> None:
    # The surgery above relies on this re-encoding; a wrong one would test nothing.
    ca = make_ca()
    _, leaf = make_leaf(ca)
    again = _resigned(leaf, ca.key, leaf.tbs_certificate_bytes)
    again.verify_directly_issued_by(ca.cert)
    assert again.tbs_certificate_bytes == leaf.tbs_certificate_bytes
    assert _oid("1.3.6.1.4.1.57264.1.8") == bytes.fromhex("060a2b0601040183bf300108")
