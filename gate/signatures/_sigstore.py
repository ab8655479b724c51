"""The ``sigstore`` library's verifier, adapted; imported only when a bundle is verified.

Importing ``sigstore`` costs about half a second, so nothing on the simple-signing path
imports this module.
"""

from __future__ import annotations

from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore import dsse as sigstore_dsse
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import Bundle
from sigstore.verify import Verifier

from gate.errors import InvalidArgument
from gate.signatures._bundle import entry_body
from gate.signatures._certs import Identity
from gate.signatures._rekor import RekorEntry, check_dsse_entry, unix_time


class IdentityPolicy:
    """gate's identities as a sigstore ``VerificationPolicy`` (any identity may match)."""

    def __init__(self, identities: tuple[Identity, ...]) -> None:
        self._identities = identities

    def verify(self, cert: x509.Certificate) -> None:
        """Raise sigstore's ``VerificationError`` unless some identity matches ``cert``."""
        problems = [identity.mismatch(cert) for identity in self._identities]
        if all(problems):
            raise SigstoreVerificationError(problems[0] or "identity mismatch")


class OfflineVerifier(Verifier):
    """``Verifier`` that also takes Rekor v1 ``intoto`` entries (see the module docstring)."""

    def _establish_time(self, bundle: Bundle) -> list[Any]:
        entry = bundle.log_entry._inner
        if entry.kind_version.kind != "intoto":
            return super()._establish_time(bundle)
        from sigstore._internal.timestamp import TimestampSource, TimestampVerificationResult

        verified: list[Any] = []
        if bundle.verification_material.timestamp_verification_data:
            if not self._trusted_root.get_timestamp_authorities():
                raise SigstoreVerificationError("bundle has signed timestamps but no TSA is trusted")
            verified.extend(self._verify_timestamp_authority(bundle))
        if entry.integrated_time and entry.inclusion_promise:
            moment = unix_time(int(entry.integrated_time), "bundle log entry integratedTime")
            verified.append(
                TimestampVerificationResult(source=TimestampSource.TRANSPARENCY_SERVICE, time=moment)
            )
        return verified

    def verify_dsse(self, bundle: Bundle, policy: Any) -> tuple[str, bytes]:
        kind = bundle.log_entry._inner.kind_version
        if kind.kind != "intoto":
            return super().verify_dsse(bundle, policy)
        self._verify_common_signing_cert(bundle, policy)
        envelope = bundle._dsse_envelope
        if envelope is None:
            raise SigstoreVerificationError("intoto log entry but the bundle has no DSSE envelope")
        sigstore_dsse._verify(
            cast(ec.EllipticCurvePublicKey, bundle.signing_certificate.public_key()), envelope
        )
        # Only the body is compared here; the position is reported by the caller.
        inner = bundle.log_entry._inner
        entry = RekorEntry(
            log_index=None, log_id=bytes(inner.log_id.key_id), integrated_time=None, body=entry_body(inner)
        )
        try:
            check_dsse_entry(
                entry,
                payload=envelope._inner.payload,
                signatures=[s.sig for s in envelope._inner.signatures],
                signer=bundle.signing_certificate,
            )
        except InvalidArgument as exc:
            raise SigstoreVerificationError(exc.message) from None
        return envelope._inner.payload_type, envelope._inner.payload
