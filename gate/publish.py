"""Signing images and attaching attestations the way cosign stores them in a registry.

``gate sign`` writes a simple-signing layer to the image's ``sha256-<hex>.sig``
manifest and ``gate attest`` a DSSE envelope layer to ``sha256-<hex>.att``, so
``cosign verify --key`` / ``cosign verify-attestation --key`` and Kyverno's
``verifyImages`` read them as their own. Adding to an existing manifest keeps
its layers (one per signature), as cosign does; an identical layer is not added
twice, and an attestation of the same predicate type can replace the old one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from gate.errors import InvalidArgument
from gate.oci import (
    ContentNotFound,
    Descriptor,
    ImageIndex,
    ImageRef,
    cosign_tag,
    digest_of,
    encode_manifest,
    media,
)
from gate.signatures import (
    ANNOTATION_SIGNATURE,
    INTOTO_PAYLOAD_TYPE,
    SigningKey,
    make_statement,
    sign_dsse,
    sign_simple_signing,
)

# The short names ``cosign attest --type`` accepts, and the URIs they stand for.
PREDICATE_TYPES: Mapping[str, str] = {
    "cyclonedx": "https://cyclonedx.org/bom",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "openvex": "https://openvex.dev/ns",
    "custom": "https://cosign.sigstore.dev/attestation/v1",
}
MAX_PREDICATE_BYTES = 16 * 1024 * 1024
_CONFIG_TIME = "0001-01-01T00:00:00Z"


class Publisher(Protocol):
    """What attaching needs from a registry client (``gate.oci.RegistryClient``)."""

    def manifest(self, ref: ImageRef) -> object:
        """The manifest or index ``ref`` names (raises ContentNotFound when absent)."""
        ...

    def push_blob(self, ref: ImageRef, data: bytes, media_type: str = ...) -> Descriptor:
        """Upload a blob to ``ref``'s repository."""
        ...

    def push_manifest(self, ref: ImageRef, raw: bytes, media_type: str) -> str:
        """Store a manifest under ``ref``'s tag; returns its digest."""
        ...


@dataclass(frozen=True, slots=True)
class Attached:
    """Where a signature or attestation was stored."""

    reference: str
    manifest_digest: str
    layer: Descriptor


def predicate_type(name: str) -> str:
    """The predicate type URI for a cosign short name, or the URI itself.

    Raises:
        InvalidArgument: neither a known short name nor an absolute URI.
    """
    if name in PREDICATE_TYPES:
        return PREDICATE_TYPES[name]
    if "://" in name:
        return name
    known = ", ".join(sorted(PREDICATE_TYPES))
    raise InvalidArgument("type", f"expected one of {known} or a predicate type URI, got {name!r}")


def parse_predicate(data: bytes) -> object:
    """The predicate JSON of an attestation, checked.

    Raises:
        InvalidArgument: too large or not JSON.
    """
    if len(data) > MAX_PREDICATE_BYTES:
        raise InvalidArgument("predicate", f"expected at most {MAX_PREDICATE_BYTES} bytes, got {len(data)}")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidArgument("predicate", f"expected JSON: {error}") from None


def attestation_envelope(
    image: ImageRef, digest: str, predicate_uri: str, predicate: object, key: SigningKey
) -> bytes:
    """A DSSE envelope signing an in-toto v1 statement about ``image`` at ``digest``."""
    statement = make_statement([(image.name, digest)], predicate_uri, predicate)
    return sign_dsse(statement, INTOTO_PAYLOAD_TYPE, key)


def _config(layers: list[Descriptor]) -> bytes:
    # cosign's signature "image" config: empty platform, one diff id per layer (layers are not compressed).
    config = {
        "architecture": "",
        "created": _CONFIG_TIME,
        "history": [{"created": _CONFIG_TIME}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        "config": {},
    }
    return json.dumps(config, separators=(",", ":")).encode()


def attach(
    client: Publisher,
    image: ImageRef,
    digest: str,
    suffix: str,
    blob: bytes,
    layer_media_type: str,
    annotations: Mapping[str, str],
    *,
    replace_predicate: str = "",
) -> Attached:
    """Add one layer to the image's cosign ``.sig``/``.att`` manifest and push it.

    ``replace_predicate`` drops existing layers annotated with that ``predicateType`` first.

    Raises:
        InfrastructureError: the registry failed; EvidenceError: it holds malformed content.
    """
    target = image.with_tag(cosign_tag(digest, suffix))
    layers: list[Descriptor] = []
    try:
        existing = client.manifest(target)
    except ContentNotFound:
        existing = None
    if existing is not None and not isinstance(existing, ImageIndex):
        layers = list(getattr(existing, "layers", ()))
    if replace_predicate:
        layers = [layer for layer in layers if layer.annotations.get("predicateType") != replace_predicate]
    layer = Descriptor(layer_media_type, digest_of(blob), len(blob), annotations=dict(annotations))
    if not any(old.digest == layer.digest and dict(old.annotations) == dict(annotations) for old in layers):
        client.push_blob(target, blob, layer_media_type)
        layers.append(layer)
    config = _config(layers)
    config_descriptor = client.push_blob(target, config, media.OCI_CONFIG)
    raw = encode_manifest(config_descriptor, layers)
    manifest_digest = client.push_manifest(target, raw, media.OCI_MANIFEST)
    return Attached(str(target), manifest_digest, layer)


def sign_image(client: Publisher, image: ImageRef, digest: str, key: SigningKey) -> Attached:
    """Sign ``image`` at ``digest`` as ``cosign sign --key`` does and push the signature."""
    payload, signature = sign_simple_signing(str(image.with_digest(digest)), digest, key)
    return attach(
        client, image, digest, "sig", payload, media.COSIGN_SIMPLESIGNING, {ANNOTATION_SIGNATURE: signature}
    )


def attest_image(
    client: Publisher,
    image: ImageRef,
    digest: str,
    predicate_uri: str,
    predicate: object,
    key: SigningKey,
    *,
    replace: bool = False,
) -> tuple[bytes, Attached]:
    """Sign an attestation about ``image`` at ``digest`` and push it as ``cosign attest --key`` does.

    With ``replace`` earlier attestations of the same predicate type are dropped (``--replace``).
    """
    envelope = attestation_envelope(image, digest, predicate_uri, predicate, key)
    annotations = {ANNOTATION_SIGNATURE: "", "predicateType": predicate_uri}
    attached = attach(
        client,
        image,
        digest,
        "att",
        envelope,
        media.DSSE_ENVELOPE,
        annotations,
        replace_predicate=predicate_uri if replace else "",
    )
    return envelope, attached
