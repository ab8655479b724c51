"""Certificates: chain building at a moment, Fulcio identity and issuer, embedded SCTs."""

from __future__ import annotations

import hashlib
import importlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from gate.errors import InvalidArgument
from gate.signatures._trust import CertificateAuthority, TrustRoot

# RE2 (Go's engine, as cosign and Kyverno use): same syntax, linear time. No type stubs.
_re2: Any = importlib.import_module("re2")
_RE2_OPTIONS = _re2.Options()
_RE2_OPTIONS.log_errors = False

FULCIO_OID_PREFIX = "1.3.6.1.4.1.57264.1."
OID_ISSUER_V1 = ObjectIdentifier(FULCIO_OID_PREFIX + "1")
OID_ISSUER_V2 = ObjectIdentifier(FULCIO_OID_PREFIX + "8")
OID_OTHERNAME_SAN = ObjectIdentifier(FULCIO_OID_PREFIX + "7")
MAX_CHAIN_CERTIFICATES = 10
MAX_CERTIFICATE_PEM_BYTES = 64 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=512)
def _compile(pattern: str) -> Any:
    try:
        return _re2.compile(pattern, options=_RE2_OPTIONS)
    except _re2.error:
        raise InvalidArgument("regexp", f"not a valid RE2 regular expression: {pattern!r}") from None


@dataclass(frozen=True)
class Identity:
    """An accepted certificate identity: subject (SAN) and OIDC issuer, each exact or a regexp.

    Regular expressions are RE2 and anchored (they must match the whole value), so
    ``.*@example.com`` does not accept ``x@example.com.evil``. An empty field accepts anything,
    but at least one of the subject fields must be set.
    """

    subject: str = ""
    subject_regexp: str = ""
    issuer: str = ""
    issuer_regexp: str = ""
    extensions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not (self.subject or self.subject_regexp):
            raise InvalidArgument("identity", "a certificate identity or identity regexp is required")
        for pattern in (self.subject_regexp, self.issuer_regexp):
            if pattern:
                _compile(pattern)
        for oid, _ in self.extensions:
            if not oid.startswith(FULCIO_OID_PREFIX):
                raise InvalidArgument("identity.extensions", f"{oid!r} is not a Fulcio extension OID")

    def mismatch(self, cert: x509.Certificate) -> str | None:
        """Why ``cert`` does not carry this identity, or None when it does."""
        subjects, issuer = certificate_subjects(cert), certificate_issuer(cert)
        if self.subject and self.subject not in subjects:
            return f"certificate identity {subjects} does not match expected {self.subject!r}"
        if self.subject_regexp and not any(_compile(self.subject_regexp).fullmatch(s) for s in subjects):
            return f"certificate identity {subjects} does not match regexp {self.subject_regexp!r}"
        if self.issuer and issuer != self.issuer:
            return f"certificate OIDC issuer {issuer!r} does not match expected {self.issuer!r}"
        if self.issuer_regexp and (issuer is None or not _compile(self.issuer_regexp).fullmatch(issuer)):
            return f"certificate OIDC issuer {issuer!r} does not match regexp {self.issuer_regexp!r}"
        for oid, expected in self.extensions:
            value = fulcio_extension(cert, oid)
            if value != expected:
                return f"certificate extension {oid} is {value!r}, expected {expected!r}"
        return None

    def matching_subject(self, cert: x509.Certificate) -> str:
        """The SAN that satisfied this identity (the first SAN when only the issuer mattered)."""
        subjects = certificate_subjects(cert)
        for value in subjects:
            if value == self.subject or (
                self.subject_regexp and _compile(self.subject_regexp).fullmatch(value)
            ):
                return value
        return subjects[0] if subjects else ""


def load_certificate(data: bytes, what: str = "certificate") -> x509.Certificate:
    """Parse one certificate (PEM, or base64 of PEM as ``cosign sign-blob`` writes, or DER).

    Raises:
        InvalidArgument: the bytes are not a certificate.
    """
    certs = load_certificates(data, what)
    if len(certs) != 1:
        raise InvalidArgument(what, f"expected one certificate, got {len(certs)}")
    return certs[0]


def load_certificates(data: bytes, what: str = "certificate chain") -> list[x509.Certificate]:
    """Parse PEM certificates (or base64 of PEM, or one DER certificate), at most 10.

    Raises:
        InvalidArgument: the bytes are not certificates or there are too many.
    """
    import base64
    import binascii

    if len(data) > MAX_CERTIFICATE_PEM_BYTES:
        raise InvalidArgument(what, f"{len(data)} bytes exceeds {MAX_CERTIFICATE_PEM_BYTES}")
    text = data.strip()
    if text and not text.startswith(b"-----") and not text.startswith(b"\x30"):
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if decoded.lstrip().startswith(b"-----BEGIN"):
            text = decoded.strip()
    try:
        if text.startswith(b"\x30"):
            certs = [x509.load_der_x509_certificate(text)]
        else:
            certs = x509.load_pem_x509_certificates(text)
    except ValueError:
        raise InvalidArgument(what, "not a PEM or DER certificate") from None
    if len(certs) > MAX_CHAIN_CERTIFICATES:
        raise InvalidArgument(what, f"{len(certs)} certificates exceeds {MAX_CHAIN_CERTIFICATES}")
    return certs


def certificate_subjects(cert: x509.Certificate) -> list[str]:
    """The identities a certificate names: SAN emails, URIs and Fulcio's username otherName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return []
    found: list[str] = []
    found.extend(san.get_values_for_type(x509.RFC822Name))
    found.extend(san.get_values_for_type(x509.UniformResourceIdentifier))
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == OID_OTHERNAME_SAN:
            value = _der_utf8(other.value)
            if value is not None:
                found.append(value)
    return found


def fulcio_extension(cert: x509.Certificate, oid: str) -> str | None:
    """A Fulcio extension's text: ``.1.1``-``.1.6`` hold raw bytes, ``.1.8`` and up a DER UTF8String."""
    try:
        raw = cert.extensions.get_extension_for_oid(ObjectIdentifier(oid)).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return None
    if not isinstance(raw, x509.UnrecognizedExtension):
        return None
    suffix = oid.removeprefix(FULCIO_OID_PREFIX)
    if suffix.isdigit() and 1 <= int(suffix) <= 6:
        try:
            return raw.value.decode()
        except UnicodeDecodeError:
            return None
    return _der_utf8(raw.value)


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer: extension ``.1.8`` when present, else the deprecated ``.1.1``."""
    return fulcio_extension(cert, OID_ISSUER_V2.dotted_string) or fulcio_extension(
        cert, OID_ISSUER_V1.dotted_string
    )


def _der_utf8(value: bytes) -> str | None:
    # Tag 0x0C (UTF8String) with a short or long form length; anything else is not the
    # encoding Fulcio uses.
    if len(value) < 2 or value[0] != 0x0C:
        return None
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            return None
        length, offset = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if len(value) != offset + length:
        return None
    try:
        return value[offset:].decode()
    except UnicodeDecodeError:
        return None


def _key_usage_if_present(_policy: object, _cert: x509.Certificate, ext: x509.KeyUsage | None) -> None:
    # Go's x509 (and so cosign) accepts CA certificates without KeyUsage; when the
    # extension is there it must allow certificate signing.
    if ext is not None and not ext.key_cert_sign:
        raise ValueError("KeyUsage does not allow certificate signing")


def _ca_policy(*, lenient_key_usage: bool) -> ExtensionPolicy:
    # Fulcio's intermediate carries the codeSigning EKU only; like sigstore-go, any EKU is
    # accepted on CAs and the leaf's EKU is checked for code signing separately.
    policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None
    )
    if lenient_key_usage:
        policy = policy.may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _key_usage_if_present)
    return policy


# Fulcio and code-signing leaves carry the codeSigning EKU, not the clientAuth a client
# verifier expects; EKU is checked separately where it matters.
_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None
)
_STRICT_CA = _ca_policy(lenient_key_usage=False)
_LENIENT_CA = _ca_policy(lenient_key_usage=True)


def verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    authorities: tuple[CertificateAuthority, ...],
    at: datetime,
    *,
    lenient_key_usage: bool = False,
) -> tuple[CertificateAuthority, list[x509.Certificate]] | str:
    """Build a chain from ``leaf`` to one of ``authorities`` valid at ``at``.

    An authority counts only when ``at`` lies inside its validity window. Returns the
    authority and the chain (leaf first), or the reason no chain was found.
    """
    reasons: list[str] = []
    for authority in authorities:
        if not authority.validity.contains(at):
            reasons.append(f"{authority.name or 'CA'} not valid at {at.isoformat()}")
            continue
        verifier = (
            PolicyBuilder()
            .store(Store([authority.root]))
            .time(at)
            .max_chain_depth(MAX_CHAIN_CERTIFICATES)
            .extension_policies(
                ca_policy=_LENIENT_CA if lenient_key_usage else _STRICT_CA, ee_policy=_EE_POLICY
            )
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, [*authority.intermediates, *intermediates])
        except (VerificationError, x509.UnsupportedGeneralNameType, ValueError) as exc:
            reasons.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            continue
        return authority, list(verified.chain)
    if not authorities:
        return "no certificate authority is trusted"
    return "certificate does not chain to a trusted CA at " + at.isoformat() + ": " + "; ".join(reasons[:3])


def has_code_signing(cert: x509.Certificate) -> bool:
    """True when the certificate may sign code (KeyUsage digitalSignature and EKU codeSigning)."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return False
    return usage.digital_signature and ExtendedKeyUsageOID.CODE_SIGNING in extended


def verify_embedded_sct(leaf: x509.Certificate, issuer: x509.Certificate, trust: TrustRoot) -> str | None:
    """Check that a trusted CT log signed one of the leaf's embedded SCTs; None when one did.

    The signed data is RFC 6962's ``digitally-signed`` precertificate entry: the leaf's TBS
    without the SCT extension, bound to the SHA-256 of the issuer's key.
    """
    try:
        scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        return "certificate has no embedded SCT"
    except x509.DuplicateExtension as exc:
        return f"certificate has extension {exc.oid.dotted_string} twice"
    except ValueError:
        return "certificate's SCT list does not parse"
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    tbs = leaf.tbs_precertificate_bytes
    for sct in scts:
        moment = sct.timestamp if sct.timestamp.tzinfo else sct.timestamp.replace(tzinfo=UTC)
        log = trust.ct_key(sct.log_id)
        if log is None or not log.validity.contains(moment):
            continue
        millis = (moment - _EPOCH) // timedelta(milliseconds=1)
        signed = (
            struct.pack("!BBQH", 0, 0, millis, 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", len(sct.extension_bytes))
            + sct.extension_bytes
        )
        hash_name = sct.signature_hash_algorithm.name if sct.signature_hash_algorithm else "sha256"
        if log.key.verify(sct.signature, signed, hash_name):
            return None
    return "no embedded SCT is signed by a trusted CT log"
