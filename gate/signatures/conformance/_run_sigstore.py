"""The Sigstore conformance corpus: one folder per case, ``_fail`` suffix = must not verify.

Rules (from sigstore-conformance): the artifact is ``<case>/artifact`` or the shared
``a.txt``; identity and issuer come from files or the suite's defaults; ``key.pub`` means a
managed-key bundle; ``trusted_root.json`` overrides the production root. Every case runs
twice, with the artifact's bytes and with its digest only, and both runs must agree.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gate.errors import EvidenceError
from gate.signatures._bundle import verify_bundle
from gate.signatures._certs import Identity
from gate.signatures._keys import load_public_key
from gate.signatures._policy import SignaturePolicy
from gate.signatures._results import Verification
from gate.signatures._trust import TrustRoot
from gate.signatures.conformance._report import CaseResult, Report, outcome

DEFAULT_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"
_PRODUCTION_ROOT = Path("trust") / "production-trusted_root.json"


def _cases_folder(cases_dir: Path) -> Path:
    nested = cases_dir / "test" / "assets" / "bundle-verify"
    return nested if nested.is_dir() else cases_dir


def _production_root(cases_dir: Path) -> Path | None:
    for folder in (cases_dir, *cases_dir.resolve().parents[:4]):
        if (folder / _PRODUCTION_ROOT).is_file():
            return folder / _PRODUCTION_ROOT
    return None


def run_sigstore(cases_dir: Path) -> Report:
    """Run every case folder (one with ``bundle.sigstore.json``) under ``cases_dir``."""
    folder = _cases_folder(cases_dir)
    production = _production_root(cases_dir)
    production_trust = TrustRoot.from_trusted_root_json(production.read_bytes()) if production else None
    default_artifact = folder / "a.txt"
    report = Report()
    for bundle_path in sorted(folder.glob("*/bundle.sigstore.json")):
        report.results.append(_run_case(bundle_path.parent, default_artifact, production_trust))
    return report


def _run_case(case: Path, default_artifact: Path, production: TrustRoot | None) -> CaseResult:
    expect_pass = not case.name.endswith("_fail")
    try:
        by_bytes, by_digest = _verify_both_ways(case, default_artifact, production)
    except (EvidenceError, OSError) as exc:
        # An unusable key or trusted root in the case is a failed verification.
        message = exc.message if isinstance(exc, EvidenceError) else str(exc)
        return outcome(case.name, expect_pass, False, message)
    if by_bytes.verified != by_digest.verified:
        return CaseResult(
            case.name,
            False,
            "pass" if expect_pass else "fail",
            f"artifact bytes and digest disagree: bytes={by_bytes.verified} ({by_bytes.reason}), "
            f"digest={by_digest.verified} ({by_digest.reason})",
        )
    return outcome(case.name, expect_pass, by_bytes.verified, by_bytes.reason)


def _text(path: Path, default: str) -> str:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else default


def _verify_both_ways(
    case: Path, default_artifact: Path, production: TrustRoot | None
) -> tuple[Verification, Verification]:
    if (case / "trusted_root.json").is_file():
        trust = TrustRoot.from_trusted_root_json((case / "trusted_root.json").read_bytes())
    elif production is not None:
        trust = production
    else:
        raise EvidenceError(
            "no trusted_root.json in the case and no trust/production-trusted_root.json found"
        )
    if (case / "key.pub").is_file():
        policy = SignaturePolicy(keys=(load_public_key((case / "key.pub").read_bytes()),))
    else:
        identity = Identity(
            subject=_text(case / "identity", DEFAULT_IDENTITY), issuer=_text(case / "issuer", DEFAULT_ISSUER)
        )
        policy = SignaturePolicy(identities=(identity,))
    artifact_path = case / "artifact" if (case / "artifact").is_file() else default_artifact
    artifact = artifact_path.read_bytes()
    bundle = (case / "bundle.sigstore.json").read_bytes()
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    return (
        verify_bundle(bundle, policy=policy, trust=trust, artifact=artifact),
        verify_bundle(bundle, policy=policy, trust=trust, digest=digest),
    )
