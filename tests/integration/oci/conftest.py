"""The real registries of tests.registry_support, for the OCI integration tests."""

from tests.registry_support import (  # noqa: F401
    basic_registry,
    plain_registry,
    registry_certs,
    tls_registry,
    token_registry,
)
