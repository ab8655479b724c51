"""Signature and attestation verification, and signing, with no network.

Data in, results out: callers fetch signatures, bundles and trust material and pass the
bytes; every check failure is a :class:`Verification` with ``verified=False`` and the
reason. Exceptions (``gate.errors``) are raised only for bad arguments (an unparsable key
given as policy, a malformed digest).

* :func:`verify_simple_signing`: cosign image signatures (tag ``sha256-<hex>.sig``),
  key-based, keyless (Fulcio + Rekor SET) or private PKI.
* :func:`verify_attestation`: DSSE in-toto attestations (``.att`` layers, ``attest-blob``).
* :func:`verify_blob`: detached blob signatures (key, or certificate with a Rekor SET).
* :func:`verify_bundle`: Sigstore bundles v0.1-v0.3, keyless or key-based, with the
  artifact or its digest only.
* :func:`sign_simple_signing`, :func:`make_statement`, :func:`sign_dsse`: what gate signs.
* :func:`verify_image` (with :class:`ImagePolicy`): discovery in an image source
  (``gate.oci``) plus the checks above; imported on first use.
"""

from typing import TYPE_CHECKING, Any

from gate.signatures._bundle import key_hint, verify_bundle
from gate.signatures._certs import (
    Identity,
    certificate_issuer,
    certificate_subjects,
    fulcio_extension,
    load_certificate,
    load_certificates,
)
from gate.signatures._dsse import (
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    Statement,
    pae,
    parse_envelope,
    parse_statement,
)
from gate.signatures._keys import PublicKey, load_public_key
from gate.signatures._policy import SignaturePolicy
from gate.signatures._results import Verification
from gate.signatures._sign import (
    SigningKey,
    docker_reference,
    load_private_key,
    make_statement,
    sign_dsse,
    sign_simple_signing,
)
from gate.signatures._signer import SignerEvidence
from gate.signatures._trust import CertificateAuthority, LogKey, TrustRoot, Validity
from gate.signatures._verify import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE,
    DSSE_MEDIA_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SignatureLayer,
    verify_attestation,
    verify_blob,
    verify_simple_signing,
    verify_statement,
)

if TYPE_CHECKING:
    from gate.signatures._image import AttestationRequirement, ImagePolicy, ImageVerification, verify_image

_IMAGE_NAMES = ("AttestationRequirement", "ImagePolicy", "ImageVerification", "verify_image")


def __getattr__(name: str) -> Any:
    # The image path pulls in the registry client; plain verification does not need it.
    if name in _IMAGE_NAMES:
        from gate.signatures import _image

        return getattr(_image, name)
    raise AttributeError(f"module 'gate.signatures' has no attribute {name!r}")


__all__ = [
    "ANNOTATION_BUNDLE",
    "ANNOTATION_CERTIFICATE",
    "ANNOTATION_CHAIN",
    "ANNOTATION_SIGNATURE",
    "DSSE_MEDIA_TYPE",
    "INTOTO_PAYLOAD_TYPE",
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "AttestationRequirement",
    "CertificateAuthority",
    "Envelope",
    "Identity",
    "ImagePolicy",
    "ImageVerification",
    "LogKey",
    "PublicKey",
    "SignatureLayer",
    "SignaturePolicy",
    "SignerEvidence",
    "SigningKey",
    "Statement",
    "TrustRoot",
    "Validity",
    "Verification",
    "certificate_issuer",
    "certificate_subjects",
    "docker_reference",
    "fulcio_extension",
    "key_hint",
    "load_certificate",
    "load_certificates",
    "load_private_key",
    "load_public_key",
    "make_statement",
    "pae",
    "parse_envelope",
    "parse_statement",
    "sign_dsse",
    "sign_simple_signing",
    "verify_attestation",
    "verify_blob",
    "verify_bundle",
    "verify_image",
    "verify_simple_signing",
    "verify_statement",
]
