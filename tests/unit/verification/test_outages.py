"""A registry that failed is not asked again for a few seconds: admissions do not all wait for it."""

from __future__ import annotations

from typing import Any

import pytest

from gate.errors import InfrastructureError
from gate.oci import ImageRef, RegistryError
from gate.signatures import SignaturePolicy, TrustRoot
from gate.signatures._image import ImagePolicy
from gate.verification import ImageVerifierService
from tests.conftest import ManualClock


class _DownRegistry:
    """An image source whose registry is unreachable; counts the attempts."""

    def __init__(self) -> None:
        self.calls = 0

    def resolve(self, ref: ImageRef) -> Any:
        self.calls += 1
        raise RegistryError(f"{ref.registry}: connection refused")


def _policy() -> ImagePolicy:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from gate.signatures import load_public_key

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ImagePolicy(signers=SignaturePolicy(keys=(load_public_key(pem),)))


def test_a_failed_registry_is_not_asked_again_until_the_outage_ttl_passes() -> None:
    source = _DownRegistry()
    clock = ManualClock(100.0)
    service = ImageVerifierService(source, TrustRoot(), outage_ttl=5.0, clock=clock)  # type: ignore[arg-type]
    ref = ImageRef.parse("registry.example.com/shop/app:1")
    with pytest.raises(InfrastructureError, match="connection refused"):
        service.verify(ref, _policy(), "k")
    with pytest.raises(InfrastructureError, match="recent failure"):
        service.verify(ImageRef.parse("registry.example.com/shop/other:2"), _policy(), "k")
    assert source.calls == 1
    clock.now += 5.0
    with pytest.raises(InfrastructureError, match="connection refused"):
        service.verify(ref, _policy(), "k")
    assert source.calls == 2
