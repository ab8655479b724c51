"""Where cosign keeps signatures, attestations and referrers of an image."""

from __future__ import annotations

from gate.oci._digest import parse_digest
from gate.oci._errors import InvalidReference

COSIGN_SUFFIXES = ("sig", "att", "sbom")


def cosign_tag(digest: str, suffix: str) -> str:
    """The tag cosign gives an image's signatures (``sig``), attestations (``att``) or SBOM (``sbom``).

    ``sha256:<hex>`` becomes ``sha256-<hex>.<suffix>``.
    """
    if suffix not in COSIGN_SUFFIXES:
        raise InvalidReference("suffix", f"expected one of {', '.join(COSIGN_SUFFIXES)}, got {suffix!r}")
    return f"{referrers_tag(digest)}.{suffix}"


def referrers_tag(digest: str) -> str:
    """The OCI 1.1 referrers fallback tag of a manifest: ``sha256-<hex>``."""
    algorithm, encoded = parse_digest(digest)
    return f"{algorithm}-{encoded}"
