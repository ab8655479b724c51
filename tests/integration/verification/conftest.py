"""The real registry of tests.registry_support, for the image verification tests."""

from tests.registry_support import plain_registry  # noqa: F401
