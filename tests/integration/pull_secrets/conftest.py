"""The basic-auth registry of tests.registry_support, for the pull secret tests."""

from tests.registry_support import basic_registry, registry_certs  # noqa: F401
