"""The real registry of tests.registry_support, for SBOMs of registry images."""

from tests.registry_support import plain_registry, registry_certs, tls_registry  # noqa: F401
