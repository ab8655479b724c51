"""``gate verify``'s output shows each check's log entry and times, each only when known.

Text lines read ``tlog index N``, ``tlog tree T index I``, ``integrated <ISO 8601>`` and
``timestamp <ISO 8601>`` (the genTime of a verified RFC 3161 timestamp); ``-o json`` has
``tlog_index``, ``tlog_tree``, ``tlog_tree_index``, ``integrated_time`` and ``timestamp``,
null when unknown. The bundles with timestamps are real (sigstore-conformance corpus);
the bundle on a sharded log is made on the fly, its signature layer neighbour is cosign's.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from rfc3161_client import decode_timestamp_response

from gate.cli import main
from gate.oci import Descriptor, OciLayout, cosign_tag, encode_manifest, referrers_tag
from gate.oci import media as oci_media
from gate.signatures import key_hint, load_public_key, make_statement, pae
from tests.unit.signatures.support import NOW, Rekor, Shard, dsse_body_and_envelope, signing_key, trusted_log

SHARED = Path(__file__).resolve().parents[3] / "shared" / "conformance"
BUNDLES = SHARED / "sigstore" / "test" / "assets" / "bundle-verify"
COSIGN = SHARED / "cosign"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"
SLSA = "https://slsa.dev/provenance/v1"
# A Rekor v1 entry with an inclusion promise and proof, and an RFC 3161 timestamp: every field.
STAMPED = BUNDLES / "intoto-with-custom-trust-root"
COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
SIMPLE_SIGNING = COSIGN / "cases" / "ci-key-rekor-set-valid"
MARKER = b"\x00sigstore-json\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL", "GATE_TRUSTED_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _facts(bundle: Path) -> dict[str, Any]:
    """What the bundle itself says: log index, tree index, promised time, genTime."""
    material = json.loads(bundle.read_bytes())["verificationMaterial"]
    entry = material["tlogEntries"][0]
    tokens = material.get("timestampVerificationData", {}).get("rfc3161Timestamps", [])
    gen_times = [
        decode_timestamp_response(base64.b64decode(t["signedTimestamp"])).tst_info.gen_time for t in tokens
    ]
    integrated = entry.get("integratedTime")
    return {
        "index": int(entry["logIndex"]),
        "tree_index": int(entry["inclusionProof"]["logIndex"]),
        "integrated": datetime.fromtimestamp(int(integrated), UTC) if integrated else None,
        "gen_time": gen_times[0] if gen_times else None,
    }


def _keyless(trusted_root: Path) -> list[str | Path]:
    return [
        "--trusted-root",
        trusted_root,
        "--certificate-identity",
        BEACON,
        "--certificate-oidc-issuer",
        ISSUER,
    ]


def test_verify_blob_shows_the_rfc3161_time_of_a_keyless_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    case = BUNDLES / "rekor2-timestamp-with-embedded-cert"
    facts = _facts(case / "bundle.sigstore.json")
    artifact = BUNDLES / "a.txt"
    code, out, err = _run(
        capsys,
        "verify", "blob", artifact, "--bundle", case / "bundle.sigstore.json",
        *_keyless(case / "trusted_root.json"),
    )  # fmt: skip
    assert (code, err) == (0, "")
    # A Rekor v2 log: no promised time, the tree is the log (global index = tree index).
    assert facts["integrated"] is None
    assert out == (
        f"Verified OK: {artifact} (signer {BEACON}, issuer {ISSUER}, tlog index {facts['index']}, "
        f"tlog tree log2025-alpha1.rekor.sigstage.dev index {facts['tree_index']}, "
        f"timestamp {facts['gen_time'].isoformat()})\n"
    )
    assert facts["gen_time"].isoformat() == "2025-08-06T18:51:36+00:00"


def test_verify_blob_shows_log_index_tree_promised_time_and_timestamp(
    capsys: pytest.CaptureFixture[str],
) -> None:
    facts = _facts(STAMPED / "bundle.sigstore.json")
    code, out, err = _run(
        capsys,
        "verify", "blob", STAMPED / "artifact", "--bundle", STAMPED / "bundle.sigstore.json",
        "--type", SLSA, *_keyless(STAMPED / "trusted_root.json"),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out == (
        f"Verified OK: {STAMPED / 'artifact'} (signer {BEACON}, issuer {ISSUER}, "
        f"tlog index {facts['index']}, "
        f"tlog tree localhost:8000 - 124190645164477 index {facts['tree_index']}, "
        f"integrated {facts['integrated'].isoformat()}, timestamp {facts['gen_time'].isoformat()}, "
        f"predicateType {SLSA})\n"
    )


def _member(layout: OciLayout, bundle: bytes, subject: str) -> Descriptor:
    config = layout.write_blob(b"{}", oci_media.OCI_CONFIG)
    layer = layout.write_blob(bundle, oci_media.SIGSTORE_BUNDLE_V03)
    manifest = encode_manifest(
        config,
        [layer],
        media_type=oci_media.OCI_MANIFEST,
        subject=Descriptor(oci_media.OCI_MANIFEST, subject, 1234),
        artifact_type=oci_media.SIGSTORE_BUNDLE_V03,
    )
    return layout.write_manifest(manifest)


def test_verify_attestation_shows_each_field_in_text_and_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    facts = _facts(STAMPED / "bundle.sigstore.json")
    digest = "sha256:" + hashlib.sha256((STAMPED / "artifact").read_bytes()).hexdigest()
    layout = OciLayout.create(tmp_path / "layout")
    member = _member(layout, (STAMPED / "bundle.sigstore.json").read_bytes(), digest)
    layout.write_index([member], tag=referrers_tag(digest))
    image = f"registry.example/app@{digest}"
    args = ["verify", "attestation", image, "--local", tmp_path / "layout", "--type", SLSA]
    code, out, err = _run(capsys, *args, *_keyless(STAMPED / "trusted_root.json"))
    assert (code, err) == (0, "")
    assert out == (
        f"Verified OK: {image}@{digest}\n"
        f"  attestation {SLSA} by {BEACON} (tlog index {facts['index']}, "
        f"tlog tree localhost:8000 - 124190645164477 index {facts['tree_index']}, "
        f"integrated {facts['integrated'].isoformat()}, timestamp {facts['gen_time'].isoformat()})\n"
    )
    code, out, err = _run(capsys, *args, *_keyless(STAMPED / "trusted_root.json"), "-o", "json")
    assert (code, err) == (0, "")
    [check] = json.loads(out)["attestations"][SLSA]
    assert {key: check[key] for key in check if key not in ("predicate", "reason")} == {
        "verified": True,
        "signer": BEACON,
        "tlog_index": facts["index"],
        "tlog_tree": "localhost:8000 - 124190645164477",
        "tlog_tree_index": facts["tree_index"],
        "integrated_time": facts["integrated"].isoformat(),
        "timestamp": facts["gen_time"].isoformat(),
    }


def test_verify_image_shows_each_signatures_log_entry_and_null_for_what_is_unknown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = (SIMPLE_SIGNING / "manifest.json").read_bytes()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    layout = OciLayout.create(tmp_path / "layout")
    layout.write_manifest(manifest, tag="1.0")
    # cosign's own signature with a Rekor SET: a global index and a promised time, no tree.
    stored = json.loads((SIMPLE_SIGNING / "signature-1").read_bytes()[len(MARKER) :])
    layer = dataclasses.replace(
        layout.write_blob(base64.b64decode(stored["payload"]), stored["mimeType"]),
        annotations=stored["annotations"],
    )
    config = layout.write_blob(b"{}", oci_media.OCI_CONFIG)
    layout.write_manifest(
        encode_manifest(config, [layer], media_type=oci_media.OCI_MANIFEST), tag=cosign_tag(digest, "sig")
    )
    # A bundle on shard 7 of a sharded log: its global index, its place in the shard and a time.
    rekor, key = Rekor.create(), signing_key()
    payload = make_statement({"registry.example/app": digest}, COSIGN_SIGN, {})
    body, content = dsse_body_and_envelope(
        payload,
        "application/vnd.in-toto+json",
        key.sign(pae("application/vnd.in-toto+json", payload)),
        key.public.pem(),
    )
    bundle = Shard.v1(rekor, tree_id=7).bundle(
        body, content, key_hint(key.public), tree_index=5, tree_size=11, log_index=1_000_005
    )
    layout.write_index([_member(layout, bundle, digest)], tag=referrers_tag(digest))
    root = json.loads((COSIGN / "trust" / "production-trusted_root.json").read_bytes())
    spki = rekor.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root["tlogs"].append(trusted_log(spki, bytes.fromhex(rekor.log_id)))
    (tmp_path / "trusted_root.json").write_text(json.dumps(root))
    keys = tmp_path / "keys.pem"
    keys.write_bytes((SIMPLE_SIGNING / "cosign2.pub").read_bytes() + key.public.pem())
    cosign_signer = load_public_key((SIMPLE_SIGNING / "cosign2.pub").read_bytes()).fingerprint
    cosign_set = json.loads(stored["annotations"]["dev.sigstore.cosign/bundle"])["Payload"]
    cosign_time = datetime.fromtimestamp(cosign_set["integratedTime"], UTC)

    args = ["verify", "image", "registry.example/app:1.0", "--local", tmp_path / "layout", "--key", keys]
    code, out, err = _run(capsys, *args, "--trusted-root", tmp_path / "trusted_root.json")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"Verified OK: registry.example/app:1.0@{digest}",
        *sorted(
            [
                f"  signature by {cosign_signer} (tlog index {cosign_set['logIndex']}, "
                f"integrated {cosign_time.isoformat()})",
                f"  signature by {key.public.fingerprint} (tlog index 1000005, "
                f"tlog tree rekor.test - 7 index 5, integrated {NOW.isoformat()})",
            ]
        ),
    ]

    code, out, err = _run(capsys, *args, "--trusted-root", tmp_path / "trusted_root.json", "-o", "json")
    assert (code, err) == (0, "")
    signatures = {s["signer"]: s for s in json.loads(out)["signatures"]}
    assert signatures[cosign_signer] == {
        "verified": True,
        "signer": cosign_signer,
        "tlog_index": cosign_set["logIndex"],
        "tlog_tree": None,
        "tlog_tree_index": None,
        "integrated_time": cosign_time.isoformat(),
        "timestamp": None,
        "reason": "",
    }
    assert signatures[key.public.fingerprint] == {
        "verified": True,
        "signer": key.public.fingerprint,
        "tlog_index": 1_000_005,
        "tlog_tree": "rekor.test - 7",
        "tlog_tree_index": 5,
        "integrated_time": NOW.isoformat(),
        "timestamp": None,
        "reason": "",
    }


def test_an_attestation_answer_without_a_log_index_shows_none() -> None:
    # What a server older than AttestationResult.tlog_index sends: no index, not index 0.
    from gate.cli._verify_image import _answer_details
    from gate.v1 import signature_pb2

    old = signature_pb2.AttestationResult(
        predicate_type="https://cyclonedx.org/bom", verified=True, signer="k"
    )
    assert _answer_details(old) == []
    first = signature_pb2.AttestationResult(
        predicate_type="https://cyclonedx.org/bom", verified=True, tlog_index=0
    )
    assert _answer_details(first) == ["tlog index 0"]
    assert _answer_details(signature_pb2.SignatureResult(verified=True, tlog_index=-1)) == []


def test_verify_blob_with_a_deeply_nested_bundle_file_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Read as a cosign legacy bundle first: 100,000 nested [ was a RecursionError traceback.
    case = BUNDLES / "rekor2-timestamp-with-embedded-cert"
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(b"[" * 100_000)
    code, out, err = _run(
        capsys,
        "verify", "blob", BUNDLES / "a.txt", "--bundle", bundle,
        *_keyless(case / "trusted_root.json"),
    )  # fmt: skip
    assert code != 0
    assert "Traceback" not in err + out
    assert "nested too deeply" in err + out
