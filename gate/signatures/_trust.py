"""Trust material: Fulcio and private CAs, Rekor and CT log keys, timestamp authorities.

Everything comes from bytes the caller supplies (a ``trusted_root.json``, PEM keys or
CA bundles); nothing is fetched. Validity windows are closed intervals, as the Sigstore
TrustedRoot specification defines them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar, cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from pydantic import ValidationError

from gate.errors import InvalidArgument
from gate.signatures._json import check_json_shape
from gate.signatures._keys import PublicKey, load_public_key, public_key_from_crypto

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot as SigstoreTrustedRoot
    from sigstore_models.trustroot.v1 import CertificateAuthority as _ModelAuthority
    from sigstore_models.trustroot.v1 import TransparencyLogInstance as _ModelLog

T = TypeVar("T")

MAX_TRUST_ROOT_BYTES = 4 * 1024 * 1024
# Members of any one list or object of a trusted root, and lists and objects in all (Sigstore's
# public-good root has a few authorities and logs of a few certificates each: 41 in all).
MAX_TRUST_ROOT_MEMBERS = 256
MAX_TRUST_ROOT_CONTAINERS = 4096
MAX_PEM_BUNDLE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Validity:
    """A closed time interval; an open end means "still valid"."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        """True when ``moment`` lies in [start, end]."""
        if self.start is not None and moment < self.start:
            return False
        return self.end is None or moment <= self.end


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA chain (intermediates first, root last) trusted during ``validity``."""

    certificates: tuple[x509.Certificate, ...]
    validity: Validity = Validity()
    name: str = ""

    @property
    def root(self) -> x509.Certificate:
        """The trust anchor (the last certificate)."""
        return self.certificates[-1]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        """Certificates between a leaf and the root."""
        return self.certificates[:-1]


@dataclass(frozen=True)
class LogKey:
    """The key of a transparency log (Rekor or CT) with its id and validity."""

    key: PublicKey
    log_id: bytes
    validity: Validity = Validity()
    name: str = ""


@dataclass(frozen=True)
class TrustRoot:
    """What signatures may chain to and which logs and timestamp authorities are believed.

    Build with :meth:`from_trusted_root_json`, :meth:`from_pem` or combine two with
    :meth:`merged`. Instances are immutable and safe to share between threads.

    Sigstore bundles are verified by the ``sigstore`` library against ``trusted_root_json``
    as parsed; the other fields are what gate's own verifier (simple signing, DSSE
    layers, blob signatures, key-based bundles' signatures) trusts. The constructors keep
    the two consistent; PEM material merged in is not seen by bundle verification.
    """

    fulcio: tuple[CertificateAuthority, ...] = ()
    rekor: tuple[LogKey, ...] = ()
    ct_logs: tuple[LogKey, ...] = ()
    tsas: tuple[CertificateAuthority, ...] = ()
    private_cas: tuple[CertificateAuthority, ...] = ()
    trusted_root_json: bytes | None = field(default=None, repr=False)
    # Not init fields: dataclasses.replace() must give a changed trust a cache of its own.
    _cache: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False, hash=False
    )

    def cached(self, name: str, build: Callable[[], T]) -> T:
        """The object ``build`` makes for this trust, built once (parsed roots, verifiers)."""
        with self._lock:
            if name not in self._cache:
                self._cache[name] = build()
            return cast(T, self._cache[name])

    @classmethod
    def from_trusted_root_json(cls, data: bytes) -> TrustRoot:
        """Parse a Sigstore ``trusted_root.json`` (media type ``...trustedroot+json;version=0.1``).

        Raises:
            InvalidArgument: the document is malformed (a key without ``validFor.start``
                is malformed, as the specification says), names a key twice in one object
                (Go's protojson, as cosign reads it, refuses that), or holds a list or object
                of more than 256 members or more than 4096 lists and objects in all.
        """
        from sigstore_models.trustroot import v1 as trustroot_v1

        if len(data) > MAX_TRUST_ROOT_BYTES:
            raise InvalidArgument("trusted_root", f"{len(data)} bytes exceeds {MAX_TRUST_ROOT_BYTES}")
        check_json_shape(
            data, "trusted_root", max_members=MAX_TRUST_ROOT_MEMBERS, max_containers=MAX_TRUST_ROOT_CONTAINERS
        )
        try:
            inner = trustroot_v1.TrustedRoot.from_json(data)
        except (ValidationError, ValueError) as exc:
            raise InvalidArgument("trusted_root", f"not a valid trusted root: {_summary(exc)}") from None
        if inner.media_type != "application/vnd.dev.sigstore.trustedroot+json;version=0.1":
            raise InvalidArgument("trusted_root", f"unsupported mediaType {inner.media_type!r}")
        try:
            return cls(
                fulcio=tuple(_authority(ca) for ca in inner.certificate_authorities),
                rekor=tuple(_log_key(log) for log in inner.tlogs),
                ct_logs=tuple(_log_key(log) for log in inner.ctlogs),
                tsas=tuple(_authority(ca) for ca in inner.timestamp_authorities),
                trusted_root_json=data,
            )
        except ValueError as exc:
            raise InvalidArgument("trusted_root", _summary(exc)) from None

    @classmethod
    def from_pem(
        cls,
        *,
        fulcio_roots: bytes = b"",
        fulcio_intermediates: bytes = b"",
        rekor_keys: tuple[bytes, ...] = (),
        ct_keys: tuple[bytes, ...] = (),
        ca_roots: bytes = b"",
        ca_intermediates: bytes = b"",
    ) -> TrustRoot:
        """Trust from PEM material: Fulcio roots, Rekor/CT log keys and private-PKI CA bundles.

        A Rekor or CT key's log id is the SHA-256 of its DER SubjectPublicKeyInfo, as the
        logs compute it.

        Raises:
            InvalidArgument: a bundle or key does not parse.
        """
        fulcio_mid = _certificates(fulcio_intermediates, "fulcio_intermediates")
        ca_mid = _certificates(ca_intermediates, "ca_intermediates")
        return cls(
            fulcio=tuple(
                CertificateAuthority((*fulcio_mid, root), name=root.subject.rfc4514_string())
                for root in _certificates(fulcio_roots, "fulcio_roots")
            ),
            rekor=tuple(_pem_log_key(k) for k in rekor_keys),
            ct_logs=tuple(_pem_log_key(k) for k in ct_keys),
            private_cas=tuple(
                CertificateAuthority((*ca_mid, root), name=root.subject.rfc4514_string())
                for root in _certificates(ca_roots, "ca_roots")
            ),
        )

    def merged(self, other: TrustRoot) -> TrustRoot:
        """Trust in both; the ``trusted_root.json`` of ``self`` wins when both have one."""
        return TrustRoot(
            fulcio=self.fulcio + other.fulcio,
            rekor=self.rekor + other.rekor,
            ct_logs=self.ct_logs + other.ct_logs,
            tsas=self.tsas + other.tsas,
            private_cas=self.private_cas + other.private_cas,
            trusted_root_json=self.trusted_root_json or other.trusted_root_json,
        )

    def rekor_key(self, log_id: bytes) -> LogKey | None:
        """The Rekor key whose log id is ``log_id``."""
        return next((k for k in self.rekor if k.log_id == log_id), None)

    def ct_key(self, log_id: bytes) -> LogKey | None:
        """The CT log key whose log id is ``log_id``."""
        return next((k for k in self.ct_logs if k.log_id == log_id), None)

    @property
    def sigstore_trusted_root(self) -> SigstoreTrustedRoot | None:
        """The same trust for the ``sigstore`` library (only when built from a trusted_root.json)."""
        if self.trusted_root_json is None:
            return None
        return self.cached("sigstore-trusted-root", self._build_sigstore_root)

    def _build_sigstore_root(self) -> SigstoreTrustedRoot:
        assert self.trusted_root_json is not None
        from sigstore.models import TrustedRoot as SigstoreRoot
        from sigstore_models.trustroot import v1 as trustroot_v1

        inner = trustroot_v1.TrustedRoot.from_json(self.trusted_root_json)
        for authority in inner.timestamp_authorities:
            # sigstore 4.5 compares a timestamp with the TSA's validity end as "<" although
            # the interval is closed. Timestamps are datetimes with microsecond resolution,
            # so "< end + 1 us" is exactly "<= end".
            if authority.valid_for.end is not None:
                authority.valid_for.end = authority.valid_for.end + timedelta(microseconds=1)
        return SigstoreRoot(inner)


def _summary(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:3]) if lines else type(exc).__name__


def _authority(ca: _ModelAuthority) -> CertificateAuthority:
    certs = tuple(x509.load_der_x509_certificate(c.raw_bytes) for c in ca.cert_chain.certificates)
    if not certs:
        raise ValueError(f"certificate authority {ca.uri!r} has no certificates")
    valid = ca.valid_for
    return CertificateAuthority(certs, Validity(valid.start, valid.end), ca.uri or "")


def _log_key(log: _ModelLog) -> LogKey:
    public = log.public_key
    if not public.raw_bytes:
        raise ValueError(f"log {log.base_url!r} has no public key")
    valid = public.valid_for
    if valid is None or valid.start is None:
        raise ValueError(f"log {log.base_url!r}: public key has no validFor.start")
    return LogKey(
        key=load_public_key(bytes(public.raw_bytes)),
        log_id=bytes(log.log_id.key_id),
        validity=Validity(valid.start, valid.end),
        name=log.base_url,
    )


def _pem_log_key(data: bytes) -> LogKey:
    key = load_public_key(data)
    return LogKey(key=key, log_id=hashlib.sha256(key.spki_der).digest(), name=key.fingerprint)


def _certificates(data: bytes, what: str) -> tuple[x509.Certificate, ...]:
    if not data.strip():
        return ()
    if len(data) > MAX_PEM_BUNDLE_BYTES:
        raise InvalidArgument(what, f"{len(data)} bytes exceeds {MAX_PEM_BUNDLE_BYTES}")
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except ValueError as exc:
        raise InvalidArgument(what, f"not a PEM certificate bundle ({_summary(exc)})") from None


def certificate_key(cert: x509.Certificate) -> PublicKey:
    """The certificate's public key as a :class:`PublicKey`.

    Raises:
        InvalidArgument: the key does not parse or is of an algorithm gate does not verify with.
    """
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        # The key is parsed only here, not when the certificate is loaded.
        raise InvalidArgument(
            "certificate",
            f"got a public key of algorithm {_algorithm_oid(cert)} that does not load ({_summary(exc)}), "
            "expected an ECDSA, RSA or Ed25519 key",
        ) from None
    return public_key_from_crypto(key)


def _algorithm_oid(cert: x509.Certificate) -> str:
    try:
        return cert.public_key_algorithm_oid.dotted_string
    except ValueError:
        return "(unreadable)"
