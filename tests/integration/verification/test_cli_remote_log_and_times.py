"""``gate --server ... verify attestation``: the recorded answer shows the log entry and times.

A gate server verifies a real keyless bundle (sigstore-conformance, with an inclusion
promise, an inclusion proof and an RFC 3161 timestamp) attached as a referrer in a real
registry; the CLI prints the answer it got back, built from the verification record.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rfc3161_client import decode_timestamp_response

from gate.cli import main
from gate.config import load_config
from gate.oci import Descriptor, ImageRef, OciLayout, encode_manifest, referrers_tag
from gate.oci import media as oci_media
from tests.conftest import RunningGate
from tests.registry_support import RegistryServer

CASE = (
    Path(__file__).resolve().parents[3]
    / ".."
    / "shared"
    / "conformance"
    / "sigstore"
    / "test"
    / "assets"
    / "bundle-verify"
    / "intoto-with-custom-trust-root"
)
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"
SLSA = "https://slsa.dev/provenance/v1"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def attested(plain_registry: RegistryServer, tmp_path: Path) -> str:
    """A reference (by digest) to a subject whose referrers hold the corpus bundle."""
    digest = "sha256:" + hashlib.sha256((CASE / "artifact").read_bytes()).hexdigest()
    layout = OciLayout.create(tmp_path / "layout")
    config = layout.write_blob(b"{}", oci_media.OCI_CONFIG)
    layer = layout.write_blob((CASE / "bundle.sigstore.json").read_bytes(), oci_media.SIGSTORE_BUNDLE_V03)
    member = layout.write_manifest(
        encode_manifest(
            config,
            [layer],
            media_type=oci_media.OCI_MANIFEST,
            subject=Descriptor(oci_media.OCI_MANIFEST, digest, 1234),
            artifact_type=oci_media.SIGSTORE_BUNDLE_V03,
        )
    )
    layout.write_index([member], tag=referrers_tag(digest))
    repository = f"remote/attested-{uuid.uuid4().hex[:8]}"
    plain_registry.client().copy(
        layout,
        ImageRef.parse(f"local/app:{referrers_tag(digest)}"),
        plain_registry.ref(repository, referrers_tag(digest)),
    )
    return f"{plain_registry.host}/{repository}@{digest}"


def test_the_remote_answer_shows_the_recorded_log_entry_and_times(
    attested: str,
    plain_registry: RegistryServer,
    serve_gate: Callable[..., RunningGate],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL", "GATE_TRUSTED_ROOT"):
        monkeypatch.delenv(name, raising=False)
    server_config = tmp_path / "server.yaml"
    server_config.write_text(
        f"registry:\n  insecure: ['{plain_registry.host}']\n"
        f"signatures:\n  trusted_root: '{CASE / 'trusted_root.json'}'\n"
    )
    server = serve_gate(
        load_config(
            server_config,
            {
                "GATE_DATA_DIR": str(tmp_path / "server"),
                "GATE_GRPC_LISTEN": "127.0.0.1:0",
                "GATE_WEBHOOK_LISTEN": "127.0.0.1:0",
                "GATE_METRICS_LISTEN": "127.0.0.1:0",
            },
        )
    )
    material = json.loads((CASE / "bundle.sigstore.json").read_bytes())["verificationMaterial"]
    entry = material["tlogEntries"][0]
    token = material["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"]
    gen_time = decode_timestamp_response(base64.b64decode(token)).tst_info.gen_time
    integrated = datetime.fromtimestamp(int(entry["integratedTime"]), UTC)
    args = [
        "--server", server.addresses.grpc, "verify", "attestation", attested, "--type", SLSA,
        "--certificate-identity", BEACON, "--certificate-oidc-issuer", ISSUER,
    ]  # fmt: skip

    code, out, err = _run(capsys, *args)
    assert (code, err) == (0, ""), err
    summary, line = out.splitlines()
    assert summary.startswith(f"Verified OK: {attested}@{attested.rpartition('@')[2]} (recorded as ")
    assert line == (
        f"  attestation {SLSA} by {BEACON} (tlog index {entry['logIndex']}, "
        f"tlog tree localhost:8000 - 124190645164477 index {entry['inclusionProof']['logIndex']}, "
        f"integrated {integrated.isoformat()}, timestamp {gen_time.isoformat()})"
    )

    code, out, err = _run(capsys, *args, "-o", "json")
    assert (code, err) == (0, ""), err
    [answer] = json.loads(out)["attestations"]
    assert answer["tlogIndex"] == entry["logIndex"]  # int64 is a string in proto JSON
    assert answer["tlogTree"] == "localhost:8000 - 124190645164477"
    # Index 0 is the default value, which proto JSON leaves out.
    assert answer.get("tlogTreeIndex", "0") == entry["inclusionProof"]["logIndex"]
    assert answer["integratedTime"] == integrated.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert answer["timestamp"] == gen_time.strftime("%Y-%m-%dT%H:%M:%SZ")
