"""RFC 3161 timestamps of key-based Sigstore bundles, verified against the trust root's TSAs.

sigstore's ``Verifier`` checks the timestamps of keyless bundles only; a key-based bundle is
verified by gate itself, so its timestamps are checked here with the same library
(``rfc3161_client``) and the same rules: the token's signer chains to a timestamp authority
of the trust root, its message imprint is the hash of the bundle's signature and its
``genTime`` lies in that authority's validity (a closed interval, as everywhere in gate).

Unlike sigstore, which skips a timestamp it cannot verify, gate refuses the bundle: the
timestamp is evidence offered with it, and evidence that does not hold is a failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from gate.errors import InvalidArgument
from gate.signatures._trust import CertificateAuthority, TrustRoot

if TYPE_CHECKING:
    from rfc3161_client import TimeStampResponse

FIELD = "bundle.verificationMaterial.timestampVerificationData.rfc3161Timestamps"
# sigstore-go and sigstore-python refuse more: each timestamp costs a CMS verification.
MAX_TIMESTAMPS = 32

_IMPRINT_HASHES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}


def verified_timestamp(
    timestamps: Sequence[bytes], signatures: Sequence[bytes], trust: TrustRoot
) -> datetime | None:
    """The earliest time a trusted TSA attests one of ``signatures`` existed.

    ``timestamps`` are DER ``TimeStampResp`` structures; ``signatures`` the signatures of
    the bundle that trusted keys verified (the timestamped message is the raw signature,
    as Sigstore clients request it). None when the bundle carries no timestamp.

    Raises:
        InvalidArgument: a timestamp is malformed, over another message, signed by no
            trusted TSA or made outside its TSA's validity, or the trust root has no TSA.
    """
    if not timestamps:
        return None
    if len(timestamps) > MAX_TIMESTAMPS:
        raise InvalidArgument(FIELD, f"got {len(timestamps)} timestamps, expected at most {MAX_TIMESTAMPS}")
    if len(set(timestamps)) != len(timestamps):
        raise InvalidArgument(FIELD, "got the same timestamp twice, expected each at most once")
    # A chain needs the TSA's own certificate and a root; sigstore skips shorter ones too.
    authorities = [ca for ca in trust.tsas if len(ca.certificates) >= 2]
    if not authorities:
        raise InvalidArgument(
            FIELD,
            f"got {len(timestamps)} signed timestamp(s), expected a trust root with a timestamp "
            "authority to verify them (it has none)",
        )
    return min(
        _verify_one(f"{FIELD}[{index}]", raw, signatures, authorities) for index, raw in enumerate(timestamps)
    )


def _verify_one(
    what: str, raw: bytes, signatures: Sequence[bytes], authorities: list[CertificateAuthority]
) -> datetime:
    from rfc3161_client import decode_timestamp_response

    # The parser runs on hostile bytes; any exception it raises means "not a timestamp".
    try:
        response = decode_timestamp_response(raw)
        info = response.tst_info
        algorithm = info.message_imprint.hash_algorithm.dotted_string
        imprint = info.message_imprint.message
        when = info.gen_time
    except Exception:
        raise InvalidArgument(
            what, "got bytes that are not a DER RFC 3161 TimeStampResp with a token"
        ) from None
    if algorithm not in _IMPRINT_HASHES:
        raise InvalidArgument(
            what, f"got message imprint algorithm {algorithm}, expected SHA-256, SHA-384 or SHA-512"
        )
    name = _IMPRINT_HASHES[algorithm]
    message = next((s for s in signatures if hashlib.new(name, s).digest() == imprint), None)
    if message is None:
        expected = hashlib.new(name, signatures[0]).hexdigest() if signatures else "(no signature)"
        raise InvalidArgument(
            what,
            f"got a timestamp over {name} {imprint.hex()}, "
            f"expected one over the signature ({name} {expected})",
        )
    problems = [_authority_problem(ca, response, message, when) for ca in authorities]
    if all(problems):
        raise InvalidArgument(
            what,
            "got a timestamp no timestamp authority of the trust root vouches for, expected one signed "
            f"by a trusted TSA within its validity ({'; '.join(p for p in problems if p)})",
        )
    return when


def _authority_problem(
    ca: CertificateAuthority, response: TimeStampResponse, message: bytes, when: datetime
) -> str:
    """Why ``ca`` does not vouch for the timestamp, or "" when it does."""
    from rfc3161_client import VerifierBuilder

    label = ca.name or ca.certificates[0].subject.rfc4514_string()
    # The library's CMS and chain checks run on hostile input too: whatever fails is a refusal.
    # So does building the verifier, which refuses a chain that names a certificate twice.
    try:
        builder = VerifierBuilder().tsa_certificate(ca.certificates[0]).add_root_certificate(ca.root)
        for certificate in ca.certificates[1:-1]:
            builder = builder.add_intermediate_certificate(certificate)
        builder.build().verify_message(response, message)
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{label}: {text[:200]}"
    if not ca.validity.contains(when):
        start = ca.validity.start.isoformat() if ca.validity.start else "the beginning"
        end = ca.validity.end.isoformat() if ca.validity.end else "open"
        return f"{label}: genTime {when.isoformat()} is outside its validity {start} to {end}"
    return ""
